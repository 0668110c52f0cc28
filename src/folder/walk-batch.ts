import type { EntryType } from '../store/types.js';
import type { WalkEntry } from './walker.js';

/**
 * The messages of a walk on a worker thread (see WorkerWalk), and the packed form of its entries:
 * the paths in one string, the numbers in one typed array, both moved to the scan's thread without
 * a copy. Structured cloning of an object per entry would cost the scan's thread about as much
 * as the lstat calls it moves away.
 */

/** Worker to scan: entries found, a path reported, the end of the walk, or its failure. */
export type WalkWorkerMessage =
  | { readonly kind: 'entries'; readonly batch: PackedBatch }
  | { readonly kind: 'unreadable' | 'skipped'; readonly path: string; readonly message: string }
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly message: string };

/** Scan to worker: one batch of entries was taken (the worker keeps a bounded number in flight). */
export const ACK = 'ack';

/** What the worker is given when it starts. */
export interface WalkWorkerData {
  readonly root: string;
  readonly scopes: readonly string[];
  /** The scan's ignore rules (the text of `.meshignore` it read). */
  readonly rulesText: string;
}

export interface PackedBatch {
  /** The entries' paths joined by NUL (which no path holds). */
  readonly paths: string;
  readonly types: Uint8Array;
  /** Size, mtime (ns), inode and mode of each entry, in that order. */
  readonly numbers: BigInt64Array;
}

const TYPES: readonly EntryType[] = ['file', 'directory', 'symlink'];
const FIELDS = 4;
const SEPARATOR = '\0';

/**
 * Packs entries as they are found, so each entry's lstat result dies young (an array of entries
 * held until a batch is full would outlive a young-generation collection and be promoted).
 */
export class BatchPacker {
  private paths: string[] = [];
  private types: Uint8Array;
  private numbers: BigInt64Array;

  constructor(readonly capacity: number) {
    this.types = new Uint8Array(capacity);
    this.numbers = new BigInt64Array(capacity * FIELDS);
  }

  get length(): number {
    return this.paths.length;
  }

  get full(): boolean {
    return this.paths.length >= this.capacity;
  }

  add(entry: WalkEntry): void {
    const index = this.paths.length;
    if (index >= this.capacity) throw new RangeError('batch is full');
    this.paths.push(entry.path);
    this.types[index] = TYPES.indexOf(entry.type);
    const at = index * FIELDS;
    this.numbers[at] = entry.stats.size;
    this.numbers[at + 1] = entry.stats.mtimeNs;
    // Inodes are unsigned 64-bit: stored as their bit pattern, read back with BigInt.asUintN.
    this.numbers[at + 2] = BigInt.asIntN(64, entry.stats.ino);
    this.numbers[at + 3] = entry.stats.mode;
  }

  /** The entries added since the last take(), packed; the packer starts a new batch. */
  take(): PackedBatch {
    const length = this.paths.length;
    const batch = { paths: this.paths.join(SEPARATOR), types: this.types.slice(0, length), numbers: this.numbers.slice(0, length * FIELDS) };
    this.paths = [];
    return batch;
  }
}

/** The buffers of a packed batch, to transfer rather than copy. */
export function transferables(batch: PackedBatch): ArrayBuffer[] {
  return [batch.types.buffer as ArrayBuffer, batch.numbers.buffer as ArrayBuffer];
}

export function unpackBatch(batch: PackedBatch): WalkEntry[] {
  const paths = batch.paths.split(SEPARATOR);
  if (paths.length !== batch.types.length || batch.numbers.length !== paths.length * FIELDS) {
    throw new Error('walk worker sent a malformed batch');
  }
  return paths.map((path, index) => {
    const at = index * FIELDS;
    const type = TYPES[batch.types[index]];
    if (type === undefined) throw new Error(`walk worker sent entry type ${batch.types[index]}`);
    const { numbers } = batch;
    return { path, type, stats: { size: numbers[at], mtimeNs: numbers[at + 1], ino: BigInt.asUintN(64, numbers[at + 2]), mode: numbers[at + 3] } };
  });
}
