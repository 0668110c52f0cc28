// Mesh nodes as child processes (test/fixtures/network-node.ts), in the root namespace or on a
// host of a netns LAN, with their JSON-line events collected and awaited.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stopChild, type CleanupScope, type HostRef, type Lan } from './netns.js';

const FIXTURE = fileURLToPath(new URL('fixtures/network-node.ts', import.meta.url));
// Resolved here: a child in another namespace or directory must not have to find tsx itself.
const TSX = import.meta.resolve('tsx');

export interface NodeEvent {
  readonly event: string;
  readonly peerId?: string;
  readonly [field: string]: unknown;
}

export interface Started {
  readonly peerId: string;
  readonly addresses: readonly string[];
}

export interface Status {
  readonly connections: readonly ConnectionInfo[];
  readonly knownPeers: readonly string[];
}

export interface ConnectionInfo {
  readonly peerId: string;
  readonly direction: string;
  readonly remoteAddress: string;
}

/** A running fixture node and everything it has printed. */
export class NodeProcess {
  readonly events: NodeEvent[] = [];
  #stderr = '';
  readonly #spawnedAt = Date.now();
  readonly #waiters = new Set<() => void>();

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        this.events.push({ ...(JSON.parse(line) as NodeEvent), at: Date.now() - this.#spawnedAt });
      } catch {
        this.#stderr += `(stdout) ${line}\n`;
      }
      for (const wake of this.#waiters) wake();
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    child.once('exit', () => {
      for (const wake of this.#waiters) wake();
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The first event (already printed or to come) that satisfies `predicate`. */
  waitFor(predicate: (event: NodeEvent) => boolean, timeoutMs: number, what: string): Promise<NodeEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(predicate);
        if (found !== undefined) {
          done();
          resolve(found);
          return true;
        }
        if (this.exited) {
          done();
          reject(new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}\n${this.describe()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
      const wake = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
      };
      this.#waiters.add(wake);
      check();
    });
  }

  async started(timeoutMs = 10_000): Promise<Started> {
    const event = await this.waitFor((e) => e.event === 'started', timeoutMs, 'start');
    return { peerId: event.peerId!, addresses: event.addresses as string[] };
  }

  connectedTo(peerId: string, timeoutMs: number): Promise<NodeEvent> {
    return this.waitFor((e) => e.event === 'peer:connect' && e.peerId === peerId, timeoutMs, `connection to ${peerId}`);
  }

  eventsNamed(name: string): NodeEvent[] {
    return this.events.filter((e) => e.event === name);
  }

  /** Its open connections and the peers its peer store knows, as it reports them. */
  async status(timeoutMs = 5_000): Promise<Status> {
    const before = this.eventsNamed('status').length;
    this.child.stdin!.write('status\n');
    const event = await this.waitFor((e) => e.event === 'status' && this.eventsNamed('status').indexOf(e) >= before, timeoutMs, 'status');
    return { connections: event.connections as ConnectionInfo[], knownPeers: event.knownPeers as string[] };
  }

  /** Asks it to stop, and resolves with how long it took to exit by itself (killed after timeoutMs). */
  async stop(timeoutMs = 5_000): Promise<number> {
    const start = Date.now();
    if (this.exited) return 0;
    const exit = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.write('stop\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await exit;
    clearTimeout(timer);
    return Date.now() - start;
  }

  describe(): string {
    return `events: ${JSON.stringify(this.events)}\nstderr: ${this.#stderr.slice(-4000)}`;
  }
}

export interface StartNodeOptions {
  /** A netns LAN and the host to run on; without them the node runs in the root namespace. */
  lan?: Lan;
  host?: HostRef;
  key: string;
  args?: readonly string[];
  name?: string;
}

/** Starts a fixture node; it is stopped (then killed) when the test ends. */
export function startNode(t: CleanupScope, options: StartNodeOptions): NodeProcess {
  const nodeArgs = ['--import', TSX, FIXTURE, ...(options.args ?? [])];
  // The key goes by environment, not argv, as a real user's would (ps shows argv).
  const spawnOptions: SpawnOptions = { stdio: 'pipe', env: { ...process.env, MESH_TEST_KEY: options.key } };
  const child =
    options.lan !== undefined
      ? options.lan.spawn(options.host ?? 0, process.execPath, nodeArgs, spawnOptions)
      : spawn(process.execPath, nodeArgs, spawnOptions);
  const node = new NodeProcess(child, options.name ?? `node ${child.pid}`);
  t.after(() => stopChild(child));
  return node;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
