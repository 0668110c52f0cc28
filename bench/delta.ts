/**
 * Acceptance benchmark of the delta engine: mesh against librsync's `rdiff` on the same files in the
 * same run, file I/O included. mesh is measured two ways:
 *   mesh      the engine as `mesh join` runs it: one long-lived process (bench/rdiff-server.mjs) that
 *             runs each `mesh rdiff` command through the command's own code, JIT warm (one untimed
 *             run first). The targets are judged on this column.
 *   mesh-cli  `mesh rdiff` as a new process per command, start-up (~0.2 s of Node) included.
 *   rdiff     `rdiff` as a new process per command.
 *
 *   npx tsx bench/delta.ts                   256 MiB files, a few minutes
 *   MESH_BENCH_MIB=16 npx tsx bench/delta.ts quick run
 *
 * Run `npm run build` first: mesh-cli measures dist/. Exit code: 0 every target met, 2 a target
 * missed, 1 the benchmark could not run or a tool produced a wrong result.
 */
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BenchError, fileMibFromEnvironment, highWaterKiB, median, randomChunks, runBench, runMeasured, sourcesChangedSince } from './common.js';
import { EDIT_DESCRIPTION, editedChunks, planOverwrites, readChunks } from './edit-pair.js';
import { benchFineRound, type FineRoundRun } from './fine-round.js';

const MIB = 1024 * 1024;
const MB = 1e6; // throughput is reported in decimal MB/s, as disks and rdiff do
const DEFAULT_FILE_MIB = 256;
const MIN_FILE_MIB = 4; // the overwrites below need room to spread out
const MAX_FILE_MIB = 4096;
const CHUNK_LENGTH = MIB; // every file is streamed in 1 MiB pieces, never held whole


const RUNS = 3; // the median of three shrugs off one noisy run
// OLD, NEW, both tools' deltas (each ~NEW for the disjoint pair) and one patch output at a time.
const DISK_FACTOR = 5.5;

const TARGET_SPEEDUP = 2;
const TARGET_PATCH_MB_PER_S = 1000;
const TARGET_PEAK_RSS_MIB = 150;

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const JSON_OUT = path.join(ROOT, 'bench-out', 'delta.json');

type ToolName = 'mesh' | 'mesh-cli' | 'rdiff';
type StepName = 'signature' | 'delta' | 'patch';
type PairName = 'edit' | 'disjoint';

const TOOL_NAMES: readonly ToolName[] = ['mesh', 'mesh-cli', 'rdiff'];
const SERVER = path.join(ROOT, 'bench', 'rdiff-server.mjs');
const STEP_NAMES: readonly StepName[] = ['signature', 'delta', 'patch'];

// ---------------------------------------------------------------- configuration and prerequisites

/** The version line of rdiff; spawning it is also how we learn whether it is on PATH. */
function rdiffVersion(): string {
  const result = spawnSync('rdiff', ['--version'], { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    throw new BenchError('rdiff (librsync) is missing: install it with `apt-get install rdiff` (Debian package rdiff)');
  }
  return result.stdout.split('\n')[0]?.trim() ?? 'rdiff (unknown version)';
}

function checkBuilt(): void {
  if (!existsSync(CLI)) throw new BenchError(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first`);
  // The benchmark runs dist/, so an edit in src/ since the last build would go unmeasured.
  if (sourcesChangedSince(ROOT, CLI)) console.log('warning: src/ changed since the last build: run `npm run build` to measure the current code\n');
}

async function checkFreeSpace(fileLength: number): Promise<void> {
  const info = await statfs(os.tmpdir());
  const free = info.bavail * info.bsize;
  const needed = DISK_FACTOR * fileLength;
  if (free < needed) {
    throw new BenchError(
      `the benchmark needs ${gigabytes(needed)} GB free in ${os.tmpdir()}, there is ${gigabytes(free)} GB: ` +
        'free some space, point TMPDIR elsewhere, or shrink the files with MESH_BENCH_MIB',
    );
  }
}

interface Machine {
  cpu: string;
  cores: number;
  node: string;
  rdiff: string;
}

function describeMachine(rdiff: string): Machine {
  const cpus = os.cpus();
  return { cpu: cpus[0]?.model.trim() ?? 'unknown CPU', cores: cpus.length, node: process.version, rdiff };
}

// ---------------------------------------------------------------- the temporary directory

let workDir: string | undefined;
let running: ChildProcess | undefined;

async function makeWorkDir(): Promise<string> {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'mesh-bench-delta-'));
  return workDir;
}

function removeWorkDir(): void {
  if (workDir === undefined) return;
  // Retries: a child killed a moment ago may still be closing a file in there.
  rmSync(workDir, { recursive: true, force: true, maxRetries: 5 });
  workDir = undefined;
}

function onSignal(signal: NodeJS.Signals): void {
  running?.kill('SIGKILL');
  server?.child.kill('SIGKILL');
  removeWorkDir();
  process.stderr.write(`\ninterrupted by ${signal}: temporary files removed\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

// ---------------------------------------------------------------- deterministic test data

interface Pair {
  name: PairName;
  description: string;
  makeNew(oldFile: string, newFile: string, fileLength: number): Promise<void>;
}

const PAIRS: readonly Pair[] = [
  {
    name: 'edit',
    description: EDIT_DESCRIPTION,
    makeNew: (oldFile, newFile, fileLength) => writeFile(newFile, editedChunks(oldFile, planOverwrites(fileLength + 1))),
  },
  {
    name: 'disjoint',
    description: 'NEW is unrelated random data',
    makeNew: (_oldFile, newFile, fileLength) => writeFile(newFile, randomChunks('mesh bench delta: disjoint new', fileLength, CHUNK_LENGTH)),
  },
];

/** Reads files once so that every tool, and every run, finds them in the page cache. */
async function warmPageCache(...files: string[]): Promise<number> {
  let length = 0;
  for (const file of files) for await (const chunk of readChunks(file)) length += chunk.length;
  return length;
}

// ---------------------------------------------------------------- running and measuring a command

interface Measurement {
  seconds: number;
  peakRssKiB: number;
}


/** Runs a command to completion; wall time from spawn to exit, peak RSS polled while it runs. */
async function measure(command: string, args: readonly string[]): Promise<Measurement> {
  const { seconds, peakRssKiB } = await runMeasured(command, args, (child) => (running = child));
  return { seconds, peakRssKiB };
}

/** The long-lived mesh process and its answers, one line per request. */
interface Server {
  child: ChildProcessWithoutNullStreams;
  replies: AsyncIterator<string>;
  lines: Interface;
}

let server: Server | undefined;

function startServer(): Server {
  const child = spawn(process.execPath, [SERVER], { cwd: ROOT });
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const lines = createInterface({ input: child.stdout });
  return { child, lines, replies: lines[Symbol.asyncIterator]() };
}

function stopServer(): void {
  server?.lines.close();
  server?.child.stdin.end();
  server = undefined;
}

/** Runs one `mesh rdiff` command in the long-lived process; its own clock, its peak RSS so far. */
async function measureInServer(args: readonly string[]): Promise<Measurement> {
  server ??= startServer();
  server.child.stdin.write(`${JSON.stringify({ args })}\n`);
  const reply = await server.replies.next();
  if (reply.done === true) throw new Error('the mesh engine process ended unexpectedly');
  const { seconds, code } = JSON.parse(reply.value) as { seconds: number; code: number };
  if (code !== 0) throw new Error(`\`mesh rdiff ${args.join(' ')}\` failed in the engine process (exit code ${code})`);
  return { seconds, peakRssKiB: highWaterKiB(server.child.pid) };
}

interface Tool {
  name: ToolName;
  run(args: readonly string[]): Promise<Measurement>;
  /** Untimed runs before the timed ones. */
  warmUp: number;
}

const TOOLS: readonly Tool[] = [
  { name: 'mesh', run: measureInServer, warmUp: 1 },
  { name: 'mesh-cli', run: (args) => measure(process.execPath, [CLI, 'rdiff', ...args]), warmUp: 0 },
  { name: 'rdiff', run: (args) => measure('rdiff', args), warmUp: 0 },
];

interface Files {
  old: string;
  new: string;
  sig: string;
  delta: string;
  out: string;
}

function filesOf(dir: string, tool: ToolName): Files {
  const own = (suffix: string): string => path.join(dir, `${tool}.${suffix}`);
  return { old: path.join(dir, 'old'), new: path.join(dir, 'new'), sig: own('sig'), delta: own('delta'), out: own('out') };
}

/** The command line of a step, its output, and the input whose bytes define its throughput. */
function stepPlan(step: StepName, f: Files): { args: string[]; output: string; measuredFile: string } {
  switch (step) {
    case 'signature':
      return { args: ['signature', f.old, f.sig], output: f.sig, measuredFile: f.old };
    case 'delta':
      return { args: ['delta', f.sig, f.new, f.delta], output: f.delta, measuredFile: f.new };
    case 'patch':
      return { args: ['patch', f.old, f.delta, f.out], output: f.out, measuredFile: f.out };
  }
}

/** Compares two files in 1 MiB pieces; throws with the first differing offset. */
async function assertSameFile(actual: string, expected: string, what: string): Promise<void> {
  const [a, b] = [(await stat(actual)).size, (await stat(expected)).size];
  if (a !== b) throw new Error(`${what}: the patched file has ${a} bytes, NEW has ${b}`);
  const left = readChunks(actual);
  const right = readChunks(expected);
  let position = 0;
  for await (const chunk of left) {
    const other = await right.next();
    if (other.done === true || !chunk.equals(other.value)) {
      throw new Error(`${what}: the patched file differs from NEW in the 1 MiB from offset ${position}`);
    }
    position += chunk.length;
  }
  await right.return(undefined);
}

interface StepResult {
  runsSeconds: number[];
  medianSeconds: number;
  bytes: number;
  mbPerSecond: number;
  peakRssMiB: number;
}


function summarize(runs: readonly Measurement[], bytes: number): StepResult {
  const runsSeconds = runs.map((run) => run.seconds);
  const medianSeconds = median(runsSeconds);
  const peakRssKiB = Math.max(...runs.map((run) => run.peakRssKiB));
  return { runsSeconds, medianSeconds, bytes, mbPerSecond: bytes / MB / medianSeconds, peakRssMiB: peakRssKiB / 1024 };
}

/** One run of one step; patch output is checked against NEW every time, then removed to save disk. */
async function runOnce(tool: Tool, step: StepName, files: Files, pair: PairName): Promise<{ run: Measurement; bytes: number }> {
  const plan = stepPlan(step, files);
  await rm(plan.output, { force: true }); // fresh output every run, without relying on -f
  const run = await tool.run(plan.args);
  const bytes = (await stat(plan.measuredFile)).size;
  if (step === 'patch') {
    await assertSameFile(files.out, files.new, `${tool.name} patch (${pair} pair)`);
    await rm(files.out);
  }
  return { run, bytes };
}

type StepResults = Record<ToolName, StepResult>;

/** All runs of a step, the tools taking turns so that slow drift of the machine hits both alike. */
async function benchStep(step: StepName, dir: string, pair: PairName): Promise<StepResults> {
  const runs: Record<ToolName, Measurement[]> = { mesh: [], 'mesh-cli': [], rdiff: [] };
  const bytes: Record<ToolName, number> = { mesh: 0, 'mesh-cli': 0, rdiff: 0 };
  for (const tool of TOOLS) {
    for (let i = 0; i < tool.warmUp; i++) await runOnce(tool, step, filesOf(dir, tool.name), pair);
  }
  for (let i = 0; i < RUNS; i++) {
    for (const tool of TOOLS) {
      const once = await runOnce(tool, step, filesOf(dir, tool.name), pair);
      runs[tool.name].push(once.run);
      bytes[tool.name] = once.bytes;
    }
  }
  const results = Object.fromEntries(TOOL_NAMES.map((tool) => [tool, summarize(runs[tool], bytes[tool])])) as StepResults;
  const times = (tool: ToolName): string => `${tool} ${results[tool].runsSeconds.map((s) => s.toFixed(3)).join(' ')}`;
  console.log(`  ${pair} ${step} (s): ${TOOL_NAMES.map(times).join('; ')}`);
  return results;
}

interface PairResult {
  pair: PairName;
  description: string;
  steps: Record<StepName, StepResults>;
  signatureBytes: Record<ToolName, number>;
  deltaBytes: Record<ToolName, number>;
  /** The edit pair as one transfer, without and with the fine round (fine-round.ts). */
  transfer?: FineRoundRun[];
}

async function sizes(dir: string, pick: (files: Files) => string): Promise<Record<ToolName, number>> {
  const entries = await Promise.all(TOOL_NAMES.map(async (tool) => [tool, (await stat(pick(filesOf(dir, tool)))).size]));
  return Object.fromEntries(entries) as Record<ToolName, number>;
}

async function benchPair(pair: Pair, dir: string, fileLength: number): Promise<PairResult> {
  const { old: oldFile, new: newFile } = filesOf(dir, 'mesh');
  await pair.makeNew(oldFile, newFile, fileLength);
  await warmPageCache(oldFile, newFile);
  const signature = await benchStep('signature', dir, pair.name);
  const delta = await benchStep('delta', dir, pair.name);
  const patch = await benchStep('patch', dir, pair.name);
  const transfer = pair.name === 'edit' ? await benchFineRound(oldFile, newFile, path.join(dir, 'transfer-out.bin'), RUNS) : undefined;
  const result: PairResult = {
    pair: pair.name,
    description: pair.description,
    steps: { signature, delta, patch },
    signatureBytes: await sizes(dir, (f) => f.sig),
    deltaBytes: await sizes(dir, (f) => f.delta),
    ...(transfer === undefined ? {} : { transfer }),
  };
  // Only OLD is shared between pairs; the rest would only take disk space.
  for (const tool of TOOL_NAMES) {
    const f = filesOf(dir, tool);
    for (const file of [f.new, f.sig, f.delta]) await rm(file, { force: true });
  }
  return result;
}

// ---------------------------------------------------------------- report

interface Target {
  label: string;
  pass: boolean;
  value: string;
}

function ratio(pair: PairResult, step: StepName): number {
  return pair.steps[step].mesh.mbPerSecond / pair.steps[step].rdiff.mbPerSecond;
}

function peakRssMiB(pairs: readonly PairResult[], tool: ToolName): number {
  return Math.max(...pairs.flatMap((pair) => STEP_NAMES.map((step) => pair.steps[step][tool].peakRssMiB)));
}

function evaluateTargets(pairs: readonly PairResult[]): Target[] {
  const targets: Target[] = [];
  for (const pair of pairs) {
    for (const step of ['signature', 'delta'] as const) {
      const speedup = ratio(pair, step);
      targets.push({
        label: `${step} >= ${TARGET_SPEEDUP}x rdiff MB/s (${pair.pair})`,
        pass: speedup >= TARGET_SPEEDUP,
        value: `${speedup.toFixed(2)}x`,
      });
    }
    const { mesh, rdiff } = pair.deltaBytes;
    targets.push({
      label: `delta no larger than rdiff's (${pair.pair})`,
      pass: mesh <= rdiff,
      value: `${bytes(mesh)} vs ${bytes(rdiff)} bytes`,
    });
    const patch = pair.steps.patch.mesh.mbPerSecond;
    targets.push({
      label: `patch >= ${TARGET_PATCH_MB_PER_S} MB/s (${pair.pair})`,
      pass: patch >= TARGET_PATCH_MB_PER_S,
      value: `${patch.toFixed(1)} MB/s`,
    });
  }
  const rss = peakRssMiB(pairs, 'mesh');
  targets.push({ label: `peak RSS < ${TARGET_PEAK_RSS_MIB} MiB`, pass: rss < TARGET_PEAK_RSS_MIB, value: `${rss.toFixed(1)} MiB` });
  return targets;
}

function gigabytes(n: number): string {
  return (n / 1e9).toFixed(2);
}

function bytes(n: number): string {
  return n.toLocaleString('en-US');
}

function row(cells: readonly string[]): string {
  const widths = [10, 10, 14, 11, 11, 8, 10, 8];
  return '  ' + cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' ');
}

function printPair(pair: PairResult): void {
  console.log(`\n${pair.pair} pair: ${pair.description}`);
  console.log(row(['step', 'mesh MB/s', 'mesh-cli MB/s', 'rdiff MB/s', 'mesh/rdiff', 'mesh s', 'mesh-cli s', 'rdiff s']));
  for (const step of STEP_NAMES) {
    const { mesh, rdiff } = pair.steps[step];
    const cli = pair.steps[step]['mesh-cli'];
    console.log(
      row([
        step,
        mesh.mbPerSecond.toFixed(1),
        cli.mbPerSecond.toFixed(1),
        rdiff.mbPerSecond.toFixed(1),
        `${ratio(pair, step).toFixed(2)}x`,
        mesh.medianSeconds.toFixed(3),
        cli.medianSeconds.toFixed(3),
        rdiff.medianSeconds.toFixed(3),
      ]),
    );
  }
  console.log(`  signature bytes: mesh ${bytes(pair.signatureBytes.mesh)}, rdiff ${bytes(pair.signatureBytes.rdiff)}`);
  console.log(`  delta bytes:     mesh ${bytes(pair.deltaBytes.mesh)}, rdiff ${bytes(pair.deltaBytes.rdiff)}`);
  for (const run of pair.transfer ?? []) {
    const total = run.signatureBytes + run.deltaBytes + run.answerBytes;
    console.log(
      `  one transfer (signature, delta, patch in this process), ${run.fineRound ? 'with' : 'without'} the fine round: ` +
        `${run.seconds.toFixed(3)} s (CPU ${run.cpuSeconds.toFixed(3)} s), ${bytes(total)} bytes both ways ` +
        `(signature ${bytes(run.signatureBytes)}, delta ${bytes(run.deltaBytes)}, answers ${bytes(run.answerBytes)}; literal ${bytes(run.literalBytes)})`,
    );
  }
}

function printReport(pairs: readonly PairResult[], targets: readonly Target[]): void {
  for (const pair of pairs) printPair(pair);
  const rss = (tool: ToolName): string => `${tool} ${peakRssMiB(pairs, tool).toFixed(1)} MiB`;
  console.log(`\npeak RSS: ${TOOL_NAMES.map(rss).join(', ')} (mesh: the engine process over every run)`);
  console.log('\ntargets');
  for (const target of targets) console.log(`  ${target.pass ? 'PASS' : 'MISS'}  ${target.label}: ${target.value}`);
}

async function writeJson(report: object): Promise<void> {
  await mkdir(path.dirname(JSON_OUT), { recursive: true });
  await writeFile(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nresults written to ${path.relative(ROOT, JSON_OUT)}`);
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const fileLength = fileMibFromEnvironment('MESH_BENCH_MIB', { fallback: DEFAULT_FILE_MIB, min: MIN_FILE_MIB, max: MAX_FILE_MIB }) * MIB;
  const machine = describeMachine(rdiffVersion());
  checkBuilt();
  await checkFreeSpace(fileLength);
  console.log(`mesh rdiff vs ${machine.rdiff}: ${fileLength / MIB} MiB files, median of ${RUNS} runs per command`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${os.platform()} ${os.release()}`);

  const dir = await makeWorkDir();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const started = process.hrtime.bigint();
    await writeFile(filesOf(dir, 'mesh').old, randomChunks('mesh bench delta: old', fileLength, CHUNK_LENGTH));
    console.log(`\ngenerated OLD in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(2)} s; runs (seconds):`);
    const pairs: PairResult[] = [];
    for (const pair of PAIRS) pairs.push(await benchPair(pair, dir, fileLength));
    const targets = evaluateTargets(pairs);
    printReport(pairs, targets);
    const peakRss = Object.fromEntries(TOOL_NAMES.map((tool) => [tool, peakRssMiB(pairs, tool)]));
    await writeJson({ date: new Date().toISOString(), machine, fileLength, runs: RUNS, pairs, peakRssMiB: peakRss, targets });
    return targets.every((target) => target.pass) ? 0 : 2;
  } finally {
    stopServer();
    removeWorkDir();
  }
}

await runBench('bench/delta', main);
