import { closeSync, fchmodSync, fstatSync, fsync, futimesSync, openSync, renameSync, writeSync, constants as fsConstants, type BigIntStats } from 'node:fs';
import { promisify } from 'node:util';
import { dirname } from 'node:path';
import { syncDirectory } from '../fs/atomic-write.js';
import { loadSyncFs, type SyncFs } from '../fs/sync-fs.js';
import { BlockHasher } from '../folder/hasher.js';
import { FolderMissingError } from '../folder/errors.js';
import type { FolderLock } from '../folder/folder-lock.js';
import { errorCode } from '../folder/folder-fs.js';
import { parentPath, toAbsolute } from '../folder/paths.js';
import { permissionsOf } from '../folder/records.js';
import {
  FETCH_BATCH_TARGET_BYTES,
  MAX_FETCH_FILES,
  MAX_FETCH_REQUEST_BYTES,
  TransferBusyError,
  TransferChangedError,
  TransferNotFoundError,
  type FetchedFile,
} from '../protocol/index.js';
import type { FileChange, FileRecord, Store } from '../store/types.js';
import { EMPTY_VECTOR, merge } from '../store/version-vector.js';
import type { ApplyReportBuilder } from './apply-report.js';
import { crashPoint } from './crash-point.js';
import { createExclusiveSync, diskMatches, ensureRealParents, lstatSyncOrUndefined, PARTIAL_BASIS_SUFFIX, removePlanted, tempPathOf, unlinkIfPresent } from './disk.js';
import { ensureSpaceFor } from './disk-space.js';
import { ContentMismatchError } from './errors.js';
import { misbehaviourOf } from './peer-penalties.js';
import { APPLIED_MODE_MASK, type RemoteRecord } from './remote-record.js';

/**
 * Fetches whole files from one peer on one stream (the fetch protocol; in tests an in-process
 * function): one FetchedFile per record, in order. Throwing part way means the files not yielded
 * yet were not fetched.
 */
export type FetchFiles = (peer: string, remotes: readonly RemoteRecord[]) => AsyncIterable<FetchedFile>;

const fsyncAsync = promisify(fsync);

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Closing a descriptor we opened fails only if it is already closed.
  }
}

/**
 * Batches of at least this many files are flushed with syncfs (sync-fs.ts) where it can be had:
 * the 2,000 small files (bench:mesh) took 1.52 s against 1.83 with an fsync each (five alternating
 * pairs), and on a journalled ext4 1.52 against 2.24 (three). Fewer files are fsynced one by one,
 * which flushes nothing another program wrote.
 */
const SYNCFS_MIN_FILES = 16;
/** Fetch batches in flight at once: one placing its files while the next is on the wire. */
const BATCHES_IN_FLIGHT = 2;
/** What a request's file costs in the FetchRequest beyond its path: version counters, hash, framing. */
const REQUEST_BYTES_PER_COUNTER = 16;
const REQUEST_BYTES_PER_FILE = 64;

/** A file to fetch whole: the remote version, and the local record it replaces (checked again before it is). */
export interface WholeFile {
  readonly remote: RemoteRecord;
  readonly local: FileRecord | undefined;
}

export interface BatchApplyComponents {
  readonly root: string;
  readonly store: Store;
  readonly lock: FolderLock;
  readonly fetchFiles: FetchFiles;
  readonly sources?: (remote: RemoteRecord) => readonly string[];
  readonly checkFolder?: () => Promise<void>;
  /** Peers one file is asked from at most. */
  readonly maxSources: number;
  readonly report: ApplyReportBuilder;
  /** Told each record committed (the apply's index of local content). */
  readonly committed: (record: FileRecord) => void;
  /** Told of every source that failed a file, whether another then delivers it or not (penalties). */
  readonly onPullFailed?: (peer: string, error: unknown) => void;
  /** Flushes a batch's file system at once (default: the system's syncfs where it has one; null: an fsync per file). */
  readonly syncFs?: SyncFs | null;
}

/** A file fetched, verified and written to its temp file, fsynced, with its final mode and mtime. */
interface Written {
  readonly file: WholeFile;
  readonly peer: string;
  readonly temp: string;
  readonly stats: BigIntStats;
}

/** A verified file written to its open temp file, not yet fsynced. */
interface Unsynced {
  readonly file: WholeFile;
  readonly peer: string;
  readonly temp: string;
  readonly fd: number;
}

/** A descriptor of the folder root opened before a batch's files were made, to syncfs them through. */
interface Flusher {
  readonly fd: number;
  readonly dev: bigint;
  readonly syncFs: SyncFs;
}

/** A file not placed this round: asked from the next source, or reported failed. */
interface Failure {
  readonly file: WholeFile;
  readonly peer: string;
  readonly error: Error;
}

/**
 * Applies new and small files in batches: many files fetched whole on one stream (no signature, no
 * delta), each verified against its content hash in memory and written to its temp file beside
 * the target, then made durable (one syncfs for a large batch, else fsyncs side by side on the
 * thread pool); then, under one hold of the folder lock, every target is checked to still be what
 * its local record says (else 'changed locally', not overwritten), the verified files are renamed
 * into place, each folder touched is fsynced once, and the whole group is recorded in one commit.
 * A crash at any point leaves each path either its old content or the verified new one; a file
 * renamed but not yet recorded is found by the next scan as a local version of the same content,
 * which merges with the peer's (no conflict, no loss).
 *
 * Files a source fails to deliver (refused, lost connection, bytes that do not verify) are asked
 * from the next source that announced the same version, up to `maxSources` peers. Nothing of a
 * batch is fetched unless the disk has room for all of it and a reserve (disk-space.ts).
 */
export class BatchApply {
  constructor(private readonly components: BatchApplyComponents) {}

  async run(files: readonly WholeFile[]): Promise<void> {
    const tried = new Map<WholeFile, Set<string>>();
    let pending: Failure[] = files.map((file) => ({ file, peer: file.remote.peer, error: new Error('not fetched') }));
    let first = true;
    while (pending.length > 0) {
      const byPeer = new Map<string, WholeFile[]>();
      for (const failure of pending) {
        const { file } = failure;
        const asked = tried.get(file) ?? new Set<string>();
        tried.set(file, asked);
        const next = asked.size >= this.components.maxSources ? undefined : this.nextSource(file.remote, asked, first);
        if (next === undefined) {
          this.fail(failure);
          continue;
        }
        asked.add(next);
        const list = byPeer.get(next);
        if (list === undefined) byPeer.set(next, [file]);
        else list.push(file);
      }
      first = false;
      const batches = [...byPeer].flatMap(([peer, list]) => cutBatches(list).map((batch) => ({ peer, batch })));
      const failures: Failure[] = [];
      let next = 0;
      let fatal: { error: unknown } | undefined;
      const worker = async () => {
        while (fatal === undefined && next < batches.length) {
          const { peer, batch } = batches[next++];
          try {
            const failed = await this.fetchAndPlace(peer, batch);
            for (const failure of failed) this.components.onPullFailed?.(failure.peer, failure.error);
            failures.push(...failed);
          } catch (error) {
            // Only a missing folder (or a store that failed) ends the run: nothing more is applied.
            fatal ??= { error };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(BATCHES_IN_FLIGHT, batches.length) }, worker));
      if (fatal !== undefined) throw fatal.error;
      pending = failures;
    }
  }

  /** The record's sources in order (the announcing peer when none are known), the first not tried yet. */
  private nextSource(remote: RemoteRecord, tried: ReadonlySet<string>, first: boolean): string | undefined {
    const sources = this.components.sources?.(remote) ?? [];
    const found = sources.find((peer) => !tried.has(peer));
    if (found !== undefined) return found;
    return first && !tried.has(remote.peer) ? remote.peer : undefined;
  }

  private fail({ file, peer, error }: Failure): void {
    this.components.report.add({ status: 'failed', path: file.remote.path, error, peer, peerAtFault: misbehaviourOf(error) !== undefined });
  }

  /** One batch from one peer: fetched, written, placed. Returns the files to ask elsewhere. */
  private async fetchAndPlace(peer: string, batch: readonly WholeFile[]): Promise<Failure[]> {
    const { root, checkFolder } = this.components;
    // Before anything is made (parent folders, temp files): never inside an empty mount point.
    await checkFolder?.();
    try {
      const what = batch.length === 1 ? batch[0].remote.path : `${batch[0].remote.path} and ${batch.length - 1} more files`;
      await ensureSpaceFor(root, batch.reduce((sum, file) => sum + file.remote.size, 0), what);
    } catch (error) {
      return batch.map((file) => ({ file, peer, error: asError(error) }));
    }
    // Opened before the batch's files are made: syncfs through it reports any of their write-back errors.
    const flusher = batch.length >= SYNCFS_MIN_FILES ? await this.openFlusher() : undefined;
    try {
      return await this.fetchWriteAndPlace(peer, batch, flusher);
    } finally {
      if (flusher !== undefined) closeQuietly(flusher.fd);
    }
  }

  private async fetchWriteAndPlace(peer: string, batch: readonly WholeFile[], flusher: Flusher | undefined): Promise<Failure[]> {
    const { root } = this.components;
    const failures: Failure[] = [];
    const writes: Promise<Unsynced | undefined>[] = [];
    const parents = new Map<string, Promise<unknown>>();
    let received = 0;
    try {
      for await (const fetched of this.components.fetchFiles(peer, batch.map((file) => ({ ...file.remote, peer })))) {
        const file = batch[received++];
        if (file === undefined) throw new Error(`more files fetched than asked for from peer ${peer}`);
        if (fetched.status !== 'OK') {
          failures.push({ file, peer, error: refusalError(fetched) });
          continue;
        }
        // Parent folders made once per folder of the batch (lstat from the root, never through a symlink).
        const parent = parentPath(file.remote.path);
        let ready = parents.get(parent);
        if (ready === undefined) {
          ready = ensureRealParents(root, file.remote.path, true);
          ready.catch(() => undefined);
          parents.set(parent, ready);
        }
        const write = ready.then(() => this.writeVerified(file, peer, fetched.content)).then(
          (written) => written,
          (error: unknown) => {
            failures.push({ file, peer, error: asError(error) });
            return undefined;
          },
        );
        writes.push(write);
      }
    } catch (error) {
      for (const file of batch.slice(received)) failures.push({ file, peer, error: asError(error) });
    }
    const unsynced = (await Promise.all(writes)).filter((w): w is Unsynced => w !== undefined);
    const written = await this.syncAll(unsynced, failures, flusher);
    if (written.length > 0) await this.place(written);
    return failures;
  }

  /**
   * Makes a batch's temp files durable, after every create: with SYNCFS_MIN_FILES or more, those on
   * the folder root's file system by one syncfs through `flusher` (if it fails, each is fsynced
   * after all, so an error is the file's); the others (a mount inside the folder) and smaller
   * batches by an fsync each, side by side on the thread pool.
   */
  private async syncAll(unsynced: readonly Unsynced[], failures: Failure[], flusher: Flusher | undefined): Promise<Written[]> {
    const onRoot: Written[] = [];
    const rest: Unsynced[] = [];
    if (flusher !== undefined && unsynced.length >= SYNCFS_MIN_FILES) {
      const sameFs: { item: Unsynced; stats: BigIntStats }[] = [];
      for (const item of unsynced) {
        let stats;
        try {
          stats = fstatSync(item.fd, { bigint: true });
        } catch {
          stats = undefined; // syncTemp reports it
        }
        if (stats?.dev === flusher.dev) sameFs.push({ item, stats });
        else rest.push(item);
      }
      if (await flusher.syncFs(flusher.fd)) {
        for (const { item, stats } of sameFs) {
          const { fd, ...done } = item;
          closeQuietly(fd);
          onRoot.push({ ...done, stats });
        }
      } else {
        rest.push(...sameFs.map(({ item }) => item));
      }
    } else {
      rest.push(...unsynced);
    }
    const synced = await Promise.all(
      rest.map((item) =>
        this.syncTemp(item).catch((error: unknown) => {
          failures.push({ file: item.file, peer: item.peer, error: asError(error) });
          return undefined;
        }),
      ),
    );
    return [...onRoot, ...synced.filter((w): w is Written => w !== undefined)];
  }

  /**
   * The folder root opened read-only, with its device and the syncfs to flush it with (the
   * components': null for none; else the system's, where it has one); undefined without one.
   */
  private async openFlusher(): Promise<Flusher | undefined> {
    const given = this.components.syncFs;
    const syncFs = given === null ? undefined : (given ?? (await loadSyncFs()));
    if (syncFs === undefined) return undefined;
    let fd;
    try {
      fd = openSync(this.components.root, fsConstants.O_RDONLY | (fsConstants.O_DIRECTORY ?? 0));
      return { fd, dev: fstatSync(fd, { bigint: true }).dev, syncFs };
    } catch {
      if (fd !== undefined) closeQuietly(fd);
      return undefined;
    }
  }

  /**
   * Checks `content` against the record (size and content hash, hashed as the scanner does), then
   * writes it to the temp file beside the target: created exclusively (never through a planted
   * name), written, given its final permissions and mtime, fsynced.
   */
  private async writeVerified(file: WholeFile, peer: string, content: Uint8Array): Promise<Unsynced> {
    const { remote } = file;
    const hasher = new BlockHasher(content.length);
    hasher.update(content);
    const hashes = hasher.digest();
    if (hashes.size !== remote.size || !Buffer.from(hashes.contentHash).equals(remote.contentHash)) {
      throw new ContentMismatchError(
        `${JSON.stringify(remote.path)}: the bytes from peer ${peer} (${hashes.size} bytes) do not have the content hash it announced; not applied`,
      );
    }
    const temp = toAbsolute(this.components.root, tempPathOf(remote.path, remote.contentHash));
    // Small calls are made in place (a thread-pool round trip costs more than the call, as in the
    // scanner); the fsync comes later (syncTemp), once the batch's files are all created: on ext4 a
    // create waits for a journal commit that an fsync in flight forces (0.7 ms a file, seen here).
    let fd;
    try {
      fd = createExclusiveSync(temp);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
      // Left by an interrupted delta pull of this content (with, maybe, its partial set aside): no use now.
      await removePlanted(temp);
      await removePlanted(temp + PARTIAL_BASIS_SUFFIX);
      fd = createExclusiveSync(temp);
    }
    try {
      for (let done = 0; done < content.length; ) done += writeSync(fd, content, done, content.length - done, done);
      fchmodSync(fd, remote.mode & APPLIED_MODE_MASK);
      // Seconds as a double: about 0.2 us of precision; the record keeps what fstat reports after.
      const seconds = Number(remote.mtimeNs) / 1e9;
      futimesSync(fd, seconds, seconds);
      return { file, peer, temp, fd };
    } catch (error) {
      closeQuietly(fd);
      await unlinkIfPresent(temp).catch(() => undefined);
      throw error;
    }
  }

  /** fsyncs a written temp file (on the thread pool), reads its metadata and closes it; on failure removes it. */
  private async syncTemp(unsynced: Unsynced): Promise<Written> {
    const { fd, ...rest } = unsynced;
    try {
      await fsyncAsync(fd);
      return { ...rest, stats: fstatSync(fd, { bigint: true }) };
    } catch (error) {
      await unlinkIfPresent(rest.temp).catch(() => undefined);
      throw error;
    } finally {
      closeQuietly(fd);
    }
  }

  /**
   * Under one hold of the folder lock: each target must still be what its local record says (the
   * record unchanged since the decision, every parent a real folder, the disk matching it), else
   * it is left alone ('changed locally'); the others are renamed into place, each folder touched
   * is fsynced once, and they are recorded in one commit.
   */
  private async place(written: readonly Written[]): Promise<void> {
    const { root, store, lock, checkFolder, report } = this.components;
    await lock.run(async () => {
      await checkFolder?.();
      const current = await store.sequencesOf(written.map((w) => w.file.remote.path));
      const parents = new Map<string, Promise<'present' | 'missing'>>();
      const placed: Written[] = [];
      const folders = new Set<string>();
      for (const [k, item] of written.entries()) {
        const { remote, local } = item.file;
        const absolute = toAbsolute(root, remote.path);
        try {
          if (current[k] !== local?.sequence) {
            await this.discard(item, 'changed-locally');
            continue;
          }
          const parent = parentPath(remote.path);
          let realParents = parents.get(parent);
          if (realParents === undefined) {
            realParents = ensureRealParents(root, remote.path, false);
            parents.set(parent, realParents);
          }
          const stats = (await realParents) === 'missing' ? undefined : lstatSyncOrUndefined(absolute);
          if (!diskMatches(local, stats)) {
            await this.discard(item, 'changed-locally');
            continue;
          }
          renameSync(item.temp, absolute);
          folders.add(dirname(absolute));
          placed.push(item);
        } catch (error) {
          if (error instanceof FolderMissingError) throw error;
          await unlinkIfPresent(item.temp).catch(() => undefined);
          report.add({ status: 'failed', path: remote.path, error: asError(error), peer: item.peer, peerAtFault: false });
        }
      }
      if (placed.length === 0) return;
      try {
        await Promise.all([...folders].map((folder) => syncDirectory(folder)));
        crashPoint('placed-before-commit');
        const stored = await store.commit(placed.map((item) => changeOf(item)));
        for (const record of stored) this.components.committed(record);
      } catch (error) {
        // In place but not recorded: the next scan records them (as versions that merge with the peer's).
        for (const item of placed) report.add({ status: 'failed', path: item.file.remote.path, error: asError(error), peer: item.peer, peerAtFault: false });
        return;
      }
      for (const item of placed) {
        const { remote } = item.file;
        report.add({
          status: 'applied',
          path: remote.path,
          decision: 'apply',
          action: 'file',
          pull: { peer: item.peer, source: 'fetch', basis: 'none', attempts: [], literalBytes: remote.size, reusedBytes: 0 },
        });
      }
    });
  }

  private async discard(item: Written, reason: 'changed-locally'): Promise<void> {
    await unlinkIfPresent(item.temp);
    this.components.report.skip(item.file.remote.path, reason);
  }
}

/** The record of a fetched file now in place: its content and version, this disk's metadata. */
function changeOf({ file: { remote, local }, stats }: Written): FileChange {
  return {
    path: remote.path,
    type: 'file',
    size: Number(stats.size),
    mtimeNs: stats.mtimeNs,
    mode: permissionsOf(stats),
    inode: stats.ino,
    blockHashes: remote.blockHashes,
    contentHash: remote.contentHash,
    symlinkTarget: '',
    version: merge(local?.version ?? EMPTY_VECTOR, remote.version),
    deleted: false,
    modifiedBy: remote.modifiedBy,
  };
}

/** Cuts one peer's files into fetch batches: at most MAX_FETCH_FILES files, FETCH_BATCH_TARGET_BYTES of content, and a request under its limit. */
function cutBatches(files: readonly WholeFile[]): WholeFile[][] {
  const batches: WholeFile[][] = [];
  let batch: WholeFile[] = [];
  let bytes = 0;
  let requestBytes = 0;
  for (const file of files) {
    const { remote } = file;
    const request = Buffer.byteLength(remote.path) + remote.version.length * REQUEST_BYTES_PER_COUNTER + REQUEST_BYTES_PER_FILE;
    if (batch.length > 0 && (batch.length >= MAX_FETCH_FILES || bytes + remote.size > FETCH_BATCH_TARGET_BYTES || requestBytes + request > MAX_FETCH_REQUEST_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
      requestBytes = 0;
    }
    batch.push(file);
    bytes += remote.size;
    requestBytes += request;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function refusalError(fetched: Exclude<FetchedFile, { status: 'OK' }>): Error {
  switch (fetched.status) {
    case 'NOT_FOUND':
      return new TransferNotFoundError(fetched.message);
    case 'CHANGED':
      return new TransferChangedError(fetched.message);
    case 'BUSY':
      return new TransferBusyError(fetched.message);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
