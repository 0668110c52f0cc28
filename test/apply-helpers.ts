import assert from 'node:assert/strict';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { decodeSignature, encodeDelta, newDeltaStats, readFileChunks, SeededHash, weakHash, type RebuildAttempt, type Signature } from '../src/delta/index.js';
import { TEMP_PREFIX } from '../src/fs/atomic-write.js';
import { FolderLock, initFolder, openScanner, type Scanner, type ScanReport } from '../src/folder/index.js';
import { Applier, remoteRecordOf, scannerHooks, type ApplierInit, type ApplyReport, type RemoteRecord } from '../src/node/index.js';
import type { FetchFiles } from '../src/node/batch-apply.js';
import type { FetchedFile } from '../src/protocol/fetch.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { compare } from '../src/store/version-vector.js';
import { recordsOf } from './folder-helpers.js';
import { tempDir } from './helpers.js';

/** One delta (or whole file, attempt 'fetch') served: which path, which attempt, how many literal bytes it sent. */
export interface Served {
  readonly path: string;
  readonly attempt: RebuildAttempt | 'fetch';
  literalBytes: number;
}

/**
 * One device of a test mesh: a real folder in a temp directory, its own store, scanner, folder lock
 * and applier. Its applier asks the side named by each record's `peer` for deltas, in process:
 * that side opens its file at the requested path and runs encodeDelta over it, as the transfer
 * protocol's server will.
 */
export interface Side {
  readonly name: string;
  readonly root: string;
  readonly store: MemoryStore;
  readonly scanner: Scanner;
  readonly lock: FolderLock;
  readonly applier: Applier;
  /** Deltas this side served to others. */
  readonly served: Served[];
  /**
   * Called as this side serves a delta, after reading the signature and before sending a byte; a
   * test may change files, wait or throw here.
   */
  beforeServe?: (remote: RemoteRecord, attempt: RebuildAttempt | 'fetch') => Promise<void> | void;
  /** Called once the whole delta (or fetched file) was sent (the receiver has read its basis by then). */
  afterServe?: (remote: RemoteRecord, attempt: RebuildAttempt | 'fetch') => Promise<void> | void;
  /** Serves this many files of the next fetch batch, then fails as a lost connection would. */
  fetchDiesAfter?: number;
  /** Sends this many delta bytes of the next transfer, then fails as a lost connection would. */
  interruptAfter?: number;
  /** Serves this file's bytes instead of the requested one (a lying or broken peer). */
  serveInstead?: string;
  /**
   * The next truncated-hash delta copies the basis's first block at this offset of the new file,
   * as a false block match would: the receiver's whole-file check fails and it tries again.
   */
  falseMatchAt?: number;
}

export type Mesh = Map<string, Side>;

export async function makeSide(t: TestContext, mesh: Mesh, name: string, deviceId: string, init: Partial<ApplierInit> = {}): Promise<Side> {
  const root = await initFolder(await tempDir(t, `mesh-apply-${name}-`));
  const store = new MemoryStore(deviceId);
  const lock = new FolderLock();
  const scanner = await openScanner({ root, store, lock });
  const side: Side = {
    name,
    root,
    store,
    scanner,
    lock,
    served: [],
    applier: new Applier({
      ...scannerHooks(scanner),
      store,
      lock,
      exchange: (remote, signature, attempt) => serve(mesh, remote, signature, attempt),
      ...init,
    }),
  };
  mesh.set(name, side);
  return side;
}

/**
 * The fetch protocol in process (give it as `fetchFiles` in a side's init): the side named by
 * `peer` answers each file as the protocol's server does, the exact version from its store and
 * disk, or a refusal.
 */
export function fetchFrom(mesh: Mesh): FetchFiles {
  return (peer, remotes) => serveWhole(mesh, peer, remotes);
}

async function* serveWhole(mesh: Mesh, peer: string, remotes: readonly RemoteRecord[]): AsyncGenerator<FetchedFile> {
  const side = mesh.get(peer);
  if (side === undefined) throw new Error(`no peer ${peer}`);
  for (const remote of remotes) {
    if (side.fetchDiesAfter !== undefined && side.fetchDiesAfter-- <= 0) {
      side.fetchDiesAfter = undefined;
      throw new Error('connection lost');
    }
    await side.beforeServe?.(remote, 'fetch');
    const record = await side.store.get(remote.path);
    if (record === undefined || record.deleted || record.type !== 'file') {
      yield { status: 'NOT_FOUND', message: 'no such file' };
      continue;
    }
    if (compare(record.version, remote.version) !== 'equal') {
      yield { status: 'CHANGED', message: 'another version' };
      continue;
    }
    const content = await readFile(join(side.root, side.serveInstead ?? remote.path));
    side.served.push({ path: remote.path, attempt: 'fetch', literalBytes: content.length });
    yield { status: 'OK', content };
    await side.afterServe?.(remote, 'fetch');
  }
}

/** Two devices, A and B (A's device id is the smaller). */
export async function pair(t: TestContext, init: Partial<ApplierInit> = {}): Promise<{ a: Side; b: Side; mesh: Mesh }> {
  const mesh: Mesh = new Map();
  const a = await makeSide(t, mesh, 'A', 'aaaaaaaaaaaaaaaa', init);
  const b = await makeSide(t, mesh, 'B', 'bbbbbbbbbbbbbbbb', init);
  return { a, b, mesh };
}

async function* serve(mesh: Mesh, remote: RemoteRecord, signature: AsyncIterable<Uint8Array>, attempt: RebuildAttempt): AsyncGenerator<Uint8Array> {
  const side = mesh.get(remote.peer);
  if (side === undefined) throw new Error(`no peer ${remote.peer}`);
  let decoded = await decodeSignature(signature);
  await side.beforeServe?.(remote, attempt);
  if (side.falseMatchAt !== undefined && attempt === 'truncated') {
    decoded = await withFalseMatch(decoded, join(side.root, remote.path), side.falseMatchAt);
    side.falseMatchAt = undefined;
  }
  const served: Served = { path: remote.path, attempt, literalBytes: 0 };
  side.served.push(served);
  const stats = newDeltaStats();
  const file = join(side.root, side.serveInstead ?? remote.path);
  const limit = side.interruptAfter;
  side.interruptAfter = undefined;
  let sent = 0;
  for await (const chunk of encodeDelta(decoded, readFileChunks(file), stats)) {
    if (limit !== undefined && sent + chunk.length > limit) {
      yield chunk.slice(0, limit - sent);
      throw new Error('connection lost');
    }
    sent += chunk.length;
    yield chunk;
  }
  served.literalBytes = stats.literalBytes;
  await side.afterServe?.(remote, attempt);
}

/** `signature` with its first block's hashes replaced by those of `file`'s bytes at `offset`. */
async function withFalseMatch(signature: Signature, file: string, offset: number): Promise<Signature> {
  const { blockLength, strongLength, seed } = signature;
  const window = (await readFile(file)).subarray(offset, offset + blockLength);
  const weak = Int32Array.from(signature.weak);
  const strong = Uint8Array.from(signature.strong);
  weak[0] = weakHash(window, 0, blockLength);
  strong.set((await SeededHash.create(seed)).digest(window, 0, blockLength).subarray(0, strongLength), 0);
  return { ...signature, weak, strong };
}

/** Everything `side` records, as its peers receive it. */
export async function announced(side: Side): Promise<RemoteRecord[]> {
  return [...(await recordsOf(side.store)).values()].map((record) => remoteRecordOf(record, side.name));
}

/** `from` scans, then `to` applies all of `from`'s records. */
export async function sync(from: Side, to: Side): Promise<ApplyReport> {
  await from.scanner.scan();
  return to.applier.apply(await announced(from));
}

/** Literal bytes `side` served, and how many deltas, since `since` (an index into `served`). */
export function servedSince(side: Side, since = 0): { deltas: number; literalBytes: number; paths: string[] } {
  const list = side.served.slice(since);
  return { deltas: list.length, literalBytes: list.reduce((sum, s) => sum + s.literalBytes, 0), paths: list.map((s) => s.path) };
}

/** The tree under `root` (without `.mesh`): path -> a description of type, content and permissions. */
export async function treeOf(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (directory: string, prefix: string) => {
    for (const name of (await readdir(directory)).sort()) {
      if (prefix === '' && name === '.mesh') continue;
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const absolute = join(directory, name);
      const stats = await lstat(absolute);
      const mode = (stats.mode & 0o777).toString(8);
      if (stats.isSymbolicLink()) out.set(path, `symlink -> ${await readlink(absolute)}`);
      else if (stats.isDirectory()) {
        out.set(path, `directory ${mode}`);
        await walk(absolute, path);
      } else out.set(path, `file ${mode} ${(await readFile(absolute)).toString('base64')}`);
    }
  };
  await walk(root, '');
  return out;
}

/** Mesh temp files left anywhere under `root`. */
export async function tempFiles(root: string): Promise<string[]> {
  return [...(await treeOf(root)).keys()].filter((path) => path.split('/').some((name) => name.startsWith(TEMP_PREFIX)));
}

/**
 * Asserts that two devices hold the same tree and the same versions of every live path, that no
 * temp file is left, and that a scan of `to` finds its records true of its disk (the applier
 * recorded what it wrote, local metadata included).
 */
export async function assertConverged(from: Side, to: Side): Promise<void> {
  assert.deepEqual(await treeOf(to.root), await treeOf(from.root));
  assert.deepEqual(await tempFiles(to.root), []);
  const theirs = await recordsOf(from.store);
  const ours = await recordsOf(to.store);
  for (const [path, record] of theirs) {
    if (record.deleted) continue;
    const mine = ours.get(path);
    assert.ok(mine !== undefined && !mine.deleted, `${path} is recorded on ${to.name}`);
    assert.equal(compare(mine.version, record.version), 'equal', `${path}: same version on both`);
    assert.deepEqual(Buffer.from(mine.contentHash), Buffer.from(record.contentHash), `${path}: same content hash`);
  }
  assertNothingChanged(await to.scanner.scan(), `a scan of ${to.name} after the apply`);
}

export function assertNothingChanged(report: ScanReport, what: string): void {
  const { added, modified, deleted, moved, metadataUpdated } = report.counts;
  assert.deepEqual({ added, modified, deleted, moved, metadataUpdated }, { added: 0, modified: 0, deleted: 0, moved: 0, metadataUpdated: 0 }, what);
}

/** The outcome of one path in a report, for assertions. */
export function outcomeOf(report: ApplyReport, path: string): string {
  const outcome = report.outcomes.find((o) => o.path === path);
  if (outcome === undefined) return 'none';
  if (outcome.status === 'applied') return `applied ${outcome.action}`;
  if (outcome.status === 'skipped') return `skipped ${outcome.reason}`;
  return `failed ${outcome.error.name}`;
}
