/**
 * Acceptance benchmark of `mesh scan`: a folder of many small files and a folder of a few large
 * ones, each command a new process (`node dist/bundle/mesh.js scan <dir> --json`), Node start-up
 * included in the wall time; the scan's own duration comes from its JSON report.
 *
 *   npx tsx bench/scan.ts          100,000 small files and 2 GiB of large files, a few minutes
 *   MESH_BENCH_SMALL_FILES=2000 MESH_BENCH_LARGE_MIB=64 npx tsx bench/scan.ts    quick run
 *
 * Run `npm run build` first: the benchmark measures dist/. Exit code: 0 every target met, 2 a
 * target missed, 1 the benchmark could not run or a scan reported something wrong.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { ScanReport } from '../src/folder/report.js';
import { BenchError, describeMachine, keystream, median, randomChunks, runBench, runMeasured, sourcesChangedSince, xorshift32 } from './common.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const MB = 1e6; // throughput in decimal MB/s, as disks are rated

const DEFAULT_SMALL_FILES = 100_000;
const MAX_SMALL_FILES = 1_000_000;
const FILES_PER_FOLDER = 100; // 100 top folders × 10 subfolders × 100 files for the default
const SUBFOLDERS = 10;
const FILES_PER_TOP = FILES_PER_FOLDER * SUBFOLDERS;
const SMALL_MIN_BYTES = KIB;
const SMALL_MAX_BYTES = 4 * KIB;
const RANDOM_POOL_BYTES = 4 * MIB; // small files are slices of one random buffer, each with its own header
const SMALL_SEED = 0x2545f491;
const MODIFY_SEED = 0x9e3779b9;
const MODIFIED_FILES = 100;

const DEFAULT_LARGE_MIB = 2048;
const LARGE_FILE_COUNT = 8;
const MAX_LARGE_MIB = 64 * 1024;
const CHUNK_BYTES = MIB; // large files are streamed in 1 MiB pieces, never held whole

// The scanner rehashes files modified within RACY_WINDOW_MS (2 s) of their hash: wait past it.
const RACY_WAIT_MS = 2500;
const RESCAN_RUNS = 3; // the median of three shrugs off one noisy run

// Disk: every small file takes at least one 4 KiB block, plus room for inodes and the index.
const SMALL_FILE_DISK_BYTES = 4 * KIB + 512;
const DISK_MARGIN_BYTES = 32 * MIB;

const TARGET_RESCAN_SECONDS = 2;
const TARGET_HASH_MB_PER_S = 500;
const TARGET_PEAK_RSS_MIB = 150;

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'dist', 'bundle', 'mesh.js');
const JSON_OUT = path.join(ROOT, 'bench-out', 'scan.json');

// ---------------------------------------------------------------- configuration and prerequisites

interface Config {
  smallFiles: number;
  largeFileBytes: number;
}

function integerEnv(name: string, fallback: number, min: number, max: number, step = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max || value % step !== 0) {
    const multiple = step === 1 ? '' : `, a multiple of ${step}`;
    throw new BenchError(`${name} must be a whole number from ${min} to ${max}${multiple}, not ${raw}`);
  }
  return value;
}

function readConfig(): Config {
  // At least MODIFIED_FILES small files: the modify step rewrites that many.
  const smallFiles = integerEnv('MESH_BENCH_SMALL_FILES', DEFAULT_SMALL_FILES, MODIFIED_FILES, MAX_SMALL_FILES);
  const largeMiB = integerEnv('MESH_BENCH_LARGE_MIB', DEFAULT_LARGE_MIB, LARGE_FILE_COUNT, MAX_LARGE_MIB, LARGE_FILE_COUNT);
  return { smallFiles, largeFileBytes: (largeMiB / LARGE_FILE_COUNT) * MIB };
}

function checkBuilt(): void {
  if (!existsSync(CLI)) throw new BenchError(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first`);
  // The benchmark runs dist/, so an edit in src/ since the last build would go unmeasured.
  if (sourcesChangedSince(ROOT, CLI)) console.log('warning: src/ changed since the last build: run `npm run build` to measure the current code\n');
}

function neededDiskBytes(config: Config): number {
  return config.smallFiles * SMALL_FILE_DISK_BYTES + LARGE_FILE_COUNT * config.largeFileBytes + DISK_MARGIN_BYTES;
}

async function checkFreeSpace(config: Config): Promise<void> {
  const info = await statfs(os.tmpdir());
  const free = info.bavail * info.bsize;
  const needed = neededDiskBytes(config);
  if (free < needed) {
    throw new BenchError(
      `the benchmark needs ${gigabytes(needed)} GB free in ${os.tmpdir()}, there is ${gigabytes(free)} GB: free some ` +
        'space, point TMPDIR elsewhere, or shrink it with MESH_BENCH_SMALL_FILES and MESH_BENCH_LARGE_MIB',
    );
  }
}

// ---------------------------------------------------------------- the temporary directory

let workDir: string | undefined;
let running: ChildProcess | undefined;

async function makeWorkDir(): Promise<string> {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'mesh-bench-scan-'));
  return workDir;
}

/** Asynchronous, so that a signal is still handled while 100,000 files are removed. */
async function removeWorkDir(): Promise<void> {
  if (workDir === undefined) return;
  await rm(workDir, { recursive: true, force: true, maxRetries: 5 });
  workDir = undefined;
}

/** The last resort, for signals and crashes (an uncaught EPIPE when stdout is piped to `head`). */
function cleanUpNow(): void {
  running?.kill('SIGKILL');
  if (workDir === undefined) return;
  // Retries: a child killed a moment ago may still be closing a file in there.
  rmSync(workDir, { recursive: true, force: true, maxRetries: 5 });
  workDir = undefined;
}

function onSignal(signal: NodeJS.Signals): void {
  cleanUpNow();
  process.stderr.write(`\ninterrupted by ${signal}: temporary files removed\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

// ---------------------------------------------------------------- deterministic test data


function randomBytes(label: string, length: number): Buffer {
  return keystream(`mesh bench scan: ${label}`).update(Buffer.alloc(length));
}



/** Where small file `index` lives: t<top>/s<sub>/f<n>.bin, FILES_PER_FOLDER files per leaf folder. */
function smallFilePath(root: string, index: number): string {
  const top = Math.floor(index / FILES_PER_TOP);
  const sub = Math.floor(index / FILES_PER_FOLDER) % SUBFOLDERS;
  const name = `f${String(index % FILES_PER_FOLDER).padStart(2, '0')}.bin`;
  return path.join(root, `t${String(top).padStart(3, '0')}`, `s${sub}`, name);
}

/** Folders under the root that hold the small files (top folders and their subfolders). */
function smallFolderCount(files: number): number {
  return Math.ceil(files / FILES_PER_TOP) + Math.ceil(files / FILES_PER_FOLDER);
}

/** Writes a small file: a header naming it (so no two files are alike) and a slice of the pool. */
class SmallFileWriter {
  private readonly pool = randomBytes('small files', RANDOM_POOL_BYTES);
  private readonly scratch = Buffer.alloc(SMALL_MAX_BYTES);

  constructor(private readonly random: () => number) {}

  write(file: string, index: number, version: number): void {
    const length = SMALL_MIN_BYTES + (this.random() % (SMALL_MAX_BYTES - SMALL_MIN_BYTES + 1));
    const headerLength = this.scratch.write(`mesh bench scan: file ${index} version ${version}\n`, 'latin1');
    const bodyLength = length - headerLength;
    const offset = this.random() % (this.pool.length - bodyLength + 1);
    this.pool.copy(this.scratch, headerLength, offset, offset + bodyLength);
    // Synchronous: a thread-pool round trip per file would cost more than the write itself.
    writeFileSync(file, this.scratch.subarray(0, length));
  }
}

async function generateSmallFiles(root: string, count: number): Promise<void> {
  const writer = new SmallFileWriter(xorshift32(SMALL_SEED));
  for (let index = 0; index < count; index++) {
    if (index % FILES_PER_FOLDER === 0) {
      // A turn of the event loop per folder, so that a signal is handled during generation (tsx
      // kills a child that does not answer a relayed signal within 60 ms, before it can clean up).
      await nextTurn();
      mkdirSync(path.dirname(smallFilePath(root, index)), { recursive: true });
    }
    writer.write(smallFilePath(root, index), index, 1);
  }
}

/** Rewrites MODIFIED_FILES small files with new content, one in each stretch of the tree. */
function modifySmallFiles(root: string, count: number): void {
  const writer = new SmallFileWriter(xorshift32(MODIFY_SEED));
  for (let k = 0; k < MODIFIED_FILES; k++) {
    const index = Math.floor(((k + 0.5) * count) / MODIFIED_FILES);
    writer.write(smallFilePath(root, index), index, 2);
  }
}

async function generateLargeFiles(root: string, fileBytes: number): Promise<void> {
  await mkdir(root, { recursive: true });
  for (let i = 0; i < LARGE_FILE_COUNT; i++) {
    await writeFile(path.join(root, `large-${i}.bin`), randomChunks(`mesh bench scan: large file ${i}`, fileBytes, CHUNK_BYTES));
  }
}

async function timed(what: string, work: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`  ${what} in ${seconds.toFixed(2)} s`);
  return seconds;
}

// ---------------------------------------------------------------- running and measuring a scan

type ScanJson = ScanReport & { root: string };

interface Run {
  wallSeconds: number;
  peakRssKiB: number;
  report: ScanJson;
}


/**
 * Runs `mesh scan <dir> --json` to completion; wall time from spawn to exit, peak RSS polled. Exit
 * code 3 (unreadable paths) is a failure too: every file here is readable.
 */
async function runScan(dir: string): Promise<Run> {
  const { seconds, peakRssKiB, stdout } = await runMeasured(process.execPath, [CLI, 'scan', dir, '--json'], (child) => (running = child));
  try {
    return { wallSeconds: seconds, peakRssKiB, report: JSON.parse(stdout.toString('utf8')) as ScanJson };
  } catch (error) {
    throw new Error(`\`mesh scan ${dir} --json\` printed no JSON report: ${String(error)}`, { cause: error });
  }
}

interface StepResult {
  label: string;
  wallRunsSeconds: number[];
  /** Medians when the step ran more than once. */
  wallSeconds: number;
  scanSeconds: number;
  filesHashed: number;
  bytesHashed: number;
  /** The highest of the runs. */
  peakRssMiB: number;
  counts: ScanReport['counts'];
  /** Whether MB/s means something here (large files). */
  showRate: boolean;
}


async function scanStep(label: string, dir: string, options: { runs?: number; showRate?: boolean } = {}): Promise<StepResult> {
  const runs: Run[] = [];
  for (let i = 0; i < (options.runs ?? 1); i++) runs.push(await runScan(dir));
  const first = runs[0]?.report;
  if (first === undefined) throw new Error(`${label}: no run`);
  const result: StepResult = {
    label,
    wallRunsSeconds: runs.map((run) => run.wallSeconds),
    wallSeconds: median(runs.map((run) => run.wallSeconds)),
    scanSeconds: median(runs.map((run) => run.report.durationMs / 1000)),
    filesHashed: first.filesHashed,
    bytesHashed: first.bytesHashed,
    peakRssMiB: Math.max(...runs.map((run) => run.peakRssKiB)) / 1024,
    counts: first.counts,
    showRate: options.showRate ?? false,
  };
  const walls = result.wallRunsSeconds.map((s) => s.toFixed(2)).join(' ');
  console.log(`  ${label}: ${walls} s wall, scan ${result.scanSeconds.toFixed(2)} s, ${result.filesHashed} files hashed`);
  return result;
}

// ---------------------------------------------------------------- checking what the scans said

/** Reports that contradict what was done to the folder: the benchmark then exits 1. */
const problems: string[] = [];

function expect(ok: boolean, what: string): void {
  if (!ok) problems.push(what);
}

function changes(counts: ScanReport['counts']): number {
  return counts.added + counts.modified + counts.deleted + counts.moved + counts.metadataUpdated;
}

function expectNoChange(step: StepResult): void {
  expect(changes(step.counts) === 0, `${step.label}: expected no change, got ${JSON.stringify(step.counts)}`);
}

function expectAdded(step: StepResult, entries: number, files: number, bytes?: number): void {
  expect(step.counts.added === entries, `${step.label}: expected ${entries} added, got ${step.counts.added}`);
  expect(step.filesHashed === files, `${step.label}: expected ${files} files hashed, got ${step.filesHashed}`);
  if (bytes !== undefined) expect(step.bytesHashed === bytes, `${step.label}: expected ${bytes} bytes hashed, got ${step.bytesHashed}`);
}

function expectModified(step: StepResult, files: number): void {
  const { modified } = step.counts;
  expect(modified === files && changes(step.counts) === files, `${step.label}: expected ${files} modified, got ${JSON.stringify(step.counts)}`);
}

// ---------------------------------------------------------------- the benchmark

interface Steps {
  smallFirst: StepResult;
  smallRescan: StepResult;
  smallModified: StepResult;
  smallRescanAfter: StepResult;
  largeWarm: StepResult;
  largeCold: StepResult;
  largeRescan: StepResult;
}

async function benchSmallFiles(dir: string, count: number): Promise<Pick<Steps, 'smallFirst' | 'smallRescan' | 'smallModified' | 'smallRescanAfter'>> {
  console.log(`\nsmall files (${count.toLocaleString('en-US')}):`);
  const smallFirst = await scanStep('first scan', dir);
  expectAdded(smallFirst, count + smallFolderCount(count), count);
  const smallRescan = await scanStep('rescan, no change', dir, { runs: RESCAN_RUNS });
  expectNoChange(smallRescan);
  modifySmallFiles(dir, count);
  // No wait here: the rewritten files must be hashed anyway.
  const smallModified = await scanStep(`rescan, ${MODIFIED_FILES} modified`, dir);
  expectModified(smallModified, MODIFIED_FILES);
  await sleep(RACY_WAIT_MS);
  const smallRescanAfter = await scanStep('rescan, no change, 2.5 s later', dir);
  expectNoChange(smallRescanAfter);
  return { smallFirst, smallRescan, smallModified, smallRescanAfter };
}

/** Runs a command to its end (asynchronously: signals are still handled meanwhile). */
function runQuietly(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [], { stdio: 'ignore' });
    running = child;
    child.on('error', reject);
    child.on('close', () => {
      running = undefined;
      resolve();
    });
  });
}

/** Empties the page cache, so the next scan reads from disk; a note when that is not possible. */
async function dropCaches(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: page cache not dropped, the "cold" scan ran warm';
  try {
    await runQuietly('sync'); // dirty pages cannot be dropped
    await writeFile('/proc/sys/vm/drop_caches', '3');
    return undefined;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return `could not drop the page cache (${reason}): the "cold" scan ran warm`;
  }
}

async function benchLargeFiles(dir: string, totalBytes: number, notes: string[]): Promise<Pick<Steps, 'largeWarm' | 'largeCold' | 'largeRescan'>> {
  console.log(`\nlarge files (${LARGE_FILE_COUNT} × ${totalBytes / LARGE_FILE_COUNT / MIB} MiB):`);
  // Page cache warm: the files were just written.
  const largeWarm = await scanStep('first scan, warm cache', dir, { showRate: true });
  expectAdded(largeWarm, LARGE_FILE_COUNT, LARGE_FILE_COUNT, totalBytes);
  rmSync(path.join(dir, '.mesh'), { recursive: true, force: true });
  const note = await dropCaches();
  if (note !== undefined) notes.push(note);
  const largeCold = await scanStep(note === undefined ? 'first scan, cold cache' : 'first scan, cache not dropped', dir, { showRate: true });
  expectAdded(largeCold, LARGE_FILE_COUNT, LARGE_FILE_COUNT, totalBytes);
  const largeRescan = await scanStep('rescan, no change', dir);
  expectNoChange(largeRescan);
  return { largeWarm, largeCold, largeRescan };
}

// ---------------------------------------------------------------- report

interface Target {
  label: string;
  pass: boolean;
  value: string;
}

function scanRate(step: StepResult): number {
  return step.bytesHashed / MB / step.scanSeconds;
}

function wallRate(step: StepResult): number {
  return step.bytesHashed / MB / step.wallSeconds;
}

function allSteps(steps: Steps): StepResult[] {
  const { smallFirst, smallRescan, smallModified, smallRescanAfter, largeWarm, largeCold, largeRescan } = steps;
  return [smallFirst, smallRescan, smallModified, smallRescanAfter, largeWarm, largeCold, largeRescan];
}

function peakRssMiB(steps: Steps): number {
  return Math.max(...allSteps(steps).map((step) => step.peakRssMiB));
}

function evaluateTargets(steps: Steps, smallFiles: number): Target[] {
  const rescan = steps.smallRescan;
  const warm = scanRate(steps.largeWarm);
  const rss = peakRssMiB(steps);
  return [
    {
      label: `rescan of ${smallFiles.toLocaleString('en-US')} unchanged files < ${TARGET_RESCAN_SECONDS} s (median wall)`,
      pass: rescan.wallSeconds < TARGET_RESCAN_SECONDS,
      value: `${rescan.wallSeconds.toFixed(2)} s wall (the scan itself ${rescan.scanSeconds.toFixed(2)} s)`,
    },
    {
      label: `hashing large files >= ${TARGET_HASH_MB_PER_S} MB/s (warm first scan, scan's own time)`,
      pass: warm >= TARGET_HASH_MB_PER_S,
      value: `${warm.toFixed(0)} MB/s (cold cache: ${scanRate(steps.largeCold).toFixed(0)} MB/s)`,
    },
    {
      label: `peak RSS < ${TARGET_PEAK_RSS_MIB} MiB (every command)`,
      pass: rss < TARGET_PEAK_RSS_MIB,
      value: `${rss.toFixed(1)} MiB`,
    },
  ];
}

function gigabytes(n: number): string {
  return (n / 1e9).toFixed(2);
}

const COLUMN_WIDTHS = [38, 7, 7, 8, 9, 9, 9, 9];

function row(cells: readonly string[]): string {
  return '  ' + cells.map((cell, i) => (i === 0 ? cell.padEnd(COLUMN_WIDTHS[i] ?? 0) : cell.padStart(COLUMN_WIDTHS[i] ?? 0))).join(' ');
}

function stepRow(prefix: string, step: StepResult): string {
  const runs = step.wallRunsSeconds.length > 1 ? ` (median of ${step.wallRunsSeconds.length})` : '';
  return row([
    `${prefix} ${step.label}${runs}`,
    step.wallSeconds.toFixed(2),
    step.scanSeconds.toFixed(2),
    String(step.filesHashed),
    (step.bytesHashed / MB).toFixed(1),
    step.showRate ? scanRate(step).toFixed(0) : '-',
    step.showRate ? wallRate(step).toFixed(0) : '-',
    step.peakRssMiB.toFixed(1),
  ]);
}

function printReport(steps: Steps, targets: readonly Target[], notes: readonly string[]): void {
  console.log('\nresults (wall: the whole command, Node start-up included; scan: the report\'s durationMs)');
  console.log(row(['step', 'wall s', 'scan s', 'hashed', 'MB hashed', 'MB/s scan', 'MB/s wall', 'RSS MiB']));
  const small = new Set([steps.smallFirst, steps.smallRescan, steps.smallModified, steps.smallRescanAfter]);
  for (const step of allSteps(steps)) console.log(stepRow(small.has(step) ? 'small:' : 'large:', step));
  for (const note of notes) console.log(`  note: ${note}`);
  console.log('\ntargets');
  for (const target of targets) console.log(`  ${target.pass ? 'PASS' : 'MISS'}  ${target.label}: ${target.value}`);
  if (problems.length > 0) {
    console.log('\nwrong results');
    for (const problem of problems) console.log(`  ${problem}`);
  }
}

async function writeJson(report: object): Promise<void> {
  await mkdir(path.dirname(JSON_OUT), { recursive: true });
  await writeFile(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nresults written to ${path.relative(ROOT, JSON_OUT)}`);
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const config = readConfig();
  const machine = describeMachine();
  const largeBytes = LARGE_FILE_COUNT * config.largeFileBytes;
  checkBuilt();
  await checkFreeSpace(config);
  console.log(
    `mesh scan benchmark: ${config.smallFiles.toLocaleString('en-US')} small files of 1-4 KiB, ` +
      `${largeBytes / MIB} MiB in ${LARGE_FILE_COUNT} large files; each scan a new process`,
  );
  console.log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB RAM, node ${machine.node}, ` +
      `${machine.os}, load average ${machine.loadAverage1m.toFixed(2)} at start`,
  );

  const dir = await makeWorkDir();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', cleanUpNow);
  try {
    const smallDir = path.join(dir, 'small');
    const largeDir = path.join(dir, 'large');
    console.log(`\ngenerating in ${dir}:`);
    const generation = {
      smallSeconds: await timed(`${config.smallFiles.toLocaleString('en-US')} small files`, () => generateSmallFiles(smallDir, config.smallFiles)),
      largeSeconds: await timed(`${largeBytes / MIB} MiB of large files`, () => generateLargeFiles(largeDir, config.largeFileBytes)),
    };
    await sleep(RACY_WAIT_MS); // else the first rescan would hash the newest files again
    const notes: string[] = [];
    const steps: Steps = { ...(await benchSmallFiles(smallDir, config.smallFiles)), ...(await benchLargeFiles(largeDir, largeBytes, notes)) };
    const targets = evaluateTargets(steps, config.smallFiles);
    printReport(steps, targets, notes);
    await writeJson({ date: new Date().toISOString(), machine, config, generation, steps, peakRssMiB: peakRssMiB(steps), targets, notes, problems });
    if (problems.length > 0) return 1;
    return targets.every((target) => target.pass) ? 0 : 2;
  } finally {
    await removeWorkDir();
  }
}

await runBench('bench/scan', main);
