import { mkdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard.js';
import type { NodeStatus } from './status.js';

/** Requests a control endpoint answers; nothing else is served. */
export interface ControlApi {
  status(): Promise<NodeStatus>;
}

/** Paths of the control API (HTTP, JSON bodies). */
export const CONTROL_ROUTES = { status: '/v1/status' } as const;
/** How long a control request may take to arrive in full. */
const REQUEST_TIMEOUT_MS = 10_000;
/** The dashboard's page, style and script, and the policy that allows nothing else. */
const DASHBOARD_FILES: Readonly<Record<string, { type: string; body: string }>> = {
  '/': { type: 'text/html; charset=utf-8', body: DASHBOARD_HTML },
  '/dashboard.css': { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS },
  '/dashboard.js': { type: 'text/javascript; charset=utf-8', body: DASHBOARD_JS },
};
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The node's local control endpoint: HTTP with the status API (and the dashboard), on a unix
 * socket in the folder's state directory for `mesh status` and friends, and, with `--gui`, on a
 * TCP address for a browser. On TCP a request must name the address it was sent to (or
 * localhost) in its Host header: a web page elsewhere cannot read the status through a DNS
 * rebinding of its own name.
 */
export class ControlServer {
  private readonly servers: Server[] = [];
  private socketPath: string | undefined;

  constructor(private readonly api: ControlApi) {}

  /** Listens on the unix socket `path` (a socket left by a crashed node is replaced). */
  async listenSocket(path: string): Promise<void> {
    // Only one node runs on a folder (the folder lock): a socket file left here is a crashed node's.
    await unlink(path).catch(() => undefined);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await this.listen(this.server(undefined), path);
    this.socketPath = path;
  }

  /** Listens on a TCP address for the dashboard; resolves with the address bound (port 0: any free one). */
  async listenTcp(host: string, port: number): Promise<AddressInfo> {
    const allowedHosts = new Set<string>();
    const server = this.server(allowedHosts);
    await this.listen(server, { host, port });
    const address = server.address() as AddressInfo;
    const literal = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    for (const name of [literal, host, 'localhost', '127.0.0.1', '[::1]']) {
      allowedHosts.add(name);
      allowedHosts.add(`${name}:${address.port}`);
    }
    return address;
  }

  async stop(): Promise<void> {
    const servers = this.servers.splice(0);
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    if (this.socketPath !== undefined) await unlink(this.socketPath).catch(() => undefined);
    this.socketPath = undefined;
  }

  private server(allowedHosts: ReadonlySet<string> | undefined): Server {
    const server = createServer((request, response) => void this.handle(request, response, allowedHosts));
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    return server;
  }

  private async listen(server: Server, where: string | { host: string; port: number }): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (typeof where === 'string') server.listen(where, done);
      else server.listen(where.port, where.host, done);
    });
    this.servers.push(server);
  }

  private async handle(request: IncomingMessage, response: ServerResponse, allowedHosts: ReadonlySet<string> | undefined): Promise<void> {
    try {
      if (allowedHosts !== undefined && !allowedHosts.has((request.headers.host ?? '').toLowerCase())) {
        return reply(response, 421, 'application/json', JSON.stringify({ error: 'unexpected Host header' }));
      }
      if (request.method !== 'GET') return reply(response, 405, 'application/json', JSON.stringify({ error: 'only GET is served' }));
      const path = (request.url ?? '').split('?')[0];
      if (path === CONTROL_ROUTES.status) return reply(response, 200, 'application/json', JSON.stringify(await this.api.status()));
      const file = Object.hasOwn(DASHBOARD_FILES, path) ? DASHBOARD_FILES[path] : undefined;
      if (file !== undefined) return reply(response, 200, file.type, file.body);
      reply(response, 404, 'application/json', JSON.stringify({ error: `no such request: ${path}` }));
    } catch (error) {
      reply(response, 500, 'application/json', JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
    }
  }
}

function reply(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
