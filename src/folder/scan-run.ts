import type { BigIntStats } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type { FileChange, FileRecord, Store } from '../store/types.js';
import { ChangeBatcher } from './change-batcher.js';
import { EventLoopYielder } from './event-loop.js';
import { describeError, errorCode, isNotFound, nodeFolderFs, type FolderFs } from './folder-fs.js';
import { hashOpenFile, type FileHashes } from './hasher.js';
import { isAlwaysIgnored, type IgnoreRules } from './ignore.js';
import { KnownEntries, type KnownScanEntry } from './known-entries.js';
import { isUnderAny, relativePathProblem, selfAndAncestors, toAbsolute } from './paths.js';
import { ProgressMeter, type ScanProgress } from './progress.js';
import { isUnchanged, planChange, tombstoneOf, type Observation } from './records.js';
import { ReportBuilder, type ScanReport } from './report.js';
import { Walker, type WalkEntry } from './walker.js';
import { WorkerWalk } from './worker-walk.js';

/** Up to this many scopes are read from the store one subtree each; more, and one pass over all is cheaper. */
const MAX_SUBTREE_READS = 64;

/**
 * Records in scope from which the walk runs on a worker thread: below it, starting the thread
 * (about 50 ms) costs more than the walk. 100,000 unchanged files rescan in about half the time.
 */
export const WORKER_WALK_MIN_ENTRIES = 20_000;
/** Reads of a file that keeps changing while it is hashed, before it is left for the next scan. */
export const MAX_HASH_ATTEMPTS = 3;
/** Pause before hashing a changing file again, to let its writer finish. */
export const HASH_RETRY_DELAY_MS = 100;
/** Files hashed at once: overlaps the opening and reading of small files (about 3 MiB each). */
export const HASH_CONCURRENCY = 16;
/** The message of a file that changed on every attempt: its record stays as it was. */
export const CHANGING_WHILE_SCANNED = 'changing while scanned; will retry';
/**
 * A file whose mtime was this close to the moment it was hashed is "racy" (as git calls it): a
 * write right after the hash, within the file system's timestamp granularity (2 s on FAT, 1 s on
 * HFS+, a clock tick on ext4), can leave size and mtime as they were. Such a file is hashed again
 * by the next scan instead of being judged by its metadata.
 */
export const RACY_WINDOW_MS = 2000;
const RACY_WINDOW_NS = BigInt(RACY_WINDOW_MS) * 1_000_000n;
/**
 * Store meta key (8 bytes, signed big-endian ns): the stored files whose recorded mtime is at or
 * after this may be racy, and are hashed again by the next scan, also in a new process (the
 * scanner's own set of racy files lives only as long as it does). Before a scan commits anything it
 * lowers the value to its start minus RACY_WINDOW_MS (a file it hashes is racy only if modified
 * after that); a clean scan of the whole folder, having hashed every racy file again, raises it to
 * the oldest mtime among the files still racy (NO_RACY_FILES if none). Absent: none known.
 */
export const RACY_SINCE_KEY = 'scanner/racy-since';
const NO_RACY_FILES = 2n ** 63n - 1n;
/** Store meta key: fingerprint of the ignore rules the last completed scan used. */
export const IGNORE_FINGERPRINT_KEY = 'scanner/ignore-rules';

export interface ScanOptions {
  /** Hash every file (and read every symlink) even when its metadata matches the record. */
  readonly full?: boolean;
  /**
   * Limit the scan to these folder-relative paths and what is under them ('' is the whole folder;
   * omitted: the whole folder). A path that no longer exists becomes a delete of its record and
   * of every record under it.
   */
  readonly paths?: readonly string[];
  /** Progress of this scan; default the scanner's `onProgress`. */
  readonly onProgress?: (progress: ScanProgress) => void;
  /**
   * Stops the scan (it rejects with the signal's reason) at the next entry or file. What was
   * committed before stays (each commit is true of the disk); deletes are decided only at the end,
   * so an aborted scan records none.
   */
  readonly signal?: AbortSignal;
  /**
   * Called after each of this scan's commits (one every COMMIT_BATCH_SIZE changes), while the scan
   * goes on: what is committed can be announced to peers without waiting for the whole scan.
   */
  readonly onCommitted?: () => void;
}

export interface ScanRunComponents {
  readonly root: string;
  readonly store: Store;
  readonly fs: FolderFs;
  readonly ignores: IgnoreRules;
  /** Throws FolderMissingError unless the folder is still there: before every commit. */
  readonly checkFolder: () => Promise<void>;
  readonly onProgress?: (progress: ScanProgress) => void;
  readonly progressIntervalMs?: number;
  /** Racy files (see RACY_WINDOW_MS), kept by the scanner from one scan to the next. */
  readonly racy: Set<string>;
  /** Default WORKER_WALK_MIN_ENTRIES; the walk runs on a worker thread only with the real file system. */
  readonly workerWalkMinEntries?: number;
}

interface HashJob {
  readonly path: string;
  /** Whether the store had a record of the path when the scan began (if not, no need to look). */
  readonly hadRecord: boolean;
}

interface StableHash {
  readonly hashes: FileHashes;
  readonly stats: BigIntStats;
  /** Wall-clock time (ms) of the stat that confirmed the hash. */
  readonly checkedAt: number;
}

/** One scan: walk, hash what changed, then record deletes and moves. Used once. */
export class ScanRun {
  private readonly report = new ReportBuilder();
  private readonly progress: ProgressMeter;
  private readonly batcher: ChangeBatcher;
  private readonly walker: Walker;
  private readonly yielder = new EventLoopYielder();
  /** Paths that could not be read: nothing at or under them is deleted this scan. */
  private readonly unreadable = new Set<string>();
  private readonly hashJobs: HashJob[] = [];
  /** Records in scope not seen on disk: deleted, unless a new file turns one into a move. */
  private readonly deletions = new Map<string, KnownScanEntry>();
  /** Files and symlinks found where folders were recorded: committed after the deletes (see addChange). */
  private readonly replacingFolders: FileChange[] = [];
  /** Deletion candidates by content hash (hex), for move detection. */
  private readonly deletionsByContent = new Map<string, string[]>();
  /** Deletion candidates (files) by inode: a new path with one of these may be a rename of it. */
  private readonly deletionsByInode = new Map<bigint, string>();
  /** Wall-clock start of the scan (ns). */
  private readonly startedNs = BigInt(Date.now()) * 1_000_000n;
  /** The stored RACY_SINCE_KEY as this scan began: records from then on are hashed again. */
  private racySinceNs = NO_RACY_FILES;
  /** RACY_SINCE_KEY as this scan last wrote it; undefined until its first commit. */
  private racySinceWritten: bigint | undefined;
  /** Oldest mtime among the files this scan found racy. */
  private oldestRacyNs = NO_RACY_FILES;
  /** A queued file was not recorded (vanished or unreadable): a racy record may remain. */
  private hashSkipped = false;

  constructor(
    private readonly components: ScanRunComponents,
    private readonly options: ScanOptions,
  ) {
    this.progress = new ProgressMeter(options.onProgress ?? components.onProgress, components.progressIntervalMs);
    this.batcher = new ChangeBatcher(
      components.store,
      async () => {
        await components.checkFolder();
        await this.lowerRacySince();
      },
      options.onCommitted,
    );
    this.walker = new Walker({
      root: components.root,
      fs: components.fs,
      ignores: components.ignores,
      onUnreadable: (path, message) => this.markUnreadable(path, message),
      onSkipped: (path, message) => this.report.error(path, message),
    });
  }

  async run(): Promise<ScanReport> {
    const started = performance.now();
    const { store, ignores, checkFolder } = this.components;
    this.options.signal?.throwIfAborted();
    await checkFolder();
    const racySince = await store.getMeta(RACY_SINCE_KEY);
    if (racySince?.length === 8) this.racySinceNs = Buffer.from(racySince).readBigInt64BE(0);
    await ignores.reload();
    const fingerprint = ignores.fingerprint;
    const rulesChanged = decodeText(await store.getMeta(IGNORE_FINGERPRINT_KEY)) !== fingerprint;
    // New rules may un-ignore paths anywhere: only a walk of the whole folder finds them.
    const requested = rulesChanged ? [''] : this.requestedScopes();
    const scopes = await this.walker.resolveScopes(requested);

    // A large folder is walked on a worker thread while this one reads the store.
    let workerWalk: WorkerWalk | undefined;
    try {
      const considerWorker = (known: number) => {
        if (workerWalk === undefined && known >= (this.components.workerWalkMinEntries ?? WORKER_WALK_MIN_ENTRIES) && this.components.fs === nodeFolderFs) {
          workerWalk = this.startWorkerWalk(scopes);
        }
      };
      considerWorker(0);
      const known = await this.loadKnown(scopes, considerWorker);
      await this.recordMissingAncestors(scopes);
      this.progress.report();
      for await (const batch of workerWalk?.batches() ?? this.walker.walk(scopes)) {
        for (const entry of batch) {
          const previous = known.take(entry.path);
          // The common case of a rescan, decided without an await.
          if (this.isUnchanged(entry, previous)) this.report.counts.unchanged++;
          else await this.observe(entry, previous);
        }
        this.progress.filesSeen += batch.length;
        this.progress.tick();
        await this.pause();
      }
      // A root that vanished mid-walk reads as an empty tree: never decide deletes from that.
      await checkFolder();
      await this.findDeletions(known);
      known.clear();
    } finally {
      await workerWalk?.close();
    }

    this.progress.phase = 'hashing';
    this.progress.report();
    await this.hashAll();
    this.options.signal?.throwIfAborted();
    await this.recordDeletions();
    await this.batcher.flush();
    // Even with nothing to record: the caller must learn that the folder is gone.
    await checkFolder();
    if (rulesChanged) await store.setMeta(IGNORE_FINGERPRINT_KEY, Buffer.from(fingerprint));
    // Only a clean scan of everything hashed every file that was racy before it.
    if (scopes.includes('') && this.report.counts.errors === 0 && !this.hashSkipped) await this.writeRacySince(this.oldestRacyNs);
    this.progress.report();
    return this.report.finish(scopes, performance.now() - started);
  }

  /** Between two pieces of work: lets the event loop run, and stops here if the scan was aborted. */
  private async pause(): Promise<void> {
    this.options.signal?.throwIfAborted();
    await this.yielder.yieldIfDue();
  }

  /** The requested paths in NFC; invalid ones reported, mesh's own ones dropped. */
  private requestedScopes(): string[] {
    const { paths } = this.options;
    if (paths === undefined) return [''];
    const scopes: string[] = [];
    for (const path of paths) {
      const normalized = path.normalize('NFC');
      const problem = normalized === '' ? undefined : relativePathProblem(normalized);
      if (problem !== undefined) this.report.error(path, `not scanned: the path ${problem}`);
      else if (!isAlwaysIgnored(normalized)) scopes.push(normalized);
    }
    return scopes;
  }

  private startWorkerWalk(scopes: readonly string[]): WorkerWalk {
    return new WorkerWalk({
      root: this.components.root,
      scopes,
      rulesText: this.components.ignores.rulesText,
      onUnreadable: (path, message) => this.markUnreadable(path, message),
      onSkipped: (path, message) => this.report.error(path, message),
    });
  }

  /**
   * What the store knows in the scopes: one small entry per record, not the block lists.
   * `onLoaded` hears the count so far after each batch.
   */
  private async loadKnown(scopes: readonly string[], onLoaded: (count: number) => void): Promise<KnownEntries> {
    const known = new KnownEntries();
    if (scopes.length === 0) return known;
    const everything = scopes.includes('');
    const { store } = this.components;
    if (!everything && scopes.length <= MAX_SUBTREE_READS) {
      // A watcher's rescan of a few paths reads only their subtrees, not the whole index.
      for (const scope of scopes) {
        for await (const batch of store.scanEntries(scope)) {
          for (const entry of batch) known.add(entry);
          onLoaded(known.size);
          await this.pause();
        }
      }
      return known;
    }
    const scopeSet = new Set(scopes);
    for await (const batch of store.scanEntries()) {
      for (const entry of batch) if (everything || isUnderAny(entry.path, scopeSet)) known.add(entry);
      onLoaded(known.size);
      await this.pause();
    }
    return known;
  }

  /** A scoped scan of a/b/c also records a and a/b if the store lacks them (a file needs its parents). */
  private async recordMissingAncestors(scopes: readonly string[]): Promise<void> {
    const { store, fs, ignores, root } = this.components;
    const done = new Set<string>();
    for (const scope of scopes) {
      const ancestors = [...selfAndAncestors(scope)].slice(1).reverse();
      for (const ancestor of ancestors) {
        if (done.has(ancestor) || ignores.isIgnored(ancestor, true)) break;
        done.add(ancestor);
        const record = await store.get(ancestor);
        if (record !== undefined && !record.deleted) continue;
        let stats: BigIntStats;
        try {
          stats = await fs.lstat(toAbsolute(root, ancestor));
        } catch {
          break; // Walking the scope reports what is wrong with it.
        }
        if (!stats.isDirectory()) break;
        await this.record(ancestor, { type: 'directory', stats }, true);
      }
    }
  }

  /** Whether an entry found by the walk is as recorded, and need not be hashed again. */
  private isUnchanged(entry: WalkEntry, known: KnownScanEntry | undefined): boolean {
    if (known === undefined || !isUnchanged(known, entry.type, entry.stats)) return false;
    const rehash = (this.options.full === true && entry.type !== 'directory') || this.components.racy.has(entry.path) || this.mayBeRacy(entry.type, known);
    return !rehash;
  }

  /** An entry found by the walk that is not as recorded: queued for hashing, or recorded now. */
  private async observe(entry: WalkEntry, known: KnownScanEntry | undefined): Promise<void> {
    switch (entry.type) {
      case 'file':
        this.hashJobs.push({ path: entry.path, hadRecord: known !== undefined });
        this.progress.filesToHash++;
        this.progress.bytesToHash += Number(entry.stats.size);
        return;
      case 'directory':
        return this.record(entry.path, { type: 'directory', stats: entry.stats }, known !== undefined);
      case 'symlink': {
        let target: string;
        try {
          target = await this.components.fs.readlink(toAbsolute(this.components.root, entry.path));
        } catch (error) {
          // Gone since the walk saw it: its record stays for the next scan to settle.
          if (!isNotFound(error)) this.markUnreadable(entry.path, describeError(error));
          return;
        }
        return this.record(entry.path, { type: 'symlink', stats: entry.stats, target }, known !== undefined);
      }
    }
  }

  /** Whether a file's record may have been made by an earlier scan too soon after the file was modified. */
  private mayBeRacy(type: WalkEntry['type'], known: KnownScanEntry | undefined): boolean {
    return type === 'file' && known !== undefined && known.mtimeNs >= this.racySinceNs;
  }

  /** Before the first commit: any file this scan hashes is racy only if modified after its start - window. */
  private async lowerRacySince(): Promise<void> {
    if (this.racySinceWritten !== undefined) return;
    const bound = this.startedNs - RACY_WINDOW_NS;
    if (this.racySinceNs <= bound) this.racySinceWritten = this.racySinceNs;
    else await this.writeRacySince(bound);
  }

  private async writeRacySince(value: bigint): Promise<void> {
    if (value === (this.racySinceWritten ?? this.racySinceNs)) return;
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64BE(value);
    await this.components.store.setMeta(RACY_SINCE_KEY, bytes);
    this.racySinceWritten = value;
  }

  /** Records what was observed at `path`; `hadRecord` false spares looking up a record there is not. */
  private async record(path: string, observed: Observation, hadRecord: boolean): Promise<void> {
    const { store } = this.components;
    const previous = hadRecord ? await store.get(path) : undefined;
    const planned = planChange(path, previous, observed, store.deviceId);
    if (planned === undefined) {
      this.report.counts.unchanged++;
      return;
    }
    this.count(planned.kind, path, planned.change.size);
    await this.addChange(planned.change, previous);
  }

  /**
   * Adds a change to the next commit, unless it puts a file or symlink where a folder is recorded:
   * that one waits for the deletes of what the folder held (recordDeletions). Peers hear of each
   * commit as it lands; one that got the file first would find the folder still full and keep it.
   */
  private async addChange(change: FileChange, previous: FileRecord | undefined): Promise<void> {
    if (previous !== undefined && !previous.deleted && previous.type === 'directory' && change.type !== 'directory') {
      this.replacingFolders.push(change);
      return;
    }
    await this.batcher.add(change);
  }

  private count(kind: 'added' | 'modified' | 'metadata', path: string, bytes: number): void {
    if (kind === 'metadata') this.report.counts.metadataUpdated++;
    else this.report.add(kind, path, bytes);
  }

  private markUnreadable(path: string, message: string): void {
    this.unreadable.add(path);
    this.report.error(path === '' ? '.' : path, message);
  }

  private isProtected(path: string): boolean {
    return this.unreadable.has('') || isUnderAny(path, this.unreadable);
  }

  /** The records in scope the walk did not see, except unreadable or ignored ones. */
  private async findDeletions(known: KnownEntries): Promise<void> {
    for (const [path, entry] of known.untaken()) {
      if (entry.deleted || this.isProtected(path)) continue;
      // A record whose path is now ignored is left alone, not deleted.
      if (this.components.ignores.isIgnored(path, entry.type === 'directory')) continue;
      this.deletions.set(path, entry);
      if (entry.type === 'file' && entry.size > 0) {
        this.deletionsByInode.set(entry.inode, path);
        const record = await this.components.store.get(path);
        if (record === undefined || record.deleted) continue;
        const key = Buffer.from(record.contentHash).toString('hex');
        const paths = this.deletionsByContent.get(key);
        if (paths === undefined) this.deletionsByContent.set(key, [path]);
        else paths.push(path);
        await this.yielder.yieldIfDue();
      }
    }
  }

  /** Hashes the queued files, HASH_CONCURRENCY at a time; stops at the first failure to record. */
  private async hashAll(): Promise<void> {
    let next = 0;
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      while (failure === undefined && next < this.hashJobs.length) {
        const job = this.hashJobs[next++];
        try {
          await this.hashAndRecord(job);
          await this.pause();
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: HASH_CONCURRENCY }, worker));
    if (failure !== undefined) throw failure.error;
  }

  private async hashAndRecord(job: HashJob): Promise<void> {
    const { store } = this.components;
    const renamed = job.hadRecord ? undefined : await this.renamedUnchanged(job.path);
    const result = renamed ?? (await this.hashStable(job.path));
    if (result === undefined) {
      this.hashSkipped = true;
      return;
    }
    if (renamed === undefined) {
      this.report.filesHashed++;
      this.progress.filesHashed++;
    } else {
      this.progress.bytesHashed += renamed.hashes.size;
    }
    const sinceModifiedNs = BigInt(Math.floor(result.checkedAt * 1e6)) - result.stats.mtimeNs;
    if (sinceModifiedNs < RACY_WINDOW_NS) {
      this.components.racy.add(job.path);
      if (result.stats.mtimeNs < this.oldestRacyNs) this.oldestRacyNs = result.stats.mtimeNs;
    } else {
      this.components.racy.delete(job.path);
    }
    const { hashes, stats } = result;
    const previous = job.hadRecord ? await store.get(job.path) : undefined;
    const planned = planChange(job.path, previous, { type: 'file', hashes, stats }, store.deviceId);
    if (planned === undefined) {
      this.report.counts.unchanged++;
      return;
    }
    if (planned.kind === 'added' && result.hashes.size > 0) {
      const from = this.takeMoveSource(result.hashes.contentHash, result.stats.ino);
      const source = from === undefined ? undefined : await store.get(from);
      if (from !== undefined && source !== undefined && !source.deleted) {
        this.report.move({ from, to: job.path }, result.hashes.size);
        // One add: the tombstone and the new record land in the same commit.
        await this.batcher.add(tombstoneOf(source, store.deviceId), planned.change);
        return;
      }
    }
    this.count(planned.kind, job.path, planned.change.size);
    await this.addChange(planned.change, previous);
  }

  /**
   * The hashes of a new path that is a recorded file renamed, unchanged: the deletion candidate with
   * its inode, size, mtime and permissions (what a rescan trusts of a file at its own path), not
   * racy, and no --full scan. Its record's hashes serve, so a renamed 10 GiB file is not read
   * again; the move is then found by content as for any other. Undefined otherwise: hashed.
   */
  private async renamedUnchanged(path: string): Promise<StableHash | undefined> {
    if (this.deletionsByInode.size === 0 || this.options.full === true) return undefined;
    const { fs, root, store, racy } = this.components;
    let stats: BigIntStats;
    try {
      stats = await fs.lstat(toAbsolute(root, path));
    } catch {
      return undefined;
    }
    const from = this.deletionsByInode.get(stats.ino);
    const known = from === undefined ? undefined : this.deletions.get(from);
    if (from === undefined || known === undefined || !isUnchanged(known, 'file', stats)) return undefined;
    if (racy.has(from) || this.mayBeRacy('file', known)) return undefined;
    const record = await store.get(from);
    if (record === undefined || record.deleted || record.type !== 'file') return undefined;
    return { hashes: { size: record.size, blockHashes: record.blockHashes, contentHash: record.contentHash }, stats, checkedAt: Date.now() };
  }

  /**
   * Hashes a file until two stats around the read agree (size, mtime, inode), at most
   * MAX_HASH_ATTEMPTS times. Undefined when it vanished, could not be read, or kept changing
   * (reported); its record then stays as it was.
   */
  private async hashStable(path: string): Promise<StableHash | undefined> {
    const { fs, root } = this.components;
    const absolute = toAbsolute(root, path);
    const onBytes = (bytes: number) => {
      this.report.bytesHashed += bytes;
      this.progress.bytesHashed += bytes;
      this.progress.tick();
      this.options.signal?.throwIfAborted(); // a 10 GiB file need not be finished first
    };
    for (let attempt = 1; attempt <= MAX_HASH_ATTEMPTS; attempt++) {
      if (attempt > 1) await delay(HASH_RETRY_DELAY_MS);
      let before: BigIntStats;
      let hashes: FileHashes | undefined;
      try {
        const file = await fs.openForReading(absolute);
        try {
          before = await file.stat();
          // No longer a regular file (the path was replaced since the walk): try again.
          if (before.isFile()) hashes = await hashOpenFile(file, { expectedSize: Number(before.size), onBytes });
        } finally {
          await file.close();
        }
        const after = await fs.lstat(absolute);
        const checkedAt = Date.now();
        if (hashes !== undefined && sameFileState(before, after) && hashes.size === Number(before.size)) {
          return { hashes, stats: before, checkedAt };
        }
      } catch (error) {
        if (this.options.signal?.aborted === true) throw error;
        if (isNotFound(error)) return undefined; // Deleted since the walk: the next scan records it.
        if (errorCode(error) === 'ELOOP') continue; // Replaced by a symlink since the walk.
        this.report.error(path, describeError(error));
        return undefined;
      }
    }
    this.report.error(path, CHANGING_WHILE_SCANNED);
    return undefined;
  }

  /** The deletion candidate with this content, preferring the same inode (a rename); taken. */
  private takeMoveSource(contentHash: Uint8Array, inode: bigint): string | undefined {
    const key = Buffer.from(contentHash).toString('hex');
    const paths = this.deletionsByContent.get(key);
    if (paths === undefined) return undefined;
    const live = paths.filter((path) => this.deletions.has(path));
    const chosen = live.find((path) => this.deletions.get(path)?.inode === inode) ?? live[0];
    if (chosen === undefined) return undefined;
    this.deletions.delete(chosen);
    this.components.racy.delete(chosen);
    this.deletionsByContent.set(
      key,
      live.filter((path) => path !== chosen),
    );
    return chosen;
  }

  /** Records the deletes, then the files and symlinks that replaced folders (see addChange). */
  private async recordDeletions(): Promise<void> {
    const { store } = this.components;
    // Deepest first (a descendant's path is the longer): peers get these in batches, and one that
    // applied a folder's tombstone before its files' would keep the folder, as not empty, for good.
    const deepestFirst = [...this.deletions.keys()].sort((a, b) => b.length - a.length);
    for (const path of deepestFirst) {
      this.components.racy.delete(path);
      const previous = await store.get(path);
      if (previous === undefined || previous.deleted) continue;
      this.report.add('deleted', path, previous.size);
      await this.batcher.add(tombstoneOf(previous, store.deviceId));
      // No abort from here on: the deletes of a scan are recorded all together.
      await this.yielder.yieldIfDue();
    }
    this.deletions.clear();
    for (const change of this.replacingFolders) await this.batcher.add(change);
  }
}

/** The same file with the same content, as far as stat can tell. */
function sameFileState(before: BigIntStats, after: BigIntStats): boolean {
  return after.isFile() && before.ino === after.ino && before.size === after.size && before.mtimeNs === after.mtimeNs;
}

function decodeText(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
}
