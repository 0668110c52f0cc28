import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { StoreClosedError, StoreCorruptError, StoreInputError, StoreLockedError } from './errors.js';
import {
  contentKey,
  contentOfKey,
  contentRange,
  decodeUtf8,
  fileKey,
  fileKeyOfUtf8,
  metaKey,
  peerKey,
  readUint64,
  scanKey,
  sequenceKey,
  sequenceOfKey,
  TABLE,
  tableRange,
  writeUint64,
  type Table,
} from './level-keys.js';
import { newDeviceId } from './memory-store.js';
import { decodeRecord, decodeSequence, encodeRecord } from './record-codec.js';
import { contentOfScanEntry, decodeScanEntry, encodeScanEntry } from './scan-entry-codec.js';
import {
  changeProblem,
  CONTENT_HASH_BYTES,
  contentLookupProblem,
  DEVICE_ID_META_KEY,
  holdsContent,
  keyProblem,
  metaKeyProblem,
  progressProblem,
  recordOf,
  sequenceProblem,
} from './store-input.js';
import type { ContentEntry, FileChange, FileRecord, PeerProgress, ScanEntry, Store } from './types.js';
import { DEVICE_ID_BYTES, type DeviceId } from './version-vector.js';

/** Entries read per step of since() and records(): one native call each instead of one per entry. */
const SCAN_BATCH = 256;
/** Scan entries read per step of scanEntries(): they are small. */
const SCAN_ENTRY_BATCH = 1024;
/** Peer progress on disk: received, then acknowledged, 8 bytes each. */
const PROGRESS_BYTES = 16;
const NO_PROGRESS: PeerProgress = { received: 0, acknowledged: 0 };
/** The value of a content key: the key says it all. */
const EMPTY = new Uint8Array(0);
/**
 * Commits and meta writes reach the disk before they resolve. A sequence number is announced to
 * peers once committed; if a power cut took the commit back, the number would be given again to a
 * different change, and a peer that already holds it would never ask for that change.
 */
const DURABLE = { sync: true } as const;
/**
 * Meta key (internal to this store) present once the scan table ('x') holds an entry for every
 * record. An index written before the table existed gets it built on open, once.
 */
export const SCAN_TABLE_META_KEY = 'store/scan-table';
/** Meta key (internal) present once the content table ('c') lists every record holding content. */
export const CONTENT_TABLE_META_KEY = 'store/content-table';
/** Scan entries written per batch while the scan table is built. */
const BUILD_BATCH = 1000;

type Db = Level<Uint8Array, Uint8Array>;

/**
 * LevelDB's options, sized for a small machine (a Raspberry Pi holding 100,000 files): a block
 * cache of 2 MiB instead of 8. Blocks are read from tables LevelDB maps into memory (64-bit
 * systems) and inflated from Snappy into the cache; a miss costs a decompression, not a read.
 * (Uncompressed tables would skip the cache but take more memory as mapped pages: paths compress.)
 */
const DB_OPTIONS = { cacheSize: 2 * 1024 * 1024 } as const;

/**
 * Opens (creating if missing) the LevelDB store at `location`, a directory (mesh uses
 * `<folder>/.mesh/index`). One process at a time: a second open throws StoreLockedError.
 */
export async function openLevelStore(location: string): Promise<Store> {
  await mkdir(location, { recursive: true });
  const db: Db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view', ...DB_OPTIONS });
  try {
    await db.open();
  } catch (error) {
    throw openError(location, error);
  }
  try {
    const deviceId = await loadDeviceId(db);
    await ensureScanTable(db);
    await ensureContentTable(db);
    const lastSequence = await loadLastSequence(db);
    return new LevelStore(db, deviceId, lastSequence);
  } catch (error) {
    await db.close();
    throw error;
  }
}

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

/** level reports a failed open as LEVEL_DATABASE_NOT_OPEN; what went wrong is in its cause. */
function openError(location: string, error: unknown): Error {
  const cause = error instanceof Error ? error.cause : undefined;
  if (codeOf(cause) === 'LEVEL_LOCKED') {
    return new StoreLockedError(`the folder's index is in use by another mesh process (${location} is locked)`, { cause: error });
  }
  if (codeOf(cause) === 'LEVEL_CORRUPTION') {
    return new StoreCorruptError(`the folder's index at ${location} is damaged and cannot be opened`, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** The device id made on first open and kept from then on. */
async function loadDeviceId(db: Db): Promise<DeviceId> {
  const key = metaKey(DEVICE_ID_META_KEY);
  const stored = (await db.get(key)) as Uint8Array | undefined;
  if (stored === undefined) {
    const deviceId = newDeviceId();
    await db.put(key, Buffer.from(deviceId, 'hex'), DURABLE);
    return deviceId;
  }
  if (stored.length !== DEVICE_ID_BYTES) throw new StoreCorruptError(`corrupt index: the device id is ${stored.length} bytes`);
  return Buffer.from(stored).toString('hex');
}

/** Builds the scan table from the records if this index predates it (or a build was cut short). */
function ensureScanTable(db: Db): Promise<void> {
  return ensureTable(db, SCAN_TABLE_META_KEY, TABLE.file, (operations, key, value) => {
    const path = decodeUtf8(key.subarray(1), 'a record key');
    operations.put(scanKey(path), encodeScanEntry(decodeStored(value, path)));
  });
}

/** Builds the content table from the scan table if this index predates it (or a build was cut short). */
function ensureContentTable(db: Db): Promise<void> {
  return ensureTable(db, CONTENT_TABLE_META_KEY, TABLE.scan, (operations, key, value) => {
    const content = contentOfScanEntry(value);
    if (content !== undefined) operations.put(contentKey(content, decodeUtf8(key.subarray(1), 'a scan entry key')), EMPTY);
  });
}

/**
 * Unless meta `markerKey` says it was done: writes what `derive` makes of each entry of `from`,
 * BUILD_BATCH entries per batch, then the marker. A build cut short is made again at the next open.
 */
async function ensureTable(db: Db, markerKey: string, from: Table, derive: (operations: ReturnType<Db['batch']>, key: Uint8Array, value: Uint8Array) => void): Promise<void> {
  const marker = metaKey(markerKey);
  if ((await db.get(marker)) !== undefined) return;
  const entries = db.iterator(tableRange(from));
  try {
    for (;;) {
      const batch = await entries.nextv(BUILD_BATCH);
      if (batch.length === 0) break;
      const operations = db.batch();
      for (const [key, value] of batch) derive(operations, key, value);
      await operations.write();
    }
  } finally {
    await entries.close();
  }
  await db.put(marker, Uint8Array.of(1), DURABLE);
}

/** The last key of the sequence index: no separate counter that could disagree with it. */
async function loadLastSequence(db: Db): Promise<number> {
  const last = await db.keys({ ...tableRange(TABLE.sequence), reverse: true, limit: 1 }).all();
  return last.length === 0 ? 0 : sequenceOfKey(last[0]);
}

function decodeStored(value: Uint8Array, path: string): FileRecord {
  const record = decodeRecord(value);
  if (record.path !== path) throw new StoreCorruptError(`corrupt index: the record under ${JSON.stringify(path)} names ${JSON.stringify(record.path)}`);
  return record;
}

function encodeProgress(progress: PeerProgress): Uint8Array {
  const bytes = new Uint8Array(PROGRESS_BYTES);
  writeUint64(bytes, 0, progress.received);
  writeUint64(bytes, 8, progress.acknowledged);
  return bytes;
}

function decodeProgress(bytes: Uint8Array, peer: string): PeerProgress {
  if (bytes.length !== PROGRESS_BYTES) throw new StoreCorruptError(`corrupt index: progress of peer ${peer} is ${bytes.length} bytes`);
  return { received: readUint64(bytes, 0, 'peer progress'), acknowledged: readUint64(bytes, 8, 'peer progress') };
}

function check(problem: string | undefined): void {
  if (problem !== undefined) throw new StoreInputError(problem);
}


class LevelStore implements Store {
  /** Commits run one at a time: each reads the sequences the one before it wrote. */
  private writes: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    readonly deviceId: DeviceId,
    private sequence: number,
  ) {}

  get lastSequence(): number {
    return this.sequence;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new StoreClosedError('store is closed');
  }

  async get(path: string): Promise<FileRecord | undefined> {
    this.assertOpen();
    // A path with no UTF-8 form can never have been stored (and its key would name another path).
    if (keyProblem(path) !== undefined) return undefined;
    const value = (await this.db.get(fileKey(path))) as Uint8Array | undefined;
    return value === undefined ? undefined : decodeStored(value, path);
  }

  getMany(paths: readonly string[]): Promise<(FileRecord | undefined)[]> {
    return this.readMany(paths, decodeStored);
  }

  sequencesOf(paths: readonly string[]): Promise<(number | undefined)[]> {
    return this.readMany(paths, (value) => decodeSequence(value));
  }

  /** The records of `paths` in one read, each stored value given to `decode`; undefined where none. */
  private async readMany<T>(paths: readonly string[], decode: (value: Uint8Array, path: string) => T): Promise<(T | undefined)[]> {
    this.assertOpen();
    const storable = paths.filter((path) => keyProblem(path) === undefined);
    const values = storable.length === 0 ? [] : ((await this.db.getMany(storable.map(fileKey))) as (Uint8Array | undefined)[]);
    const found = new Map<string, T>();
    storable.forEach((path, k) => {
      const value = values[k];
      if (value !== undefined) found.set(path, decode(value, path));
    });
    return paths.map((path) => found.get(path));
  }

  async commit(changes: readonly FileChange[]): Promise<FileRecord[]> {
    this.assertOpen();
    for (const change of changes) check(changeProblem(change));
    if (changes.length === 0) return [];
    // Copied now: the caller may reuse its objects while this commit waits its turn.
    const records = changes.map((change) => recordOf(change, 0));
    const run = this.writes.then(() => this.write(records));
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** One atomic batch: per change the record, its scan entry and content key, its new sequence entry, and the old ones gone. */
  private async write(pending: FileRecord[]): Promise<FileRecord[]> {
    const paths = [...new Set(pending.map((record) => record.path))];
    const [previous, previousScan] = (await Promise.all([this.db.getMany(paths.map(fileKey)), this.db.getMany(paths.map(scanKey))])) as (Uint8Array | undefined)[][];
    const sequenceOf = new Map<string, number>();
    const contentOf = new Map<string, Uint8Array | undefined>();
    paths.forEach((path, k) => {
      const value = previous[k];
      if (value !== undefined) sequenceOf.set(path, decodeSequence(value));
      const scan = previousScan[k];
      if (scan !== undefined) contentOf.set(path, contentOfScanEntry(scan));
    });
    let next = this.sequence;
    // A chained batch: an array batch copies every operation into a larger object first, garbage
    // that outlives the synced write and piles up in the old generation during a first scan.
    const operations = this.db.batch();
    let stored: FileRecord[];
    try {
      stored = pending.map((record): FileRecord => {
        const sequence = ++next;
        const old = sequenceOf.get(record.path);
        // The same path twice in one commit: the later change drops the earlier one's entry.
        if (old !== undefined) operations.del(sequenceKey(old));
        sequenceOf.set(record.path, sequence);
        const withSequence = { ...record, sequence };
        operations.put(sequenceKey(sequence), Buffer.from(record.path, 'utf8'));
        operations.put(fileKey(record.path), encodeRecord(withSequence));
        operations.put(scanKey(record.path), encodeScanEntry(record));
        const oldContent = contentOf.get(record.path);
        if (oldContent !== undefined) operations.del(contentKey(oldContent, record.path));
        const content = holdsContent(record) ? record.contentHash : undefined;
        if (content !== undefined) operations.put(contentKey(content, record.path), EMPTY);
        contentOf.set(record.path, content);
        return withSequence;
      });
    } catch (error) {
      await operations.close();
      throw error;
    }
    await operations.write(DURABLE);
    this.sequence = next;
    return stored;
  }

  async *since(sequence: number): AsyncGenerator<FileRecord> {
    this.assertOpen();
    check(sequenceProblem(sequence));
    // Index and records read from one snapshot, so a commit made meanwhile cannot tear them apart.
    const snapshot = this.db.snapshot();
    const entries = this.db.iterator({ gt: sequenceKey(sequence), lt: tableRange(TABLE.sequence).lt, snapshot });
    try {
      for (;;) {
        const batch = await this.step(() => entries.nextv(SCAN_BATCH));
        if (batch.length === 0) return;
        const keys = batch.map(([, path]) => fileKeyOfUtf8(path));
        const values = await this.step(() => this.db.getMany<Uint8Array, Uint8Array | undefined>(keys, { snapshot }));
        for (let k = 0; k < batch.length; k++) {
          const entry = sequenceOfKey(batch[k][0]);
          const path = decodeUtf8(batch[k][1], `the path of sequence ${entry}`);
          const value = values[k];
          if (value === undefined) throw new StoreCorruptError(`corrupt index: sequence ${entry} names ${JSON.stringify(path)}, which has no record`);
          const record = decodeStored(value, path);
          if (record.sequence !== entry) {
            throw new StoreCorruptError(`corrupt index: sequence ${entry} names ${JSON.stringify(path)}, whose record has sequence ${record.sequence}`);
          }
          yield record;
        }
      }
    } finally {
      await entries.close();
      await snapshot.close();
    }
  }

  async *records(subtree?: string): AsyncGenerator<FileRecord> {
    this.assertOpen();
    if (subtree === undefined) {
      yield* this.recordsIn(tableRange(TABLE.file));
      return;
    }
    // The path itself, then the keys from "subtree/" up to "subtree0" ('0' follows '/' in UTF-8).
    const own = await this.get(subtree);
    if (own !== undefined) yield own;
    yield* this.recordsIn({ gte: fileKey(`${subtree}/`), lt: fileKey(`${subtree}0`) });
  }

  private async *recordsIn(range: { gte: Uint8Array; lt: Uint8Array }): AsyncGenerator<FileRecord> {
    const entries = this.db.iterator(range);
    try {
      for (;;) {
        const batch = await this.step(() => entries.nextv(SCAN_BATCH));
        if (batch.length === 0) return;
        for (const [key, value] of batch) yield decodeStored(value, decodeUtf8(key.subarray(1), 'a record key'));
      }
    } finally {
      await entries.close();
    }
  }

  async *scanEntries(subtree?: string): AsyncGenerator<readonly ScanEntry[]> {
    this.assertOpen();
    if (subtree === undefined) {
      yield* this.scanEntriesIn(tableRange(TABLE.scan));
      return;
    }
    if (keyProblem(subtree) === undefined) {
      const own = (await this.db.get(scanKey(subtree))) as Uint8Array | undefined;
      if (own !== undefined) yield [decodeScanEntry(subtree, own)];
    }
    yield* this.scanEntriesIn({ gte: scanKey(`${subtree}/`), lt: scanKey(`${subtree}0`) });
  }

  private async *scanEntriesIn(range: { gte: Uint8Array; lt: Uint8Array }): AsyncGenerator<readonly ScanEntry[]> {
    const entries = this.db.iterator(range);
    try {
      for (;;) {
        const batch = await this.step(() => entries.nextv(SCAN_ENTRY_BATCH));
        if (batch.length === 0) return;
        yield batch.map(([key, value]) => decodeScanEntry(decodeUtf8(key.subarray(1), 'a scan entry key'), value));
      }
    } finally {
      await entries.close();
    }
  }

  /** A read inside a scan; if close() ended the scan under it, say so in the store's terms. */
  private async step<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (this.closing !== undefined) throw new StoreClosedError('store was closed during a scan', { cause: error });
      throw error;
    }
  }

  async pathsWithContent(contentHash: Uint8Array, limit: number): Promise<string[]> {
    this.assertOpen();
    check(contentLookupProblem(contentHash, limit));
    if (contentHash.length !== CONTENT_HASH_BYTES) return [];
    const keys = await this.db.keys({ ...contentRange(contentHash), limit }).all();
    return keys.map((key) => contentOfKey(key, contentHash.length).path);
  }

  async *contents(): AsyncGenerator<readonly ContentEntry[]> {
    this.assertOpen();
    const keys = this.db.keys(tableRange(TABLE.content));
    try {
      for (;;) {
        const batch = await this.step(() => keys.nextv(SCAN_BATCH));
        if (batch.length === 0) return;
        yield batch.map((key) => contentOfKey(key, CONTENT_HASH_BYTES));
      }
    } finally {
      await keys.close();
    }
  }

  async getPeer(peer: string): Promise<PeerProgress> {
    this.assertOpen();
    check(keyProblem(peer));
    const value = (await this.db.get(peerKey(peer))) as Uint8Array | undefined;
    return value === undefined ? { ...NO_PROGRESS } : decodeProgress(value, peer);
  }

  async setPeer(peer: string, progress: PeerProgress): Promise<void> {
    this.assertOpen();
    check(keyProblem(peer) ?? progressProblem(progress));
    // Not synced: progress lost in a power cut only makes the next exchange resend a little.
    await this.db.put(peerKey(peer), encodeProgress(progress));
  }

  async getMeta(key: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    check(keyProblem(key));
    const value = (await this.db.get(metaKey(key))) as Uint8Array | undefined;
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async setMeta(key: string, value: Uint8Array): Promise<void> {
    this.assertOpen();
    check(metaKeyProblem(key));
    if (!(value instanceof Uint8Array)) throw new StoreInputError(`meta value of ${key} must be bytes`);
    await this.db.put(metaKey(key), new Uint8Array(value), DURABLE);
  }

  /** Waits for commits already accepted, then closes; later calls (and this one again) are no-ops. */
  close(): Promise<void> {
    this.closing ??= this.writes.then(() => this.db.close());
    return this.closing;
  }
}
