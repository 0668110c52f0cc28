/**
 * What every tool's driver gives the scenarios: N nodes, each a folder on a host of a netns LAN, and
 * the figures read the same way for every tool (wire bytes off the hosts' eth0, CPU and memory of
 * every process in a host's namespace).
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { Lan } from '../../test/netns.js';
import { cpuSecondsOf, memoryOf } from '../proc.js';

export interface Cluster {
  /** Name in the table, e.g. "syncthing-tuned". */
  readonly tool: string;
  readonly lan: Lan;
  /** Each node's synced folder, by host index. */
  readonly dirs: readonly string[];
  /**
   * Called right after a change was made in node `from`'s folder. A live-sync tool does nothing (its
   * watcher sees the change); rsync pushes from there to the daemon, and resolves when it has.
   */
  changed(from: number): Promise<void>;
  /** Why the cluster cannot go on (a node exited), with the end of its logs; undefined while it runs. */
  failure(): string | undefined;
  /** CPU seconds node `index` used outside its namespace's live processes so far (rsync's finished pushes). */
  extraCpuSeconds(index: number): number;
}

/** A tool that can make a cluster; one-way tools (rsync) leave out the two-way scenarios. */
export interface Tool {
  readonly name: string;
  readonly twoWay: boolean;
  /** What the tool is and how it is set up, for the README and the JSON. */
  readonly setup: string;
  /** Starts `nodes` nodes on `lan` with folders under `workDir`; everything stops when `scope` closes. */
  start(scope: { after(fn: () => Promise<void>): void }, lan: Lan, workDir: string, nodes: number): Promise<Cluster>;
}

/** Pids of the processes in a named network namespace (compared by the namespace's inode). */
export function pidsInNamespace(namespace: string): number[] {
  const inode = statSync(`/run/netns/${namespace}`).ino;
  const link = `net:[${inode}]`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === link) pids.push(Number(entry));
    } catch {
      // exited, or a kernel thread
    }
  }
  return pids;
}

export interface NodeMemory {
  /** Sum of VmRSS of the node's processes. */
  rssMiB: number;
  /** Sum of their VmHWM, the highest seen by the sampler. */
  peakRssMiB: number;
  /** Each process's share now (e.g. Syncthing's monitor beside its worker). */
  processes: { command: string; rssMiB: number; peakRssMiB: number }[];
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '').slice(0, 3).join(' ');
  } catch {
    return '';
  }
}

const SAMPLE_MS = 250;

/**
 * Samples the memory of each node's processes every SAMPLE_MS, so short-lived ones (rsync's
 * receiver) are seen too; a process's own VmHWM covers the peaks between two samples.
 */
export class MemorySampler {
  private readonly peaks: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly cluster: Cluster) {
    this.peaks = cluster.dirs.map(() => 0);
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  private sample(withProcesses = false): NodeMemory[] {
    return this.cluster.lan.hosts.slice(0, this.cluster.dirs.length).map((host, i) => {
      const pids = pidsInNamespace(host.namespace);
      const memories = pids.map((pid) => ({ pid, ...memoryOf(pid) })).filter((m) => Number.isFinite(m.rssMiB));
      const rssMiB = memories.reduce((sum, m) => sum + m.rssMiB, 0);
      const peak = memories.reduce((sum, m) => sum + m.peakRssMiB, 0);
      this.peaks[i] = Math.max(this.peaks[i] ?? 0, peak);
      const processes = withProcesses ? memories.map((m) => ({ command: commandOf(m.pid), rssMiB: m.rssMiB, peakRssMiB: m.peakRssMiB })) : [];
      return { rssMiB, peakRssMiB: this.peaks[i] ?? 0, processes };
    });
  }

  /** Each node's memory now, its peak so far, and each of its processes. */
  now(): NodeMemory[] {
    return this.sample(true);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** CPU seconds each node has used so far: its namespace's processes (with the workers they waited for) and the tool's extras. */
export function cpuSeconds(cluster: Cluster): number[] {
  return cluster.dirs.map((_, i) => {
    const host = cluster.lan.hosts[i];
    const live = pidsInNamespace(host.namespace).reduce((sum, pid) => sum + cpuSecondsOf(pid, true), 0);
    return live + cluster.extraCpuSeconds(i);
  });
}

/** Bytes received by every node's eth0 so far: each byte on the bridge is received once, so this is the wire's total. */
export async function wireBytes(cluster: Cluster): Promise<number> {
  const counters = await Promise.all(cluster.dirs.map((_, i) => cluster.lan.bytes(i)));
  return counters.reduce((sum, c) => sum + c.rx, 0);
}
