import type { EntryType, ScanEntry } from '../store/types.js';

/** What a scan keeps of a record while it walks (see KnownEntries). */
export type KnownScanEntry = Omit<ScanEntry, 'path'>;

const INITIAL_CAPACITY = 1024;
const TYPES: readonly EntryType[] = ['file', 'directory', 'symlink'];
const DELETED = 0x80;

/**
 * The store's scan entries in a scan's scope, held while it walks: a path maps to a slot in typed
 * arrays, about 100 bytes an entry where an object each took 220 (a rescan of 100,000 files holds
 * them all). take() hands an entry out once, as the walk finds its path; what is never taken was
 * not seen on disk.
 */
export class KnownEntries {
  private readonly slots = new Map<string, number>();
  private used = 0;
  private sizes = new Float64Array(INITIAL_CAPACITY);
  private mtimes = new BigInt64Array(INITIAL_CAPACITY);
  private inodes = new BigUint64Array(INITIAL_CAPACITY);
  private modes = new Uint16Array(INITIAL_CAPACITY);
  private flags = new Uint8Array(INITIAL_CAPACITY);

  /** Entries not yet taken. */
  get size(): number {
    return this.slots.size;
  }

  add(entry: ScanEntry): void {
    if (this.used === this.sizes.length) this.grow();
    const slot = this.used++;
    this.slots.set(entry.path, slot);
    this.sizes[slot] = entry.size;
    this.mtimes[slot] = entry.mtimeNs;
    this.inodes[slot] = entry.inode;
    this.modes[slot] = entry.mode;
    this.flags[slot] = TYPES.indexOf(entry.type) | (entry.deleted ? DELETED : 0);
  }

  /** The entry of `path`, removed from those not yet taken; undefined if none. */
  take(path: string): KnownScanEntry | undefined {
    const slot = this.slots.get(path);
    if (slot === undefined) return undefined;
    this.slots.delete(path);
    return this.entryAt(slot);
  }

  /** The entries never taken. */
  *untaken(): Generator<[string, KnownScanEntry]> {
    for (const [path, slot] of this.slots) yield [path, this.entryAt(slot)];
  }

  clear(): void {
    this.slots.clear();
    this.used = 0;
  }

  private entryAt(slot: number): KnownScanEntry {
    const flags = this.flags[slot];
    return {
      type: TYPES[flags & ~DELETED],
      deleted: (flags & DELETED) !== 0,
      size: this.sizes[slot],
      mtimeNs: this.mtimes[slot],
      inode: this.inodes[slot],
      mode: this.modes[slot],
    };
  }

  private grow(): void {
    const capacity = this.sizes.length * 2;
    const grown = <T extends Float64Array | BigInt64Array | BigUint64Array | Uint16Array | Uint8Array>(array: T, make: (length: number) => T): T => {
      const next = make(capacity);
      next.set(array as never);
      return next;
    };
    this.sizes = grown(this.sizes, (n) => new Float64Array(n));
    this.mtimes = grown(this.mtimes, (n) => new BigInt64Array(n));
    this.inodes = grown(this.inodes, (n) => new BigUint64Array(n));
    this.modes = grown(this.modes, (n) => new Uint16Array(n));
    this.flags = grown(this.flags, (n) => new Uint8Array(n));
  }
}
