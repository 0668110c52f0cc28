import { randomBytes } from 'node:crypto';
import { StoreClosedError, StoreInputError } from './errors.js';
import {
  changeProblem,
  CONTENT_HASH_BYTES,
  contentLookupProblem,
  copyRecord,
  DEVICE_ID_META_KEY,
  holdsContent,
  keyProblem,
  metaKeyProblem,
  progressProblem,
  recordOf,
  sequenceProblem,
} from './store-input.js';
import { scanEntryOf } from './scan-entry-codec.js';
import type { ContentEntry, FileChange, FileRecord, PeerProgress, ScanEntry, Store } from './types.js';
import { isDeviceId, type DeviceId } from './version-vector.js';

const NO_PROGRESS: PeerProgress = { received: 0, acknowledged: 0 };

/** A fresh random device id (64 bits as 16 hex digits). */
export function newDeviceId(): DeviceId {
  return randomBytes(8).toString('hex');
}

function check(problem: string | undefined): void {
  if (problem !== undefined) throw new StoreInputError(problem);
}

/**
 * The in-memory twin of the LevelDB store: the same contract (the acceptance suite runs on both),
 * for tests that need no disk. Records are copied in and out, as a database would. Methods are
 * async so that every failure, a closed store included, is a rejection as it is with LevelDB.
 */
export class MemoryStore implements Store {
  private readonly files = new Map<string, FileRecord>();
  private readonly bySequence = new Map<number, string>();
  /** Content hash (latin1) -> paths whose record holds it (the LevelDB store's content table). */
  private readonly byContent = new Map<string, Set<string>>();
  private readonly peers = new Map<string, PeerProgress>();
  private readonly meta = new Map<string, Uint8Array>();
  private sequence = 0;
  private closed = false;

  constructor(readonly deviceId: DeviceId = newDeviceId()) {
    if (!isDeviceId(deviceId)) throw new StoreInputError(`not a device id: ${String(deviceId)}`);
    this.meta.set(DEVICE_ID_META_KEY, Buffer.from(deviceId, 'hex'));
  }

  get lastSequence(): number {
    return this.sequence;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('store is closed');
  }

  async get(path: string): Promise<FileRecord | undefined> {
    this.assertOpen();
    const record = this.files.get(path);
    return record === undefined ? undefined : copyRecord(record);
  }

  async getMany(paths: readonly string[]): Promise<(FileRecord | undefined)[]> {
    this.assertOpen();
    return paths.map((path) => {
      const record = this.files.get(path);
      return record === undefined ? undefined : copyRecord(record);
    });
  }

  async sequencesOf(paths: readonly string[]): Promise<(number | undefined)[]> {
    this.assertOpen();
    return paths.map((path) => this.files.get(path)?.sequence);
  }

  async commit(changes: readonly FileChange[]): Promise<FileRecord[]> {
    this.assertOpen();
    // Every change is checked before any is applied: a commit is all or nothing.
    for (const change of changes) check(changeProblem(change));
    const stored: FileRecord[] = [];
    for (const change of changes) {
      const previous = this.files.get(change.path);
      if (previous !== undefined) this.bySequence.delete(previous.sequence);
      if (previous !== undefined && holdsContent(previous)) this.byContent.get(contentKey(previous.contentHash))?.delete(previous.path);
      const record = recordOf(change, ++this.sequence);
      this.files.set(record.path, record);
      this.bySequence.set(record.sequence, record.path);
      if (holdsContent(record)) {
        const key = contentKey(record.contentHash);
        const holders = this.byContent.get(key);
        if (holders === undefined) this.byContent.set(key, new Set([record.path]));
        else holders.add(record.path);
      }
      stored.push(copyRecord(record));
    }
    return stored;
  }

  async *since(sequence: number): AsyncGenerator<FileRecord> {
    this.assertOpen();
    check(sequenceProblem(sequence));
    const sequences = [...this.bySequence.keys()].filter((s) => s > sequence).sort((a, b) => a - b);
    for (const s of sequences) {
      const path = this.bySequence.get(s);
      const record = path === undefined ? undefined : this.files.get(path);
      if (record !== undefined && record.sequence === s) yield copyRecord(record);
    }
  }

  async *records(subtree?: string): AsyncGenerator<FileRecord> {
    this.assertOpen();
    const inScope = (path: string) => subtree === undefined || path === subtree || path.startsWith(`${subtree}/`);
    const paths = [...this.files.keys()].filter(inScope).sort(comparePaths);
    for (const path of paths) {
      const record = this.files.get(path);
      if (record !== undefined) yield copyRecord(record);
    }
  }

  async *scanEntries(subtree?: string): AsyncGenerator<readonly ScanEntry[]> {
    const batch: ScanEntry[] = [];
    for await (const record of this.records(subtree)) batch.push(scanEntryOf(record));
    if (batch.length > 0) yield batch;
  }

  async pathsWithContent(contentHash: Uint8Array, limit: number): Promise<string[]> {
    this.assertOpen();
    check(contentLookupProblem(contentHash, limit));
    if (contentHash.length !== CONTENT_HASH_BYTES) return [];
    return [...(this.byContent.get(contentKey(contentHash)) ?? [])].sort(comparePaths).slice(0, limit);
  }

  async *contents(): AsyncGenerator<readonly ContentEntry[]> {
    this.assertOpen();
    const entries: ContentEntry[] = [];
    for (const [key, paths] of this.byContent) {
      for (const path of paths) entries.push({ contentHash: Uint8Array.from(Buffer.from(key, 'latin1')), path });
    }
    entries.sort((a, b) => Buffer.compare(a.contentHash, b.contentHash) || comparePaths(a.path, b.path));
    if (entries.length > 0) yield entries;
  }

  async getPeer(peer: string): Promise<PeerProgress> {
    this.assertOpen();
    check(keyProblem(peer));
    return { ...(this.peers.get(peer) ?? NO_PROGRESS) };
  }

  async setPeer(peer: string, progress: PeerProgress): Promise<void> {
    this.assertOpen();
    check(keyProblem(peer) ?? progressProblem(progress));
    this.peers.set(peer, { received: progress.received, acknowledged: progress.acknowledged });
  }

  async getMeta(key: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    check(keyProblem(key));
    const value = this.meta.get(key);
    // new Uint8Array copies; a Buffer's slice() would hand out a view of the stored bytes.
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async setMeta(key: string, value: Uint8Array): Promise<void> {
    this.assertOpen();
    check(metaKeyProblem(key));
    if (!(value instanceof Uint8Array)) throw new StoreInputError(`meta value of ${key} must be bytes`);
    this.meta.set(key, new Uint8Array(value));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function contentKey(contentHash: Uint8Array): string {
  return Buffer.from(contentHash.buffer, contentHash.byteOffset, contentHash.byteLength).toString('latin1');
}

/** Path order of `records()`: by UTF-8 bytes, as LevelDB orders its keys. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function openMemoryStore(deviceId?: DeviceId): Promise<Store> {
  return Promise.resolve(new MemoryStore(deviceId));
}
