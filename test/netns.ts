// A LAN of network namespaces for multi-node tests: a 'switch' namespace holding a bridge, and one
// namespace per host joined to it by a veth pair (eth0 on the host side, 10.77.K.N/24). Nothing is
// created in the root namespace, so the machine's own interfaces are never touched. Everything a
// LAN creates is removed when its test ends, passing or not, and at process exit as a last resort.
import { execFile, spawn as spawnChild, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Names of namespaces this module creates: mesh-t<pid>-<4 hex>-<role>; the pid lets a later run sweep a crashed one's. */
const NAME_PATTERN = /^mesh-t(\d+)-[0-9a-f]{4}-(sw|h\d+)$/;
/** Time a child gets to exit after SIGTERM before it is killed. */
const TERM_GRACE_MS = 2_000;

export interface LanHost {
  /** 0-based position in `lan.hosts`. */
  readonly index: number;
  readonly namespace: string;
  /** IPv4 address of its eth0, e.g. 10.77.42.1. */
  readonly address: string;
  /** The switch-side end of its veth pair (inside the switch namespace). */
  readonly switchPort: string;
}

export interface InterfaceBytes {
  readonly rx: number;
  readonly tx: number;
}

export interface Lan {
  readonly hosts: readonly LanHost[];
  /** The switch namespace (holds bridge br0 and the hosts' veth ends). */
  readonly switchNamespace: string;
  /** e.g. 10.77.42.0/24 */
  readonly subnet: string;
  /** Runs a command inside a host's namespace; resolves with its stdout, rejects with its stderr. */
  exec(host: HostRef, command: string, args?: readonly string[]): Promise<string>;
  /** Starts a child inside a host's namespace; it is killed when the test ends. */
  spawn(host: HostRef, command: string, args?: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Bytes received and sent by the host's eth0 so far. */
  bytes(host: HostRef): Promise<InterfaceBytes>;
  /** Cuts traffic between two hosts (blackhole routes on both sides); others still reach both. */
  partition(a: HostRef, b: HostRef): Promise<void>;
  heal(a: HostRef, b: HostRef): Promise<void>;
  /** Unplugs a host from the switch (its port goes down): packets to and from it are lost silently. */
  isolate(host: HostRef): Promise<void>;
  rejoin(host: HostRef): Promise<void>;
  /** Caps what the host sends at `megabitsPerSecond` (a token bucket on its eth0); undefined lifts the cap. */
  throttle(host: HostRef, megabitsPerSecond: number | undefined): Promise<void>;
}

/**
 * Where cleanup is registered: a test's context (`t`), or, for a LAN shared by a suite's tests,
 * `{ after }` with node:test's suite-level `after` hook.
 */
export interface CleanupScope {
  after(fn: () => Promise<void>): void;
}

/** A host by index or by object. */
export type HostRef = number | LanHost;

/** Every namespace and child this process created and has not cleaned up yet. */
const liveNamespaces = new Set<string>();
const liveChildren = new Set<ChildProcess>();

async function ip(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('ip', args, { encoding: 'utf8' });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr !== undefined && stderr !== '' ? stderr : String(error)}`, { cause: error });
  }
}

let support: Promise<string | undefined> | undefined;

/**
 * Why network-namespace tests cannot run here (not root, no `ip`, namespaces refused), or
 * undefined when they can: `test('...', { skip: await netnsUnavailable() }, ...)`.
 */
export function netnsUnavailable(): Promise<string | undefined> {
  support ??= (async () => {
    if (process.platform !== 'linux') return 'network namespaces need Linux';
    if (process.getuid?.() !== 0) return 'network namespaces need root';
    try {
      await execFileAsync('ip', ['-V']);
    } catch {
      return 'iproute2 (the ip command) is not installed';
    }
    const probe = `mesh-t${process.pid}-${randomBytes(2).toString('hex')}-h0`;
    try {
      await ip(['netns', 'add', probe]);
    } catch (error) {
      return `cannot create network namespaces here (${(error as Error).message})`;
    }
    await ip(['netns', 'del', probe]).catch(() => undefined);
    return undefined;
  })();
  return support;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Pids of every process inside a namespace (children of children too). */
function pidsIn(namespace: string): number[] {
  const result = spawnSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' });
  return (result.stdout ?? '').split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Synchronous: usable from an exit hook. Kills what runs inside, then deletes the namespace. */
function deleteNamespaceSync(namespace: string): void {
  killAll(pidsIn(namespace));
  spawnSync('ip', ['netns', 'del', namespace], { stdio: 'ignore' });
  liveNamespaces.delete(namespace);
}

/** Namespaces left by a run of this harness that died (its pid is gone): removed before making new ones. */
async function sweepStale(): Promise<void> {
  const list = await ip(['netns', 'list']);
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = NAME_PATTERN.exec(name);
    if (match === null || processAlive(Number(match[1]))) continue;
    deleteNamespaceSync(name);
  }
}

let hooksInstalled = false;

function cleanupEverythingSync(): void {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const namespace of [...liveNamespaces]) deleteNamespaceSync(namespace);
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupEverythingSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanupEverythingSync();
      process.kill(process.pid, signal);
    });
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL if it has not exited within TERM_GRACE_MS. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), TERM_GRACE_MS);
  await exited(child);
  clearTimeout(timer);
}

/**
 * A switch and `hosts` hosts, each in its own namespace with lo up, eth0 at 10.77.K.(i+1)/24 (K
 * random in 1-250) and the multicast route mDNS needs (224.0.0.0/4 dev eth0). IPv6 is off, so the
 * byte counters count only what the test does. Removed in `t.after`.
 */
export async function createLan(t: CleanupScope, hosts: number): Promise<Lan> {
  const reason = await netnsUnavailable();
  if (reason !== undefined) throw new Error(`createLan: ${reason}`);
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 250) throw new RangeError('createLan: 1 to 250 hosts');
  installExitHooks();
  await sweepStale();

  const prefix = `mesh-t${process.pid}-${randomBytes(2).toString('hex')}`;
  const k = randomInt(1, 251);
  const switchNamespace = `${prefix}-sw`;
  const namespaces: string[] = [];
  const children = new Set<ChildProcess>();
  const addNamespace = async (name: string): Promise<void> => {
    await ip(['netns', 'add', name]);
    liveNamespaces.add(name);
    namespaces.push(name);
    // Before any interface arrives, so eth0 never gets IPv6 chatter (router solicitations, MLD).
    await ip(['netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  };

  t.after(async () => {
    await Promise.all([...children].map(stopChild));
    for (const name of namespaces) deleteNamespaceSync(name);
  });

  await addNamespace(switchNamespace);
  // STP off and no forward delay: ports forward at once; no snooping: multicast goes to every port.
  await ip(['-n', switchNamespace, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
  await ip(['-n', switchNamespace, 'link', 'set', 'br0', 'up']);

  const lanHosts: LanHost[] = [];
  for (let index = 0; index < hosts; index++) {
    const namespace = `${prefix}-h${index + 1}`;
    const switchPort = `v${index + 1}`;
    const address = `10.77.${k}.${index + 1}`;
    await addNamespace(namespace);
    // Made in the switch namespace, the other end moved straight into the host's: never in the root namespace.
    await ip(['-n', switchNamespace, 'link', 'add', switchPort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
    await ip(['-n', switchNamespace, 'link', 'set', switchPort, 'master', 'br0']);
    await ip(['-n', switchNamespace, 'link', 'set', switchPort, 'up']);
    await ip(['-n', namespace, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    await ip(['-n', namespace, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', namespace, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    lanHosts.push({ index, namespace, address, switchPort });
  }

  const hostOf = (ref: HostRef): LanHost => {
    const host = typeof ref === 'number' ? lanHosts[ref] : ref;
    if (host === undefined || lanHosts[host.index] !== host) throw new RangeError(`no host ${typeof ref === 'number' ? ref : ref.namespace} on this LAN`);
    return host;
  };
  const exec = async (ref: HostRef, command: string, args: readonly string[] = []): Promise<string> =>
    ip(['netns', 'exec', hostOf(ref).namespace, command, ...args]);
  const blackhole = async (action: 'add' | 'del', a: LanHost, b: LanHost): Promise<void> => {
    await ip(['-n', a.namespace, 'route', action, 'blackhole', `${b.address}/32`]);
    await ip(['-n', b.namespace, 'route', action, 'blackhole', `${a.address}/32`]);
  };

  return {
    hosts: lanHosts,
    switchNamespace,
    subnet: `10.77.${k}.0/24`,
    exec,
    spawn(ref, command, args = [], options = {}) {
      const child = spawnChild('ip', ['netns', 'exec', hostOf(ref).namespace, command, ...args], options);
      children.add(child);
      liveChildren.add(child);
      child.once('exit', () => liveChildren.delete(child));
      return child;
    },
    async bytes(ref) {
      const out = await exec(ref, 'cat', ['/sys/class/net/eth0/statistics/rx_bytes', '/sys/class/net/eth0/statistics/tx_bytes']);
      const [rx, tx] = out.trim().split('\n').map(Number);
      if (rx === undefined || tx === undefined || !Number.isFinite(rx) || !Number.isFinite(tx)) throw new Error(`unexpected byte counters: ${out}`);
      return { rx, tx };
    },
    partition: (a, b) => blackhole('add', hostOf(a), hostOf(b)),
    heal: (a, b) => blackhole('del', hostOf(a), hostOf(b)),
    async isolate(ref) {
      await ip(['-n', switchNamespace, 'link', 'set', hostOf(ref).switchPort, 'down']);
    },
    async rejoin(ref) {
      await ip(['-n', switchNamespace, 'link', 'set', hostOf(ref).switchPort, 'up']);
    },
    async throttle(ref, megabitsPerSecond) {
      const namespace = hostOf(ref).namespace;
      if (megabitsPerSecond === undefined) {
        await execFileAsync('ip', ['netns', 'exec', namespace, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root']);
        return;
      }
      // A bucket of 64 KiB and at most 50 ms of queue: TCP sees a slow link, not a lossy one.
      await execFileAsync('ip', ['netns', 'exec', namespace, 'tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${megabitsPerSecond}mbit`, 'burst', '64kb', 'latency', '50ms']);
    },
  };
}
