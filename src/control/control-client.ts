import { request } from 'node:http';
import { CONTROL_ROUTES } from './control-server.js';
import { controlSocketPath } from './socket-path.js';
import { STATUS_VERSION, type NodeStatus } from './status.js';

/** Longest answer read from a node (a status lists peers, transfers and conflicts). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;

/** A command could not get its answer from the running node: one line for the user. */
export class ControlError extends Error {
  override name = 'ControlError';
}

/** No node runs on the folder (nothing listens on its control socket). */
export class NodeNotRunningError extends ControlError {
  override name = 'NodeNotRunningError';
  constructor(root: string) {
    super(`no mesh node is running on ${root} (start one with: mesh join ${root})`);
  }
}

/** The node answered, but not as expected (an error, or a version this command does not know). */
export class ControlRequestError extends ControlError {
  override name = 'ControlRequestError';
}

/** Asks the node running on the folder at `root` (its canonical path) for its status. */
export async function fetchStatus(root: string): Promise<NodeStatus> {
  const status = (await get(root, CONTROL_ROUTES.status)) as { version?: unknown };
  if (status.version !== STATUS_VERSION) {
    throw new ControlRequestError(`the node on ${root} speaks status version ${String(status.version)}; this mesh knows ${String(STATUS_VERSION)} (update one of them)`);
  }
  return status as NodeStatus;
}

function get(root: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: controlSocketPath(root), path, method: 'GET', timeout: REQUEST_TIMEOUT_MS }, (response) => {
      const chunks: Buffer[] = [];
      let length = 0;
      response.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length > MAX_RESPONSE_BYTES) req.destroy(new ControlRequestError(`the node's answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(chunk);
      });
      response.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new ControlRequestError('the node answered with something that is not JSON'));
        }
        if (response.statusCode !== 200) {
          const message = (body as { error?: unknown }).error;
          return reject(new ControlRequestError(`the node refused: ${typeof message === 'string' ? message : `HTTP ${response.statusCode}`}`));
        }
        resolve(body);
      });
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new ControlRequestError(`the node on ${root} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') reject(new NodeNotRunningError(root));
      else reject(error);
    });
    req.end();
  });
}
