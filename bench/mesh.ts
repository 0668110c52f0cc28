/**
 * Acceptance benchmark of `mesh join` (issue 4): two real `mesh join` processes (dist/bundle/mesh.js),
 * each in its own network namespace on a bridge, finding each other by mDNS with a key from
 * `mesh keygen`. Changes are made on A and timed until they are on B; wire bytes are B's eth0
 * counters (the only link between the two; IPv6 is off, so nothing else crosses it).
 *
 *   npm run bench:mesh                       256 MiB file, a few minutes; needs root (namespaces)
 *   MESH_BENCH_MIB=32 npx tsx bench/mesh.ts  quick run
 *   MESH_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' ...   node arguments of the two nodes (a profile)
 *   MESH_BENCH_VERBOSE=1 ...                 the nodes run with -v
 *   MESH_BENCH_LARGE_ONLY=1 ...              only the large file, its 1% edit and its rename (no report, no JSON): for profiling
 *   MESH_BENCH_SMALL_ONLY=1 ...              only the small files after the latency step (no report, no JSON)
 *
 * The nodes' logs go to bench-out/mesh-a.log and mesh-b.log. Exit code: 0 every target met, 2 a
 * target missed, 1 the benchmark could not run or B ended with the wrong content.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { BUILT_CLI, startJoin, treeOf, type JoinProcess } from '../test/join-helpers.js';
import { createLan, netnsUnavailable, type InterfaceBytes, type Lan } from '../test/netns.js';
import { forgetRecentDeletes } from './fresh-disk.js';
import { BenchError, describeMachine, fileMibFromEnvironment, type Machine, median, randomChunks, runBench } from './common.js';
import { EDIT_CHANGED_BYTES, EDIT_DESCRIPTION, editedChunks, planOverwrites } from './edit-pair.js';
import { builtCliProblem, meshKeygen, ROOT } from './mesh-cli.js';
import { contentIs, latencyContent, sha256, sizeOf } from './files.js';
import { cpuSecondsOf, memoryOf as memoryOfPid, type Memory } from './proc.js';
import { BenchScope } from './scope.js';
import { fileCount, generateSmallFiles, SMALL_MAX_BYTES, SMALL_MIN_BYTES, SMALL_TREE } from './small-files.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const MB = 1e6; // decimal MB and MB/s, as the other benchmarks report

const DEFAULT_FILE_MIB = 256;
const MIN_FILE_MIB = 4; // the edit's 256 overwrites of 10 KiB need room to spread out
const MAX_FILE_MIB = 4096;
const CHUNK_BYTES = MIB; // the large file is streamed in 1 MiB pieces

const LATENCY_EDITS = 20;
const LATENCY_FILE_BYTES = KIB;
/** Pause between two latency edits, so each is measured alone (not coalesced with the previous one). */
const LATENCY_GAP_MS = 300;
const LATENCY_POLL_MS = 5;
const FILE_POLL_MS = 10;

const SMALL_FILES = fileCount(SMALL_TREE); // 4 × 5 = 20 folders of 100 files

/**
 * Wait after each step before the next: B rescans what it applied 1 s later (SETTLE_RESCAN_MS),
 * and announces what it applied back to A; both are part of the step's wire bytes. Also past the
 * scanner's 2 s racy window, so no step pays for rehashing the previous one's files.
 */
const SETTLE_MS = 2_500;
const CONNECT_TIMEOUT_MS = 30_000;
/** Long: on a busy machine a slow step should still give a figure (a MISS), not a failure. */
const STEP_TIMEOUT_MS = 300_000;

const TARGET_LATENCY_P50_MS = 300;
const TARGET_LARGE_MB_PER_S = 150;
const TARGET_EDIT_SECONDS = 1.5;
const TARGET_EDIT_WIRE_RATIO = 1.3;
const TARGET_SMALL_SECONDS = 2;
const TARGET_RENAME_WIRE_BYTES = 1 * MB;
const TARGET_RSS_MIB = 120;

const OUT_DIR = path.join(ROOT, 'bench-out');
const JSON_OUT = path.join(OUT_DIR, 'mesh.json');

// ---------------------------------------------------------------- configuration and prerequisites

interface Config {
  fileBytes: number;
  /** Node arguments of the two nodes, before the script (--cpu-prof is refused in NODE_OPTIONS). */
  nodeArgs: string[];
  verbose: boolean;
  /** Stop after the large file and its edit (their costs printed, nothing written). */
  largeOnly: boolean;
  /** After the latency step, only the small files (their costs printed, no report). */
  smallOnly: boolean;
}

function readConfig(): Config {
  const mib = fileMibFromEnvironment('MESH_BENCH_MIB', { fallback: DEFAULT_FILE_MIB, min: MIN_FILE_MIB, max: MAX_FILE_MIB });
  const nodeArgs = (process.env.MESH_BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
  return { fileBytes: mib * MIB, nodeArgs, verbose: process.env.MESH_BENCH_VERBOSE === '1', largeOnly: process.env.MESH_BENCH_LARGE_ONLY === '1', smallOnly: process.env.MESH_BENCH_SMALL_ONLY === '1' };
}

function checkBuilt(): void {
  const problem = builtCliProblem();
  if (problem !== undefined) throw new BenchError(problem);
}

async function checkFreeSpace(fileBytes: number): Promise<void> {
  // The file on A and B, its edited copy staged on A, B's temp file of the edit, small files.
  const needed = 5 * fileBytes + 64 * MIB;
  const info = await statfs(os.tmpdir());
  const free = info.bavail * info.bsize;
  if (free < needed) {
    throw new BenchError(`the benchmark needs ${(needed / 1e9).toFixed(2)} GB free in ${os.tmpdir()}, there is ${(free / 1e9).toFixed(2)} GB`);
  }
}

// ---------------------------------------------------------------- the two nodes

interface Mesh {
  lan: Lan;
  a: JoinProcess;
  b: JoinProcess;
  dirA: string;
  dirB: string;
  /** Outside both folders, on the same file system: files are made here, then renamed in whole. */
  staging: string;
  /** When each line of B's output arrived (performance.now()). */
  bLines: TimedLine[];
}

interface TimedLine {
  at: number;
  text: string;
}

/** Records each line a node prints with the time it arrived. */
function collectLines(node: JoinProcess): TimedLine[] {
  const lines: TimedLine[] = [];
  let partial = '';
  node.child.stdout!.on('data', (chunk: Buffer) => {
    const at = performance.now();
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) lines.push({ at, text });
  });
  return lines;
}

async function startMesh(scope: BenchScope, lan: Lan, workDir: string, config: Config): Promise<Mesh> {
  const key = await meshKeygen();
  const dirA = path.join(workDir, 'a');
  const dirB = path.join(workDir, 'b');
  const staging = path.join(workDir, 'staging');
  for (const dir of [dirA, dirB, staging]) await mkdir(dir);
  // Registered before the nodes, so it runs after they have stopped (their last lines, and a profile, written).
  const nodes: JoinProcess[] = [];
  scope.after(async () => saveLogs(nodes));
  const options = { cli: [...config.nodeArgs, ...BUILT_CLI] };
  const args = config.verbose ? ['-v'] : [];
  const a = startJoin(scope, lan, 0, dirA, key, args, options);
  const b = startJoin(scope, lan, 1, dirB, key, args, options);
  nodes.push(a, b);
  const bLines = collectLines(b);
  for (const node of nodes) {
    await node.waitForOutput(/scanned the folder/, CONNECT_TIMEOUT_MS);
    await node.waitForOutput(/peer connected/, CONNECT_TIMEOUT_MS);
  }
  return { lan, a, b, dirA, dirB, staging, bLines };
}

function saveLogs(nodes: readonly JoinProcess[]): void {
  nodes.forEach((node, i) => {
    writeFileSync(path.join(OUT_DIR, `mesh-${'ab'[i]}.log`), `${node.stdout}\n--- stderr ---\n${node.stderr}`);
  });
}

function memoryOf(node: JoinProcess): Memory {
  return memoryOfPid(node.child.pid!);
}

// ---------------------------------------------------------------- measuring

const LAST_LINES = 8;

/** The end of each node's output, for an error (the whole logs are saved in bench-out/). */
function lastWords(mesh: Mesh): string {
  const tail = (text: string): string => text.trimEnd().split('\n').slice(-LAST_LINES).join('\n');
  return ([['A', mesh.a], ['B', mesh.b]] as const).map(([name, node]) => `${name} stdout:\n${tail(node.stdout)}\n${name} stderr:\n${tail(node.stderr)}`).join('\n');
}

/** Polls `done` every `intervalMs` until it is true; returns performance.now() at that moment. */
async function pollUntil(what: string, intervalMs: number, done: () => Promise<boolean> | boolean, mesh: Mesh): Promise<number> {
  const deadline = performance.now() + STEP_TIMEOUT_MS;
  for (;;) {
    if (await done()) return performance.now();
    if (performance.now() > deadline) throw new Error(`${what}: not done within ${STEP_TIMEOUT_MS} ms\n${lastWords(mesh)}`);
    if (mesh.a.child.exitCode !== null || mesh.b.child.exitCode !== null) throw new Error(`${what}: a node exited\n${lastWords(mesh)}`);
    await sleep(intervalMs);
  }
}

interface StepCost {
  wire: WireBytes;
  /** CPU seconds each node used: on a busy machine this tells work from waiting for a core. */
  cpu: { a: number; b: number };
  /** Each node's RSS and peak so far, at the end of the step: shows which step set the peak. */
  memory: { a: Memory; b: Memory };
}

/** Bytes through B's eth0 both ways and the nodes' CPU time while `work` ran, and SETTLE_MS after it (B's announcements back, rescans). */
async function measureStep(mesh: Mesh, work: () => Promise<void>): Promise<StepCost> {
  const before = await mesh.lan.bytes(1);
  const cpuBefore = { a: cpuSecondsOf(mesh.a.child.pid!), b: cpuSecondsOf(mesh.b.child.pid!) };
  await work();
  await sleep(SETTLE_MS);
  const after = await mesh.lan.bytes(1);
  return {
    wire: difference(before, after),
    cpu: { a: cpuSecondsOf(mesh.a.child.pid!) - cpuBefore.a, b: cpuSecondsOf(mesh.b.child.pid!) - cpuBefore.b },
    memory: { a: memoryOf(mesh.a), b: memoryOf(mesh.b) },
  };
}

interface WireBytes {
  /** A to B. */
  rx: number;
  /** B to A. */
  tx: number;
  total: number;
}

function difference(before: InterfaceBytes, after: InterfaceBytes): WireBytes {
  const rx = after.rx - before.rx;
  const tx = after.tx - before.tx;
  return { rx, tx, total: rx + tx };
}

/** Problems with what B ended with: the benchmark then exits 1. */
const problems: string[] = [];

// ---------------------------------------------------------------- the steps

interface LatencyResult {
  editsMs: number[];
  p50Ms: number;
  maxMs: number;
}

/** A small file edited in place on A, timed until B's copy has the new content. */
async function benchLatency(mesh: Mesh): Promise<LatencyResult> {
  const name = 'latency.txt';
  const [onA, onB] = [path.join(mesh.dirA, name), path.join(mesh.dirB, name)];
  // Untimed: the file exists on both before the edits, and the path from A's watcher to B's disk is warm.
  await writeFile(onA, latencyContent(0, LATENCY_FILE_BYTES));
  await pollUntil('first latency file', LATENCY_POLL_MS, () => contentIs(onB, latencyContent(0, LATENCY_FILE_BYTES)), mesh);
  await sleep(SETTLE_MS);
  const editsMs: number[] = [];
  for (let edit = 1; edit <= LATENCY_EDITS; edit++) {
    const content = latencyContent(edit, LATENCY_FILE_BYTES);
    const start = performance.now();
    await writeFile(onA, content);
    const end = await pollUntil(`latency edit ${edit}`, LATENCY_POLL_MS, () => contentIs(onB, content), mesh);
    editsMs.push(end - start);
    await sleep(LATENCY_GAP_MS);
  }
  const result = { editsMs, p50Ms: median(editsMs), maxMs: Math.max(...editsMs) };
  console.log(`  latency of a ${LATENCY_FILE_BYTES}-byte edit (ms): ${editsMs.map((ms) => ms.toFixed(0)).join(' ')}`);
  return result;
}

interface TransferResult extends StepCost {
  seconds: number;
}

interface LargeResult extends TransferResult {
  mbPerSecond: number;
  generateSeconds: number;
}

/** A new large random file, written outside the folder and renamed in whole; timed until B has it. */
async function benchLargeFile(mesh: Mesh, fileBytes: number): Promise<LargeResult> {
  const staged = path.join(mesh.staging, 'big.bin');
  const generateStart = performance.now();
  await writeFile(staged, randomChunks('mesh bench mesh: big file', fileBytes, CHUNK_BYTES));
  const generateSeconds = (performance.now() - generateStart) / 1000;
  await sleep(SETTLE_MS); // its writeback and mtime well behind it
  const onB = path.join(mesh.dirB, 'big.bin');
  let seconds = 0;
  const cost = await measureStep(mesh, async () => {
    const start = performance.now();
    await rename(staged, path.join(mesh.dirA, 'big.bin'));
    const end = await pollUntil('large file', FILE_POLL_MS, async () => (await sizeOf(onB)) === fileBytes, mesh);
    seconds = (end - start) / 1000;
  });
  if ((await sha256(onB)) !== (await sha256(path.join(mesh.dirA, 'big.bin')))) problems.push('large file: B has other content than A');
  const result = { seconds, ...cost, mbPerSecond: fileBytes / MB / seconds, generateSeconds };
  console.log(`  new ${fileBytes / MIB} MiB file: ${seconds.toFixed(2)} s, ${result.mbPerSecond.toFixed(0)} MB/s, ${bytes(cost.wire.total)} bytes on the wire`);
  return result;
}

interface EditResult extends TransferResult {
  changedBytes: number;
  ratio: number;
}

/** The edit pair of bench:delta, made in a copy outside the folder and renamed over A's file. */
async function benchEdit(mesh: Mesh, fileBytes: number): Promise<EditResult> {
  const onA = path.join(mesh.dirA, 'big.bin');
  const staged = path.join(mesh.staging, 'big-edited.bin');
  const newBytes = fileBytes + 1;
  await writeFile(staged, editedChunks(onA, planOverwrites(newBytes)));
  await sleep(SETTLE_MS);
  const onB = path.join(mesh.dirB, 'big.bin');
  let seconds = 0;
  const cost = await measureStep(mesh, async () => {
    const start = performance.now();
    await rename(staged, onA);
    const end = await pollUntil('edit', FILE_POLL_MS, async () => (await sizeOf(onB)) === newBytes, mesh);
    seconds = (end - start) / 1000;
  });
  if ((await sha256(onB)) !== (await sha256(onA))) problems.push('edit: B has other content than A');
  const result = { seconds, ...cost, changedBytes: EDIT_CHANGED_BYTES, ratio: cost.wire.total / EDIT_CHANGED_BYTES };
  console.log(`  1% edit: ${seconds.toFixed(2)} s, ${bytes(cost.wire.total)} bytes on the wire for ${bytes(EDIT_CHANGED_BYTES)} changed (${result.ratio.toFixed(2)}x)`);
  return result;
}

function pulledCount(lines: readonly TimedLine[], from: number): { count: number; last: number } {
  let count = 0;
  let last = 0;
  for (let i = from; i < lines.length; i++) {
    const line = lines[i];
    if (/ pulled tree\/\S+\.bin /.test(line.text)) {
      count++;
      last = line.at;
    }
  }
  return { count, last };
}

/** A tree of small files made outside the folder and renamed in (one rename); timed until B has logged every pull. */
async function benchSmallFiles(mesh: Mesh): Promise<TransferResult> {
  const staged = path.join(mesh.staging, 'tree');
  await generateSmallFiles(mesh.staging, SMALL_TREE);
  await sleep(SETTLE_MS);
  let seconds = 0;
  const cost = await measureStep(mesh, async () => {
    const from = mesh.bLines.length;
    const start = performance.now();
    await rename(staged, path.join(mesh.dirA, 'tree'));
    // B logs each pull once it is on disk and recorded; watching its log costs no disk walks while it works.
    const end = await pollUntil('small files', FILE_POLL_MS, () => pulledCount(mesh.bLines, from).count >= SMALL_FILES, mesh);
    seconds = (Math.min(end, pulledCount(mesh.bLines, from).last) - start) / 1000;
  });
  const [treeA, treeB] = await Promise.all([treeOf(path.join(mesh.dirA, 'tree')), treeOf(path.join(mesh.dirB, 'tree'))]);
  const same = treeA.size === treeB.size && [...treeA].every(([p, what]) => treeB.get(p) === what);
  if (!same || [...treeA.values()].filter((what) => what.startsWith('file:')).length !== SMALL_FILES) problems.push('small files: B has another tree than A');
  console.log(`  ${SMALL_FILES} small files: ${seconds.toFixed(2)} s, ${bytes(cost.wire.total)} bytes on the wire`);
  return { seconds, ...cost };
}

/** The large file moved into another folder on A; timed until it is there on B and gone from its old place. */
async function benchRename(mesh: Mesh, fileBytes: number): Promise<TransferResult> {
  const archive = 'archive';
  await mkdir(path.join(mesh.dirA, archive));
  await pollUntil('archive folder', FILE_POLL_MS, () => existsSync(path.join(mesh.dirB, archive)), mesh);
  await sleep(SETTLE_MS);
  const [oldOnB, newOnB] = [path.join(mesh.dirB, 'big.bin'), path.join(mesh.dirB, archive, 'big.bin')];
  let seconds = 0;
  const cost = await measureStep(mesh, async () => {
    const start = performance.now();
    await rename(path.join(mesh.dirA, 'big.bin'), path.join(mesh.dirA, archive, 'big.bin'));
    const end = await pollUntil('rename', FILE_POLL_MS, async () => (await sizeOf(newOnB)) === fileBytes + 1 && !existsSync(oldOnB), mesh);
    seconds = (end - start) / 1000;
  });
  if ((await sha256(newOnB)) !== (await sha256(path.join(mesh.dirA, archive, 'big.bin')))) problems.push('rename: B has other content than A');
  console.log(`  rename into ${archive}/: ${seconds.toFixed(2)} s, ${bytes(cost.wire.total)} bytes on the wire`);
  return { seconds, ...cost };
}

// ---------------------------------------------------------------- report

interface Results {
  latency: LatencyResult;
  large: LargeResult;
  edit: EditResult;
  small: TransferResult;
  rename: TransferResult;
  memory: { a: Memory; b: Memory };
}

interface Target {
  label: string;
  target: string;
  value: string;
  pass: boolean;
}

function bytes(n: number): string {
  return n.toLocaleString('en-US');
}

function evaluateTargets(r: Results, fileBytes: number): Target[] {
  const mib = fileBytes / MIB;
  const peak = Math.max(r.memory.a.peakRssMiB, r.memory.b.peakRssMiB);
  return [
    { label: 'small edit latency, p50', target: `< ${TARGET_LATENCY_P50_MS} ms`, value: `${r.latency.p50Ms.toFixed(0)} ms (max ${r.latency.maxMs.toFixed(0)} ms)`, pass: r.latency.p50Ms < TARGET_LATENCY_P50_MS },
    {
      label: `new ${mib} MiB file`,
      target: `>= ${TARGET_LARGE_MB_PER_S} MB/s`,
      value: `${r.large.mbPerSecond.toFixed(0)} MB/s (${r.large.seconds.toFixed(2)} s)`,
      pass: r.large.mbPerSecond >= TARGET_LARGE_MB_PER_S,
    },
    { label: `1% edit of it, time`, target: `< ${TARGET_EDIT_SECONDS} s`, value: `${r.edit.seconds.toFixed(2)} s`, pass: r.edit.seconds < TARGET_EDIT_SECONDS },
    {
      label: '1% edit, wire / changed bytes',
      target: `< ${TARGET_EDIT_WIRE_RATIO}x`,
      value: `${r.edit.ratio.toFixed(2)}x (${bytes(r.edit.wire.total)} / ${bytes(r.edit.changedBytes)})`,
      pass: r.edit.ratio < TARGET_EDIT_WIRE_RATIO,
    },
    { label: `${SMALL_FILES} small files`, target: `< ${TARGET_SMALL_SECONDS} s`, value: `${r.small.seconds.toFixed(2)} s`, pass: r.small.seconds < TARGET_SMALL_SECONDS },
    {
      label: 'rename of the large file, wire',
      target: `< ${bytes(TARGET_RENAME_WIRE_BYTES)} B`,
      value: `${bytes(r.rename.wire.total)} B (${r.rename.seconds.toFixed(2)} s)`,
      pass: r.rename.wire.total < TARGET_RENAME_WIRE_BYTES,
    },
    {
      label: 'peak RSS per node (VmHWM)',
      target: `< ${TARGET_RSS_MIB} MiB`,
      value: `A ${r.memory.a.peakRssMiB.toFixed(1)}, B ${r.memory.b.peakRssMiB.toFixed(1)} MiB`,
      pass: peak < TARGET_RSS_MIB,
    },
  ];
}

function row(cells: readonly string[]): string {
  const widths = [32, 12, 34];
  return '  ' + cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' ');
}

function costRow(label: string, { wire, cpu, memory }: StepCost): string {
  const cpuText = `CPU A ${cpu.a.toFixed(2)} s, B ${cpu.b.toFixed(2)} s`;
  const peaks = `peak RSS so far A ${memory.a.peakRssMiB.toFixed(0)}, B ${memory.b.peakRssMiB.toFixed(0)} MiB`;
  return `  ${label.padEnd(18)} ${bytes(wire.total).padStart(12)} B (A to B ${bytes(wire.rx)}, B to A ${bytes(wire.tx)}); ${cpuText}; ${peaks}`;
}

function printReport(r: Results, targets: readonly Target[]): void {
  console.log(`\nwire bytes (B's eth0, both ways) and the nodes' CPU time, until ${SETTLE_MS / 1000} s after B had the change`);
  console.log(costRow('new large file', r.large));
  console.log(costRow('1% edit', r.edit));
  console.log(costRow(`${SMALL_FILES} small files`, r.small));
  console.log(costRow('rename', r.rename));
  const memory = (name: string, m: Memory): string => `${name} ${m.rssMiB.toFixed(1)} MiB now, ${m.peakRssMiB.toFixed(1)} MiB peak`;
  console.log(`\nRSS at the end: ${memory('A', r.memory.a)}; ${memory('B', r.memory.b)}`);
  console.log('\ntargets');
  console.log(row(['     figure', 'target', 'measured']));
  for (const t of targets) console.log(`  ${t.pass ? 'PASS' : 'MISS'} ${row([t.label, t.target, t.value]).trimStart()}`);
  printProblems();
}

/** The wrong results found (a copy that differs), if any: in every mode, a partial run's too. */
function printProblems(): void {
  if (problems.length === 0) return;
  console.log('\nwrong results');
  for (const problem of problems) console.log(`  ${problem}`);
}

// ---------------------------------------------------------------- main

let workDir: string | undefined;

/** The last resort, at exit: the netns helpers' own exit hook (registered first) has killed the nodes by then. */
function removeWorkDirNow(): void {
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true, maxRetries: 5 });
  workDir = undefined;
}

function onSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`\ninterrupted by ${signal}: nodes, namespaces and temporary files removed\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

async function run(scope: BenchScope, config: Config, machine: Machine): Promise<number> {
  const started = performance.now();
  const lan = await createLan(scope, 2);
  // After createLan: its signal and exit hooks (kill the nodes, delete the namespaces) run before these.
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', removeWorkDirNow);
  workDir = await mkdtemp(path.join(os.tmpdir(), 'mesh-bench-mesh-'));
  scope.after(async () => removeWorkDirNow());
  const mesh = await startMesh(scope, lan, workDir, config);
  console.log(`nodes connected and scanned in ${((performance.now() - started) / 1000).toFixed(2)} s (A ${mesh.lan.hosts[0].address}, B ${mesh.lan.hosts[1].address}); runs:`);

  const latency = await benchLatency(mesh);
  if (config.smallOnly) {
    console.log(costRow(`${SMALL_FILES} small files`, await benchSmallFiles(mesh)));
    printProblems();
    return problems.length > 0 ? 1 : 0;
  }
  const large = await benchLargeFile(mesh, config.fileBytes);
  const edit = await benchEdit(mesh, config.fileBytes);
  if (config.largeOnly) {
    console.log(costRow('new large file', large));
    console.log(costRow('1% edit', edit));
    console.log(costRow('rename', await benchRename(mesh, config.fileBytes)));
    printProblems();
    return problems.length > 0 ? 1 : 0;
  }
  const small = await benchSmallFiles(mesh);
  const renamed = await benchRename(mesh, config.fileBytes);
  const results: Results = { latency, large, edit, small, rename: renamed, memory: { a: memoryOf(mesh.a), b: memoryOf(mesh.b) } };
  const targets = evaluateTargets(results, config.fileBytes);
  printReport(results, targets);
  const how = {
    latency: `${LATENCY_EDITS} in-place rewrites of a ${LATENCY_FILE_BYTES}-byte file on A, B's copy read every ${LATENCY_POLL_MS} ms`,
    large: 'random bytes (AES-CTR keystream) written outside the folder, then renamed in; timed from the rename until B has the whole file (polled every 10 ms)',
    edit: `${EDIT_DESCRIPTION}; made in a copy outside the folder, renamed over A's file`,
    small: `${SMALL_FILES} files of ${SMALL_MIN_BYTES}-${SMALL_MAX_BYTES} bytes in ${SMALL_TREE.tops}x${SMALL_TREE.subs} nested folders, made outside the folder and renamed in as one tree; timed until B logged every pull`,
    rename: 'the large file moved into another folder on A',
    wire: `B's eth0 counters, both ways, until ${SETTLE_MS} ms after B had the change`,
    cpu: 'user + system time of each node from /proc/PID/stat over the same span',
  };
  await writeFile(JSON_OUT, `${JSON.stringify({ date: new Date().toISOString(), machine, fileBytes: config.fileBytes, how, results, targets, problems }, null, 2)}\n`);
  console.log(`\nresults written to ${path.relative(ROOT, JSON_OUT)}; node logs in ${path.relative(ROOT, OUT_DIR)}/mesh-a.log, mesh-b.log`);
  if (problems.length > 0) return 1;
  return targets.every((t) => t.pass) ? 0 : 2;
}

async function main(): Promise<number> {
  const config = readConfig();
  const unavailable = await netnsUnavailable();
  if (unavailable !== undefined) throw new BenchError(`bench:mesh runs its nodes in network namespaces: ${unavailable}`);
  checkBuilt();
  await checkFreeSpace(config.fileBytes);
  await mkdir(OUT_DIR, { recursive: true });
  const machine = describeMachine();
  console.log(`mesh join benchmark: two nodes in network namespaces on a bridge, ${config.fileBytes / MIB} MiB large file`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.os}, load average ${machine.loadAverage1m.toFixed(2)} at start`);
  console.log(await forgetRecentDeletes());
  const scope = new BenchScope();
  try {
    return await run(scope, config, machine);
  } finally {
    await scope.close();
  }
}

await runBench('bench/mesh', main);
