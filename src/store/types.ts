import type { DeviceId, VersionVector } from './version-vector.js';

export type EntryType = 'file' | 'directory' | 'symlink';

/**
 * What this device knows of one path: the version it has (or had, for a tombstone), and the
 * metadata that tells whether the disk still holds that version without reading it again.
 */
export interface FileRecord {
  /** Relative to the folder root, '/'-separated, Unicode NFC. */
  readonly path: string;
  readonly type: EntryType;
  /** Bytes (files); 0 for directories and symlinks. */
  readonly size: number;
  /** Modification time in nanoseconds since the epoch, as stat reported it. */
  readonly mtimeNs: bigint;
  /** Permission bits (mode & 0o7777). */
  readonly mode: number;
  /** Local only, for change and move detection: the inode number when last scanned. */
  readonly inode: bigint;
  /** SHA-256 of each BLOCK_HASH_LENGTH block of a file, concatenated (32 bytes each). */
  readonly blockHashes: Uint8Array;
  /**
   * Identity of the content: for a file, SHA-256 of its block hashes; for a symlink, SHA-256 of
   * its target; empty for a directory and for a tombstone.
   */
  readonly contentHash: Uint8Array;
  /** The link target of a symlink (recorded as is, never followed); '' otherwise. */
  readonly symlinkTarget: string;
  readonly version: VersionVector;
  /** A tombstone: the path was deleted in this version. */
  readonly deleted: boolean;
  /** The device that made this version. */
  readonly modifiedBy: DeviceId;
  /** This device's sequence number of the change that recorded this version (assigned by the store). */
  readonly sequence: number;
}

/**
 * What a scan needs of a record to tell whether the disk still holds it: the record without its
 * hashes, version and target. The LevelDB store keeps these in a table of their own, written in
 * the same batch as the records, so a rescan reads little and decodes no protobuf.
 */
export type ScanEntry = Pick<FileRecord, 'path' | 'type' | 'deleted' | 'size' | 'mtimeNs' | 'mode' | 'inode'>;

/** A non-empty file's content hash and path, as the store's content table lists them (see `holdsContent`). */
export interface ContentEntry {
  readonly contentHash: Uint8Array;
  readonly path: string;
}

/** A record to commit: the store assigns its sequence. */
export type FileChange = Omit<FileRecord, 'sequence'>;

/** Per-peer progress of the index exchange. */
export interface PeerProgress {
  /** The highest of their sequence numbers whose record we hold. */
  readonly received: number;
  /** The highest of our sequence numbers they have acknowledged. */
  readonly acknowledged: number;
}

/**
 * The durable state of one folder. Every commit is atomic: after a crash a record and its sequence
 * entry are both there or both not. Two implementations pass one acceptance suite: LevelDB
 * (`openLevelStore`, in `<dir>/.mesh/`) and memory (`openMemoryStore`, for tests).
 */
export interface Store {
  /** This device's id, created with the store and kept for its life. */
  readonly deviceId: DeviceId;
  /** The sequence of the latest commit (0 when nothing was ever committed). */
  readonly lastSequence: number;
  get(path: string): Promise<FileRecord | undefined>;
  /** The records of `paths`, in their order (undefined where none): one read for many paths. */
  getMany(paths: readonly string[]): Promise<(FileRecord | undefined)[]>;
  /**
   * The sequence of each path's record, in their order (undefined where none): whether a path was
   * recorded again since its record was read, without reading the whole records.
   */
  sequencesOf(paths: readonly string[]): Promise<(number | undefined)[]>;
  /**
   * Records the changes in one atomic batch, each with the next sequence number in order; a path's
   * previous sequence entry goes away. Returns the stored records.
   */
  commit(changes: readonly FileChange[]): Promise<FileRecord[]>;
  /** Records whose sequence is above `sequence`, in sequence order: what a peer has not seen. */
  since(sequence: number): AsyncIterable<FileRecord>;
  /**
   * Every record (tombstones included) in path order; with `subtree`, only the record at that path
   * and those under it (`subtree/...`), so a rescan of a few paths reads only what it needs.
   */
  records(subtree?: string): AsyncIterable<FileRecord>;
  /**
   * The scan entry of each record of `records(subtree)`, in the same order, a batch at a time (a
   * rescan reads every entry: one await per batch, not per entry).
   */
  scanEntries(subtree?: string): AsyncIterable<readonly ScanEntry[]>;
  /**
   * Paths whose record is a non-empty file with this content hash (see `holdsContent`), at most
   * `limit`, in path order: where else a pulled version already is, without reading every record.
   */
  pathsWithContent(contentHash: Uint8Array, limit: number): Promise<string[]>;
  /**
   * Every entry of `pathsWithContent`'s table, by content hash then path (UTF-8 bytes), a batch at
   * a time: where each content is, without decoding a record (a tenth of the time of `records()`).
   */
  contents(): AsyncIterable<readonly ContentEntry[]>;
  getPeer(peer: string): Promise<PeerProgress>;
  setPeer(peer: string, progress: PeerProgress): Promise<void>;
  getMeta(key: string): Promise<Uint8Array | undefined>;
  setMeta(key: string, value: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Files are hashed in fixed blocks of this length for block reuse and content identity. */
export const BLOCK_HASH_LENGTH = 128 * 1024;
export const BLOCK_HASH_BYTES = 32;
