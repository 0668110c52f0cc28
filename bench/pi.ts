/**
 * A node sized for a Raspberry Pi: `mesh join` pinned to one core (taskset) on a folder of
 * 100,000 small files, its RSS and CPU measured while idle and while it receives a large file from
 * a second node. Both nodes are real processes on loopback (static peers, no mDNS).
 *
 *   npm run bench:pi                                          100,000 files, 128 MiB pulled
 *   MESH_BENCH_FILES=5000 MESH_BENCH_PULL_MIB=16 npm run bench:pi   a quick run
 *   MESH_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' ...   node arguments of the measured node
 *
 * The nodes' logs go to bench-out/pi-node.log (the measured one) and pi-peer.log.
 *
 * Targets (issue: headless Raspberry Pi nodes): under 150 MiB RSS, under 1% CPU idle.
 * Exit code: 0 every target met, 2 one missed, 1 the benchmark could not run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BUILT_CLI, JoinProcess, sleep } from '../test/join-helpers.js';
import type { NodeStatus } from '../src/control/status.js';
import { randomChunks } from './common.js';

const MIB = 1024 * 1024;
const FILES = integerEnv('MESH_BENCH_FILES', 100_000, 100, 1_000_000);
const PULL_MIB = integerEnv('MESH_BENCH_PULL_MIB', 128, 1, 4096);
const FILES_PER_FOLDER = 100;
/** Idle is measured over this long, after the node has settled. */
const IDLE_SECONDS = integerEnv('MESH_BENCH_IDLE_SECONDS', 30, 5, 600);
const OUT_DIR = path.join(import.meta.dirname, '..', 'bench-out');
const NODE_ARGS = (process.env.MESH_BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
/**
 * Idle starts this long after both nodes are in sync: a node that just finished work still runs
 * V8's collections after it (its memory reducer waits 8 s, then may collect again) and gives
 * memory back (memory-trim.ts). What those cost is printed, not counted as idle.
 */
const SETTLE_SECONDS = 20;
/** Both nodes must say they are in sync this many times in a row, a second apart. */
const IN_SYNC_CHECKS = 2;
const SAMPLE_MS = 250;
const STEP_TIMEOUT_MS = 30 * 60_000;
const TARGET_RSS_MIB = 150;
const TARGET_IDLE_CPU_PERCENT = 1;
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;

function integerEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name} must be a whole number from ${min} to ${max}, not ${raw}`);
    process.exit(1);
  }
  return value;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function memoryMiB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Number(match[1]) / 1024;
}

function startNode(dir: string, key: string, args: readonly string[], pinned: boolean): JoinProcess {
  const node = [process.execPath, ...(pinned ? NODE_ARGS : []), ...BUILT_CLI, 'join', dir, '--no-mdns', '--port', '0', ...args];
  // taskset: the node and every thread it starts run on core 0 only, as on a one-core budget.
  const [command, ...rest] = pinned ? ['taskset', '-c', '0', ...node] : node;
  return new JoinProcess(spawn(command, rest, { stdio: 'pipe', env: { ...process.env, MESH_KEY: key } }));
}

async function generate(root: string, count: number): Promise<void> {
  const pool = Buffer.alloc(4 * MIB);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
  for (let index = 0; index < count; index++) {
    const folder = path.join(root, `t${Math.floor(index / (FILES_PER_FOLDER * 10))}`, `s${Math.floor(index / FILES_PER_FOLDER) % 10}`);
    if (index % FILES_PER_FOLDER === 0) {
      await nextTurn();
      mkdirSync(folder, { recursive: true });
    }
    const length = 1024 + (index % 3072);
    const offset = (index * 7919) % (pool.length - length);
    const header = Buffer.from(`file ${index}\n`);
    writeFileSync(path.join(folder, `f${index % FILES_PER_FOLDER}.bin`), Buffer.concat([header, pool.subarray(offset, offset + length - header.length)]));
  }
}

interface Measure {
  cpuPercent: number;
  seconds: number;
  peakRssMiB: number;
}

/** CPU share and peak RSS of `pid` while `during` runs (or for `seconds` when it is a number). */
async function measure(pid: number, during: number | (() => Promise<void>)): Promise<Measure> {
  const started = performance.now();
  const cpuBefore = cpuSeconds(pid);
  let peak = memoryMiB(pid, 'VmRSS');
  let done = false;
  const work = typeof during === 'number' ? sleep(during * 1000) : during();
  void work.finally(() => (done = true));
  while (!done) {
    await sleep(SAMPLE_MS);
    peak = Math.max(peak, memoryMiB(pid, 'VmRSS'));
  }
  await work;
  const seconds = (performance.now() - started) / 1000;
  return { cpuPercent: (100 * (cpuSeconds(pid) - cpuBefore)) / seconds, seconds, peakRssMiB: peak };
}

/** Whether the node on `dir` says it is in sync (every peer's index read, nothing missing) with one peer connected. */
function saysInSync(dir: string): boolean {
  const run = spawnSync(process.execPath, [...BUILT_CLI, 'status', dir, '--json'], { encoding: 'utf8' });
  if (run.status !== 0) return false;
  const status = JSON.parse(run.stdout) as NodeStatus;
  return status.folder.inSync && status.peers.length === 1;
}

/**
 * Waits until every node says it is in sync, IN_SYNC_CHECKS times in a row: a record one node
 * merges after reading the other's index is sent back, and may be on its way at one check.
 */
async function inSync(dirs: readonly string[]): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let inARow = 0;
  for (;;) {
    inARow = dirs.every(saysInSync) ? inARow + 1 : 0;
    if (inARow >= IN_SYNC_CHECKS) return;
    if (Date.now() > deadline) throw new Error(`${dirs.join(' and ')} did not get in sync`);
    await sleep(1000);
  }
}

async function waitForFile(file: string, size: number): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while ((await stat(file).catch(() => undefined))?.size !== size) {
    if (Date.now() > deadline) throw new Error(`${file} did not arrive`);
    await sleep(100);
  }
}

async function main(): Promise<number> {
  if (spawnSync('taskset', ['-c', '0', 'true']).status !== 0) {
    console.error('bench:pi needs taskset (util-linux) to pin the node to one core');
    return 1;
  }
  const base = await mkdtemp(path.join(os.tmpdir(), 'mesh-bench-pi-'));
  const nodes: JoinProcess[] = [];
  try {
    console.log(`mesh on one core: a node with ${FILES.toLocaleString('en-US')} files indexed, idle ${IDLE_SECONDS} s, then pulling ${PULL_MIB} MiB`);
    console.log(`machine: ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores (the node gets one), node ${process.version}`);
    const [pi, other] = [path.join(base, 'pi'), path.join(base, 'other')];
    let started = performance.now();
    await generate(pi, FILES);
    // The peer holds the same files (copied, so no pull is needed): idle means in sync and connected.
    if (spawnSync('cp', ['-a', pi, other]).status !== 0) throw new Error('cp -a failed');
    console.log(`  ${FILES.toLocaleString('en-US')} files generated (and copied for the peer) in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const key = `mesh1${'5a'.repeat(32)}`;
    started = performance.now();
    const node = startNode(pi, key, [], true);
    nodes.push(node);
    await node.waitForOutput(/scanned the folder/, STEP_TIMEOUT_MS);
    const pid = node.child.pid!;
    console.log(`  first scan of the folder on one core: ${((performance.now() - started) / 1000).toFixed(1)} s, peak RSS ${memoryMiB(pid, 'VmHWM').toFixed(0)} MiB`);

    const port = /\/tcp\/(\d+)\//.exec(node.stdout)?.[1];
    const peer = startNode(other, key, ['--peer', `/ip4/127.0.0.1/tcp/${port}/p2p/${node.peerId}`], false);
    nodes.push(peer);
    await peer.waitForOutput(/peer connected/, STEP_TIMEOUT_MS);
    // Each side receives the other's index (the same files, made apart: recorded as the same content).
    started = performance.now();
    const exchangeCpu = cpuSeconds(pid);
    const peerCpu = cpuSeconds(peer.child.pid!);
    await inSync([pi, other]);
    console.log(
      `  indexes exchanged, both in sync, in ${((performance.now() - started) / 1000).toFixed(1)} s (CPU: ${(cpuSeconds(pid) - exchangeCpu).toFixed(1)} s this node, ${(cpuSeconds(peer.child.pid!) - peerCpu).toFixed(1)} s the peer), RSS ${memoryMiB(pid, 'VmRSS').toFixed(0)} MiB`,
    );
    const settling = await measure(pid, SETTLE_SECONDS);
    console.log(`  the ${SETTLE_SECONDS} s after that (collections and trims after the work): ${settling.cpuPercent.toFixed(2)}% CPU, peak RSS ${settling.peakRssMiB.toFixed(0)} MiB`);
    const idle = await measure(pid, IDLE_SECONDS);
    // File-backed pages are clean (node's binary, the index's tables LevelDB maps): the kernel
    // reclaims them under pressure; anonymous ones are the heap, native allocations and stacks.
    console.log(
      `  idle, connected: ${idle.cpuPercent.toFixed(2)}% CPU over ${idle.seconds.toFixed(0)} s, RSS ${memoryMiB(pid, 'VmRSS').toFixed(0)} MiB (anonymous ${memoryMiB(pid, 'RssAnon').toFixed(0)}, file-backed ${memoryMiB(pid, 'RssFile').toFixed(0)})`,
    );

    const staged = path.join(base, 'big.bin');
    await writeFile(staged, randomChunks('mesh bench pi: pulled file', PULL_MIB * MIB, MIB));
    const syncing = await measure(pid, async () => {
      await rename(staged, path.join(other, 'big.bin'));
      await waitForFile(path.join(pi, 'big.bin'), PULL_MIB * MIB);
    });
    console.log(
      `  pulling ${PULL_MIB} MiB: ${syncing.seconds.toFixed(1)} s (${(PULL_MIB / syncing.seconds).toFixed(1)} MiB/s), ${syncing.cpuPercent.toFixed(0)}% of the core, peak RSS ${syncing.peakRssMiB.toFixed(0)} MiB`,
    );
    const peakRss = memoryMiB(pid, 'VmHWM');
    const targets = [
      { label: `peak RSS < ${TARGET_RSS_MIB} MiB (first scan, idle and pulling)`, value: `${peakRss.toFixed(0)} MiB`, pass: peakRss < TARGET_RSS_MIB },
      { label: `idle CPU < ${TARGET_IDLE_CPU_PERCENT}%`, value: `${idle.cpuPercent.toFixed(2)}%`, pass: idle.cpuPercent < TARGET_IDLE_CPU_PERCENT },
    ];
    console.log('\ntargets');
    for (const target of targets) console.log(`  ${target.pass ? 'PASS' : 'MISS'}  ${target.label}: ${target.value}`);
    return targets.every((target) => target.pass) ? 0 : 2;
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    mkdirSync(OUT_DIR, { recursive: true });
    nodes.forEach((node, i) => writeFileSync(path.join(OUT_DIR, `pi-${['node', 'peer'][i]}.log`), `${node.stdout}\n--- stderr ---\n${node.stderr}`));
    await rm(base, { recursive: true, force: true });
  }
}

process.exitCode = await main();
