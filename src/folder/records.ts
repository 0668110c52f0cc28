import type { BigIntStats } from 'node:fs';
import type { EntryType, FileChange, FileRecord } from '../store/types.js';
import { EMPTY_VECTOR, increment, type DeviceId } from '../store/version-vector.js';
import { symlinkContentHash, type FileHashes } from './hasher.js';

/**
 * How what is on disk becomes records: when an entry is unchanged, what a new version is, what a
 * tombstone is. Pure functions; the scanner decides when to call them.
 */

const NO_BYTES = new Uint8Array(0);

/** What the scanner keeps of a stored record while it walks: enough to decide, not the blocks. */
export interface KnownEntry {
  readonly type: EntryType;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly inode: bigint;
  readonly mode: number;
  readonly contentHash: Uint8Array;
  readonly deleted: boolean;
}

export function knownEntryOf(record: FileRecord): KnownEntry {
  const { type, size, mtimeNs, inode, mode, contentHash, deleted } = record;
  return { type, size, mtimeNs, inode, mode, contentHash, deleted };
}

/** What a scan uses of an entry's lstat: BigIntStats, or the same four fields sent by a walk on a worker thread. */
export type EntryStats = Pick<BigIntStats, 'size' | 'mtimeNs' | 'ino' | 'mode'>;

/** The type of an entry mesh syncs; undefined for FIFOs, sockets and devices (never synced). */
export function entryTypeOf(stats: BigIntStats): EntryType | undefined {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  return undefined;
}

export function permissionsOf(stats: EntryStats): number {
  return Number(stats.mode & 0o7777n);
}

/**
 * Whether the disk still holds the recorded version, judged by metadata alone (then the entry is
 * not read). A directory's mtime moves whenever an entry is added or removed inside it, which is
 * no change of the directory itself, so directories compare inode and permissions only.
 */
export function isUnchanged(known: Omit<KnownEntry, 'contentHash'>, type: EntryType, stats: EntryStats): boolean {
  if (known.deleted || known.type !== type || known.inode !== stats.ino || known.mode !== permissionsOf(stats)) return false;
  if (type === 'directory') return true;
  if (type === 'file' && known.size !== Number(stats.size)) return false;
  return known.mtimeNs === stats.mtimeNs;
}

/** An entry as read this scan: a file with its hashes, a symlink with its target, or a directory. */
export type Observation =
  | { readonly type: 'file'; readonly stats: EntryStats; readonly hashes: FileHashes }
  | { readonly type: 'symlink'; readonly stats: EntryStats; readonly target: string }
  | { readonly type: 'directory'; readonly stats: EntryStats };

/** What a scan does with a path: a new version (added or modified), or metadata only. */
export interface PlannedChange {
  readonly kind: 'added' | 'modified' | 'metadata';
  readonly change: FileChange;
}

/**
 * The change that records `observed` at `path`, or undefined if `previous` already says it all.
 * Same content (hash, type, target, permissions) with other metadata (a touch, a new inode) keeps
 * the version: re-recording it must not look like an edit to peers, or a mere touch on two
 * devices would become a conflict. Anything else is a new version made by this device.
 */
export function planChange(
  path: string,
  previous: FileRecord | undefined,
  observed: Observation,
  deviceId: DeviceId,
): PlannedChange | undefined {
  const content = contentOf(observed);
  const metadata = {
    size: observed.type === 'file' ? observed.hashes.size : 0,
    mtimeNs: observed.stats.mtimeNs,
    mode: permissionsOf(observed.stats),
    inode: observed.stats.ino,
  };
  if (previous !== undefined && !previous.deleted && sameContent(previous, observed.type, metadata.mode, content)) {
    if (previous.size === metadata.size && previous.mtimeNs === metadata.mtimeNs && previous.inode === metadata.inode) {
      return undefined;
    }
    return { kind: 'metadata', change: { ...changeOf(previous), ...metadata } };
  }
  return {
    kind: previous === undefined || previous.deleted ? 'added' : 'modified',
    change: {
      path,
      type: observed.type,
      ...metadata,
      ...content,
      version: increment(previous?.version ?? EMPTY_VECTOR, deviceId),
      deleted: false,
      modifiedBy: deviceId,
    },
  };
}

/** The tombstone recording that this device saw `previous` deleted. */
export function tombstoneOf(previous: FileRecord, deviceId: DeviceId): FileChange {
  return {
    ...changeOf(previous),
    size: 0,
    inode: 0n,
    blockHashes: NO_BYTES,
    contentHash: NO_BYTES,
    symlinkTarget: '',
    version: increment(previous.version, deviceId),
    deleted: true,
    modifiedBy: deviceId,
  };
}

interface Content {
  readonly blockHashes: Uint8Array;
  readonly contentHash: Uint8Array;
  readonly symlinkTarget: string;
}

function contentOf(observed: Observation): Content {
  switch (observed.type) {
    case 'file':
      return { blockHashes: observed.hashes.blockHashes, contentHash: observed.hashes.contentHash, symlinkTarget: '' };
    case 'symlink':
      return { blockHashes: NO_BYTES, contentHash: symlinkContentHash(observed.target), symlinkTarget: observed.target };
    case 'directory':
      return { blockHashes: NO_BYTES, contentHash: NO_BYTES, symlinkTarget: '' };
  }
}

function sameContent(previous: FileRecord, type: EntryType, mode: number, content: Content): boolean {
  return (
    previous.type === type &&
    previous.mode === mode &&
    previous.symlinkTarget === content.symlinkTarget &&
    Buffer.from(previous.contentHash).equals(content.contentHash)
  );
}

/** A stored record as a change to commit (the store assigns the sequence anew). */
function changeOf(record: FileRecord): FileChange {
  return {
    path: record.path,
    type: record.type,
    size: record.size,
    mtimeNs: record.mtimeNs,
    mode: record.mode,
    inode: record.inode,
    blockHashes: record.blockHashes,
    contentHash: record.contentHash,
    symlinkTarget: record.symlinkTarget,
    version: record.version,
    deleted: record.deleted,
    modifiedBy: record.modifiedBy,
  };
}
