/**
 * The scenarios of bench:compare, the same for every tool: a change is made in node 0's folder and
 * timed until the receiving folder has it, found by polling the file there (its content or size,
 * then its hash), never by asking the tool.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { median, randomChunks } from '../common.js';
import { EDIT_CHANGED_BYTES, editedChunks, planOverwrites } from '../edit-pair.js';
import { contentIs, latencyContent, sha256, sizeOf } from '../files.js';
import { generateSmallFiles, SMALL_TREE, type TreeShape } from '../small-files.js';
import { cpuSeconds, wireBytes, type Cluster } from './cluster.js';

const MIB = 1024 * 1024;
const MB = 1e6;

export const LATENCY_EDITS = 20;
export const THREE_NODE_EDITS = 5;
const LATENCY_FILE_BYTES = 1024;
/** Pause between two latency edits, so each is measured alone (not coalesced with the previous one). */
const LATENCY_GAP_MS = 300;
const LATENCY_POLL_MS = 5;
const FILE_POLL_MS = 10;
const TREE_POLL_MS = 50;
/** After each step: the receiver's announcements back and rescans are part of the step's wire bytes. */
const SETTLE_MS = 2_500;
/** Long: Syncthing by default holds a delete back for up to a minute, and a busy machine is slow. */
const STEP_TIMEOUT_MS = 300_000;
const CONFLICT_TIMEOUT_MS = 120_000;
export const DELETE_TREE: TreeShape = { root: 'gone', tops: 3, subs: 1, perFolder: 100 };
const CHUNK_BYTES = MIB;

/** A step's figures: wall seconds from the change until the receiver had it, and what it cost until SETTLE_MS later. */
export interface StepFigures {
  seconds: number;
  wireBytes: number;
  /** CPU seconds of all nodes together. */
  cpuSeconds: number;
}

/** Content on the receiver that differs from the sender's: the benchmark then exits 1. */
export const problems: string[] = [];

export class StepTimeout extends Error {}

/** Polls `done` until it holds; returns performance.now() of that moment. */
async function pollUntil(cluster: Cluster, what: string, intervalMs: number, done: () => Promise<boolean> | boolean, timeoutMs = STEP_TIMEOUT_MS): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await done()) return performance.now();
    const failure = cluster.failure();
    if (failure !== undefined) throw new Error(`${cluster.tool}, ${what}: ${failure}`);
    if (performance.now() > deadline) throw new StepTimeout(`${cluster.tool}, ${what}: not done within ${timeoutMs / 1000} s`);
    await sleep(intervalMs);
  }
}

/** Wire bytes and CPU while `work` runs (it returns the step's seconds) and SETTLE_MS after. */
async function measure(cluster: Cluster, work: () => Promise<number>): Promise<StepFigures> {
  const wireBefore = await wireBytes(cluster);
  const cpuBefore = cpuSeconds(cluster);
  const seconds = await work();
  await sleep(SETTLE_MS);
  const cpuAfter = cpuSeconds(cluster);
  return { seconds, wireBytes: (await wireBytes(cluster)) - wireBefore, cpuSeconds: cpuAfter.reduce((sum, cpu, i) => sum + cpu - (cpuBefore[i] ?? 0), 0) };
}

/** Makes a change on node 0 (untimed), lets the tool carry it to node 1, and waits until it is there and quiet. */
async function prepare(cluster: Cluster, what: string, change: () => Promise<void>, arrived: () => Promise<boolean> | boolean): Promise<void> {
  await change();
  await cluster.changed(0);
  await pollUntil(cluster, what, TREE_POLL_MS, arrived);
  await sleep(SETTLE_MS);
}

async function sameFile(cluster: Cluster, relative: string, step: string): Promise<void> {
  const [sent, received] = cluster.dirs.map((dir) => path.join(dir, relative));
  if ((await sha256(sent)) !== (await sha256(received))) problems.push(`${cluster.tool}, ${step}: node 1 has other content than node 0 in ${relative}`);
}

export interface LatencyFigures {
  p50Seconds: number;
  maxSeconds: number;
  editsSeconds: number[];
  wireBytesPerEdit: number;
}

/** In-place rewrites of a small file on node 0, each timed until every other node has the new content. */
async function editLatency(cluster: Cluster, name: string, edits: number): Promise<LatencyFigures> {
  const [onSender, ...onReceivers] = cluster.dirs.map((dir) => path.join(dir, name));
  const everywhere = (content: Buffer) => async () => (await Promise.all(onReceivers.map((file) => contentIs(file, content)))).every(Boolean);
  await prepare(cluster, `first ${name}`, () => writeFile(onSender, latencyContent(0, LATENCY_FILE_BYTES)), everywhere(latencyContent(0, LATENCY_FILE_BYTES)));
  const editsSeconds: number[] = [];
  const figures = await measure(cluster, async () => {
    for (let edit = 1; edit <= edits; edit++) {
      const content = latencyContent(edit, LATENCY_FILE_BYTES);
      const start = performance.now();
      await writeFile(onSender, content);
      await cluster.changed(0);
      const end = await pollUntil(cluster, `edit ${edit} of ${name}`, LATENCY_POLL_MS, everywhere(content));
      editsSeconds.push((end - start) / 1000);
      await sleep(LATENCY_GAP_MS);
    }
    return editsSeconds.reduce((sum, s) => sum + s, 0);
  });
  return { p50Seconds: median(editsSeconds), maxSeconds: Math.max(...editsSeconds), editsSeconds, wireBytesPerEdit: figures.wireBytes / edits };
}

export function latency(cluster: Cluster): Promise<LatencyFigures> {
  return editLatency(cluster, 'latency.txt', LATENCY_EDITS);
}

/**
 * A probe of whether every file of `sizes` is in `dir` with its size. It stops at the first missing
 * file, never looks again at one it found, and stats synchronously (~6 ms for 2,000 files): awaited
 * stats of the whole tree took ~100 ms of CPU per poll, paid on this 2-core machine by the tools timed.
 */
function treeArrival(dir: string, sizes: ReadonlyMap<string, number>): () => boolean {
  const waiting = new Map(sizes);
  return () => {
    for (const [relative, size] of waiting) {
      if (statSync(path.join(dir, relative), { throwIfNoEntry: false })?.size !== size) return false;
      waiting.delete(relative);
    }
    return true;
  };
}

/** The small-file tree made outside the folder and renamed in as one; timed until node 1 has every file. */
export async function smallFiles(cluster: Cluster, staging: string): Promise<StepFigures> {
  const sizes = await generateSmallFiles(staging, SMALL_TREE);
  await sleep(SETTLE_MS);
  const figures = await measure(cluster, async () => {
    const start = performance.now();
    await rename(path.join(staging, SMALL_TREE.root), path.join(cluster.dirs[0], SMALL_TREE.root));
    await cluster.changed(0);
    return ((await pollUntil(cluster, 'small files', TREE_POLL_MS, treeArrival(cluster.dirs[1], sizes))) - start) / 1000;
  });
  for (const relative of sizes.keys()) {
    const [sent, received] = await Promise.all(cluster.dirs.slice(0, 2).map((dir) => readFile(path.join(dir, relative))));
    if (!sent.equals(received)) {
      problems.push(`${cluster.tool}, small files: node 1 has other content in ${relative}`);
      break;
    }
  }
  return figures;
}

export interface ThroughputFigures extends StepFigures {
  mbPerSecond: number;
}

/** A file replaced on node 0 by one made in `staged`; timed until node 1's copy has `bytes` bytes (then its hash is checked). */
async function replaceFile(cluster: Cluster, staged: string, relative: string, bytes: number, step: string): Promise<StepFigures> {
  await sleep(SETTLE_MS); // the staged file's writeback and mtime well behind it
  const onReceiver = path.join(cluster.dirs[1], relative);
  const figures = await measure(cluster, async () => {
    const start = performance.now();
    await rename(staged, path.join(cluster.dirs[0], relative));
    await cluster.changed(0);
    // Every tool writes a temp file and renames it into place, so the final name's size means the whole file.
    return ((await pollUntil(cluster, step, FILE_POLL_MS, async () => (await sizeOf(onReceiver)) === bytes)) - start) / 1000;
  });
  await sameFile(cluster, relative, step);
  return figures;
}

export async function largeFile(cluster: Cluster, staging: string, bytes: number): Promise<ThroughputFigures> {
  const staged = path.join(staging, 'big.bin');
  await writeFile(staged, randomChunks('mesh bench compare: big file', bytes, CHUNK_BYTES));
  const figures = await replaceFile(cluster, staged, 'big.bin', bytes, 'large file');
  return { ...figures, mbPerSecond: bytes / MB / figures.seconds };
}

export interface EditFigures extends StepFigures {
  /** Wire bytes per changed byte. */
  wireRatio: number;
}

/** bench:delta's and bench:mesh's 1% edit of the large file, made in a copy and renamed over it. */
export async function edit(cluster: Cluster, staging: string, bytes: number): Promise<EditFigures> {
  const staged = path.join(staging, 'big-edited.bin');
  await writeFile(staged, editedChunks(path.join(cluster.dirs[0], 'big.bin'), planOverwrites(bytes + 1)));
  const figures = await replaceFile(cluster, staged, 'big.bin', bytes + 1, '1% edit');
  return { ...figures, wireRatio: figures.wireBytes / EDIT_CHANGED_BYTES };
}

/** The large file moved into another folder on node 0; timed until it is there on node 1 and gone from its old place. */
export async function renameLarge(cluster: Cluster, bytes: number): Promise<StepFigures> {
  const [from, to] = ['big.bin', path.join('archive', 'big.bin')];
  await prepare(cluster, 'archive folder', () => mkdir(path.join(cluster.dirs[0], 'archive')), () => existsSync(path.join(cluster.dirs[1], 'archive')));
  const figures = await measure(cluster, async () => {
    const start = performance.now();
    await rename(path.join(cluster.dirs[0], from), path.join(cluster.dirs[0], to));
    await cluster.changed(0);
    const done = async (): Promise<boolean> => (await sizeOf(path.join(cluster.dirs[1], to))) === bytes && !existsSync(path.join(cluster.dirs[1], from));
    return ((await pollUntil(cluster, 'rename', FILE_POLL_MS, done)) - start) / 1000;
  });
  await sameFile(cluster, to, 'rename');
  return figures;
}

/** A synced folder of 300 small files deleted on node 0; timed until it is gone on node 1. */
export async function deleteFolder(cluster: Cluster, staging: string): Promise<StepFigures> {
  const sizes = await generateSmallFiles(staging, DELETE_TREE);
  const [onSender, onReceiver] = cluster.dirs.map((dir) => path.join(dir, DELETE_TREE.root));
  await prepare(cluster, 'folder to delete', () => rename(path.join(staging, DELETE_TREE.root), onSender), treeArrival(cluster.dirs[1], sizes));
  return measure(cluster, async () => {
    const start = performance.now();
    await rm(onSender, { recursive: true });
    await cluster.changed(0);
    return ((await pollUntil(cluster, 'folder delete', FILE_POLL_MS, () => !existsSync(onReceiver))) - start) / 1000;
  });
}

export interface ConflictFigures {
  /** Whether both nodes ended with both versions (the winner and a conflict copy). */
  bothKept: boolean;
  /** From the two edits until both nodes had both versions; NaN when they never did. */
  seconds: number;
  /** The files each node ended with (name: which version), when both were not kept. */
  ended?: string[][];
}

/** Visible top-level files of a folder (no tool's own dot-files) and which of the versions each holds. */
async function versionsIn(dir: string, versions: readonly Buffer[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('.')) continue;
    const file = path.join(dir, name);
    if (!(await stat(file)).isFile()) continue;
    const content = await readFile(file);
    const index = versions.findIndex((version) => version.equals(content));
    found.push(`${name}: ${index < 0 ? 'other' : `version of node ${index}`}`);
  }
  return found;
}

/** The same file edited on both nodes at the same moment: does each end with both versions? */
export async function concurrentEdit(cluster: Cluster): Promise<ConflictFigures> {
  const name = 'both.txt';
  const [onA, onB] = cluster.dirs.map((dir) => path.join(dir, name));
  const base = Buffer.from('the same file, edited on two nodes at once\n');
  await prepare(cluster, 'file to edit on both', () => writeFile(onA, base), () => contentIs(onB, base));
  const versions = [Buffer.from('edited on node 0\n'), Buffer.from('edited on node 1, a little longer\n')];
  const kept = async (): Promise<boolean> => {
    for (const dir of cluster.dirs) {
      const found = await versionsIn(dir, versions);
      if (!versions.every((_, i) => found.some((entry) => entry.endsWith(`version of node ${i}`)))) return false;
    }
    return true;
  };
  const start = performance.now();
  await Promise.all([writeFile(onA, versions[0]), writeFile(onB, versions[1])]);
  try {
    const end = await pollUntil(cluster, 'concurrent edit', TREE_POLL_MS, kept, CONFLICT_TIMEOUT_MS);
    return { bothKept: true, seconds: (end - start) / 1000 };
  } catch (error) {
    if (!(error instanceof StepTimeout)) throw error;
    return { bothKept: false, seconds: Number.NaN, ended: await Promise.all(cluster.dirs.map((dir) => versionsIn(dir, versions))) };
  }
}

/** On three nodes: edits of a small file on node 0, each timed until both others have it. */
export function threeNodeLatency(cluster: Cluster): Promise<LatencyFigures> {
  return editLatency(cluster, 'three.txt', THREE_NODE_EDITS);
}
