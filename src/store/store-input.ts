import { BLOCK_HASH_BYTES, type EntryType, type FileChange, type FileRecord, type PeerProgress } from './types.js';
import { isDeviceId, vectorProblem } from './version-vector.js';

/**
 * What a store accepts from its caller. Both implementations run these same checks, so a change the
 * memory twin takes is one the LevelDB store can write and read back equal; and the LevelDB store
 * runs them again on what it reads, so a damaged record is caught before anyone acts on it.
 */

/** Meta key under which a store keeps its device id (8 bytes); it cannot be set from outside. */
export const DEVICE_ID_META_KEY = 'device-id';

const ENTRY_TYPES: readonly EntryType[] = ['file', 'directory', 'symlink'];
export const CONTENT_HASH_BYTES = 32;
const MAX_MODE = 0o7777;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
/** A lone surrogate: such a string has no UTF-8 form, so it would not survive a round trip. */
const LONE_SURROGATE = /\p{Cs}/u;

function isText(value: unknown): value is string {
  return typeof value === 'string' && !LONE_SURROGATE.test(value);
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function isBigIntIn(value: unknown, min: bigint, max: bigint): value is bigint {
  return typeof value === 'bigint' && value >= min && value <= max;
}

/** Why `change` cannot be stored as given, or undefined if it can. */
export function changeProblem(change: FileChange): string | undefined {
  if (!isBigIntIn(change.inode, 0n, UINT64_MAX)) return `${where(change)}: inode must be an unsigned 64-bit bigint`;
  return portableProblem(change);
}

/**
 * Why `change` cannot be stored, its inode aside (a peer's record has none), or undefined. Checked
 * for every record read, written, sent and received: the message naming the record is built only
 * when something is wrong.
 */
export function portableProblem(change: Omit<FileChange, 'inode'>): string | undefined {
  if (!isText(change.path) || change.path === '') return `${where(change)}: path must be a non-empty Unicode string`;
  if (!ENTRY_TYPES.includes(change.type)) return `${where(change)}: unknown type ${String(change.type)}`;
  if (!isCount(change.size)) return `${where(change)}: size ${change.size} is not a whole number of bytes below 2^53`;
  if (!isBigIntIn(change.mtimeNs, INT64_MIN, INT64_MAX)) return `${where(change)}: mtimeNs must be a 64-bit bigint`;
  if (!Number.isInteger(change.mode) || change.mode < 0 || change.mode > MAX_MODE) return `${where(change)}: mode ${change.mode} is not permission bits`;
  if (!(change.blockHashes instanceof Uint8Array) || change.blockHashes.length % BLOCK_HASH_BYTES !== 0) {
    return `${where(change)}: block hashes must be ${BLOCK_HASH_BYTES} bytes each`;
  }
  if (!(change.contentHash instanceof Uint8Array) || (change.contentHash.length !== 0 && change.contentHash.length !== CONTENT_HASH_BYTES)) {
    return `${where(change)}: content hash must be empty or ${CONTENT_HASH_BYTES} bytes`;
  }
  if (!isText(change.symlinkTarget)) return `${where(change)}: symlink target must be a Unicode string`;
  if (!Array.isArray(change.version)) return `${where(change)}: version must be a vector`;
  const vector = vectorProblem(change.version);
  if (vector !== undefined) return `${where(change)}: ${vector}`;
  if (typeof change.deleted !== 'boolean') return `${where(change)}: deleted must be a boolean`;
  if (!isDeviceId(change.modifiedBy)) return `${where(change)}: modifiedBy is not a device id`;
  return undefined;
}

/** How a problem message names the record: by its path, when that is text. */
function where(change: { readonly path: unknown }): string {
  return isText(change.path) ? `record ${JSON.stringify(change.path)}` : 'record';
}

/** Why `record` is not a stored record (a valid change with a sequence above zero), or undefined. */
export function recordProblem(record: FileRecord): string | undefined {
  const problem = changeProblem(record);
  if (problem !== undefined) return problem;
  if (!isCount(record.sequence) || record.sequence === 0) return `record ${JSON.stringify(record.path)}: bad sequence ${record.sequence}`;
  return undefined;
}

/**
 * The stored record of `change`: its own fields only, every array copied, so neither the caller's
 * later edits nor extra properties reach the store.
 */
export function recordOf(change: FileChange, sequence: number): FileRecord {
  return {
    path: change.path,
    type: change.type,
    size: change.size,
    mtimeNs: change.mtimeNs,
    mode: change.mode,
    inode: change.inode,
    // new Uint8Array copies (a Buffer's slice() would be a view) and drops any Buffer prototype.
    blockHashes: new Uint8Array(change.blockHashes),
    contentHash: new Uint8Array(change.contentHash),
    symlinkTarget: change.symlinkTarget,
    version: change.version.map(({ device, value }) => ({ device, value })),
    deleted: change.deleted,
    modifiedBy: change.modifiedBy,
    sequence,
  };
}

/**
 * Whether a record holds content another path could be built from: a non-empty file. Such
 * records, and only they, are listed by `Store.pathsWithContent`.
 */
export function holdsContent(record: Pick<FileRecord, 'type' | 'deleted' | 'size' | 'contentHash'>): boolean {
  return record.type === 'file' && !record.deleted && record.size > 0 && record.contentHash.length === CONTENT_HASH_BYTES;
}

/** Why a content lookup cannot be made, or undefined. */
export function contentLookupProblem(contentHash: Uint8Array, limit: number): string | undefined {
  if (!(contentHash instanceof Uint8Array)) return 'a content hash must be bytes';
  if (!Number.isSafeInteger(limit) || limit < 1) return `a lookup's limit must be a positive whole number, not ${limit}`;
  return undefined;
}

/** A copy of `record` for a caller, who may then change it freely. */
export function copyRecord(record: FileRecord): FileRecord {
  return recordOf(record, record.sequence);
}

/** Why `key` (a peer id or meta key) cannot name an entry: it must have a UTF-8 form. */
export function keyProblem(key: string): string | undefined {
  return isText(key) ? undefined : `key ${JSON.stringify(key)} is not a Unicode string`;
}

/** Why `sequence` is not a point to read since(): a whole number from 0. */
export function sequenceProblem(sequence: number): string | undefined {
  return isCount(sequence) ? undefined : `sequence ${sequence} is not a whole number from 0 below 2^53`;
}

/** Why `progress` cannot be stored, or undefined. */
export function progressProblem(progress: PeerProgress): string | undefined {
  if (!isCount(progress.received) || !isCount(progress.acknowledged)) {
    return `peer progress must be whole numbers below 2^53 (got ${progress.received}, ${progress.acknowledged})`;
  }
  return undefined;
}

/** Why `key` cannot be set through setMeta, or undefined. */
export function metaKeyProblem(key: string): string | undefined {
  if (key === DEVICE_ID_META_KEY) return `meta key ${DEVICE_ID_META_KEY} is the store's own: the device id is kept for the store's life`;
  return keyProblem(key);
}
