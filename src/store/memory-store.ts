import { randomBytes } from 'node:crypto';
import type { FileChange, FileRecord, PeerProgress, Store } from './types.js';
import type { DeviceId } from './version-vector.js';

const NO_PROGRESS: PeerProgress = { received: 0, acknowledged: 0 };

/** A fresh random device id (64 bits as 16 hex digits). */
export function newDeviceId(): DeviceId {
  return randomBytes(8).toString('hex');
}

/**
 * The in-memory twin of the LevelDB store: the same contract (the acceptance suite runs on both),
 * for tests that need no disk. Records are copied in and out, as a database would.
 */
export class MemoryStore implements Store {
  private readonly files = new Map<string, FileRecord>();
  private readonly bySequence = new Map<number, string>();
  private readonly peers = new Map<string, PeerProgress>();
  private readonly meta = new Map<string, Uint8Array>();
  private sequence = 0;
  private closed = false;

  constructor(readonly deviceId: DeviceId = newDeviceId()) {}

  get lastSequence(): number {
    return this.sequence;
  }

  private check(): void {
    if (this.closed) throw new Error('store is closed');
  }

  get(path: string): Promise<FileRecord | undefined> {
    this.check();
    const record = this.files.get(path);
    return Promise.resolve(record === undefined ? undefined : structuredClone(record));
  }

  commit(changes: readonly FileChange[]): Promise<FileRecord[]> {
    this.check();
    const stored: FileRecord[] = [];
    for (const change of changes) {
      const previous = this.files.get(change.path);
      if (previous !== undefined) this.bySequence.delete(previous.sequence);
      const record: FileRecord = { ...structuredClone(change), sequence: ++this.sequence };
      this.files.set(record.path, record);
      this.bySequence.set(record.sequence, record.path);
      stored.push(structuredClone(record));
    }
    return Promise.resolve(stored);
  }

  async *since(sequence: number): AsyncGenerator<FileRecord> {
    this.check();
    const sequences = [...this.bySequence.keys()].filter((s) => s > sequence).sort((a, b) => a - b);
    for (const s of sequences) {
      const path = this.bySequence.get(s);
      const record = path === undefined ? undefined : this.files.get(path);
      if (record !== undefined && record.sequence === s) yield structuredClone(record);
    }
  }

  async *records(): AsyncGenerator<FileRecord> {
    this.check();
    const paths = [...this.files.keys()].sort(comparePaths);
    for (const path of paths) {
      const record = this.files.get(path);
      if (record !== undefined) yield structuredClone(record);
    }
  }

  getPeer(peer: string): Promise<PeerProgress> {
    this.check();
    return Promise.resolve({ ...(this.peers.get(peer) ?? NO_PROGRESS) });
  }

  setPeer(peer: string, progress: PeerProgress): Promise<void> {
    this.check();
    this.peers.set(peer, { ...progress });
    return Promise.resolve();
  }

  getMeta(key: string): Promise<Uint8Array | undefined> {
    this.check();
    const value = this.meta.get(key);
    return Promise.resolve(value === undefined ? undefined : value.slice());
  }

  setMeta(key: string, value: Uint8Array): Promise<void> {
    this.check();
    this.meta.set(key, value.slice());
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** Path order of `records()`: by UTF-8 bytes, as LevelDB orders its keys. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function openMemoryStore(deviceId?: DeviceId): Promise<Store> {
  return Promise.resolve(new MemoryStore(deviceId));
}
