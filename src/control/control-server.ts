import { mkdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import type { NodeStatus } from './status.js';

/** Requests a control endpoint answers; nothing else is served. */
export interface ControlApi {
  status(): Promise<NodeStatus>;
}

/** Paths of the control API (HTTP over the socket, JSON bodies). */
export const CONTROL_ROUTES = { status: '/v1/status' } as const;
/** How long a control request may take to arrive in full. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The node's local control endpoint: HTTP on a unix socket in the folder's state directory (never a
 * network address), for `mesh status` and the other commands that ask the running node.
 */
export class ControlServer {
  private server: Server | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly api: ControlApi,
  ) {}

  async start(): Promise<void> {
    // Only one node runs on a folder (the folder lock): a socket file left here is a crashed node's.
    await unlink(this.socketPath).catch(() => undefined);
    await mkdir(dirname(this.socketPath), { recursive: true, mode: 0o700 });
    const server = createServer((request, response) => void this.handle(request, response));
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.socketPath).catch(() => undefined);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      if (request.method === 'GET' && request.url === CONTROL_ROUTES.status) return reply(response, 200, await this.api.status());
      reply(response, 404, { error: `no such request: ${request.method ?? '?'} ${request.url ?? '?'}` });
    } catch (error) {
      reply(response, 500, { error: error instanceof Error ? error.message : String(error) });
    }
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
