import { hash } from 'node:crypto';
import { symlinkContentHash } from '../folder/hasher.js';
import { isAlwaysIgnored } from '../folder/ignore.js';
import { relativePathProblem } from '../folder/paths.js';
import { portableProblem } from '../store/store-input.js';
import { BLOCK_HASH_BYTES, BLOCK_HASH_LENGTH, type EntryType, type FileRecord } from '../store/types.js';
import { DEVICE_ID_BYTES, MAX_VECTOR_DEVICES, vectorProblem, type Counter, type VersionVector } from '../store/version-vector.js';
import { MAX_SYMLINK_TARGET_BYTES, MAX_WIRE_BLOCKS } from './constants.js';
import { ProtocolError, UnsendableRecordError } from './errors.js';
import { EntryType as WireType, type Counter as WireCounter, type WireRecord } from './messages.js';

/**
 * A record as a peer announced it: a FileRecord without the inode, which only means something on
 * the machine that scanned the file. `sequence` is the sender's sequence, not ours. The type has
 * no inode at all (rather than a 0n stand-in) so that a remote record can never be committed as if
 * it described a local file: whoever applies it supplies the inode of what it wrote.
 */
export type RemoteRecord = Omit<FileRecord, 'inode'>;

export const CONTENT_HASH_BYTES = 32;
const MAX_MODE = 0o7777;

const TO_WIRE: Readonly<Record<EntryType, WireType>> = {
  file: WireType.FILE,
  directory: WireType.DIRECTORY,
  symlink: WireType.SYMLINK,
};
const FROM_WIRE: ReadonlyMap<WireType, EntryType> = new Map(Object.entries(TO_WIRE).map(([type, wire]) => [wire, type as EntryType]));

/** One-shot SHA-256 (a third of createHash's cost: checked for every record sent and received). */
function sha256(bytes: Uint8Array): Buffer {
  return hash('sha256', bytes, 'buffer');
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Why `record` may not travel between peers (nor be acted on when received), or undefined. The one
 * check of a peer's record: fromWire and toWire apply it, and so does the applier (src/node) before
 * deciding anything. The store's own rules (a record it would accept, inode aside), plus what a
 * peer must never be able to send: a path that could leave the folder or is mesh's own (`.mesh`,
 * temp files), more block hashes than the wire allows, fields that contradict each other (block
 * hashes that do not cover the size or do not hash to the content hash, a tombstone with content,
 * a symlink whose hash is not its target's), an empty version.
 */
export function remoteRecordProblem(record: RemoteRecord): string | undefined {
  const stored = portableProblem(record);
  if (stored !== undefined) return stored;
  // The message naming the record is built only when something is wrong (this runs per record).
  const problem = recordContentProblem(record);
  return problem === undefined ? undefined : `record ${JSON.stringify(record.path)}: ${problem}`;
}

function recordContentProblem(record: RemoteRecord): string | undefined {
  const path = relativePathProblem(record.path);
  if (path !== undefined) return `path ${path}`;
  if (isAlwaysIgnored(record.path)) return `the path is mesh's own (state or temp file), never synced`;
  if (!Number.isSafeInteger(record.sequence) || record.sequence < 1) return `bad sequence ${record.sequence}`;
  if (record.version.length === 0) return `empty version`;
  if (record.blockHashes.length > MAX_WIRE_BLOCKS * BLOCK_HASH_BYTES) return `more than ${MAX_WIRE_BLOCKS} block hashes`;
  if (Buffer.byteLength(record.symlinkTarget) > MAX_SYMLINK_TARGET_BYTES) return `symlink target longer than ${MAX_SYMLINK_TARGET_BYTES} bytes`;
  if (record.symlinkTarget.includes('\0')) return `symlink target contains NUL`;
  const hasContent = record.blockHashes.length > 0 || record.contentHash.length > 0 || record.symlinkTarget !== '';
  if (record.deleted) {
    if (hasContent || record.size !== 0) return `a tombstone has no size, hashes or target`;
    return undefined;
  }
  switch (record.type) {
    case 'file': {
      if (record.contentHash.length !== CONTENT_HASH_BYTES) return `a file needs a ${CONTENT_HASH_BYTES}-byte content hash`;
      if (record.symlinkTarget !== '') return `a file has no symlink target`;
      const blocks = Math.ceil(record.size / BLOCK_HASH_LENGTH);
      if (record.blockHashes.length !== blocks * BLOCK_HASH_BYTES) {
        return `${record.blockHashes.length / BLOCK_HASH_BYTES} block hashes for ${record.size} bytes (${blocks} expected)`;
      }
      if (!equalBytes(record.contentHash, sha256(record.blockHashes))) {
        return `the content hash is not the hash of the block list`;
      }
      return undefined;
    }
    case 'directory':
      if (hasContent || record.size !== 0) return `a directory has no size, hashes or target`;
      return undefined;
    case 'symlink':
      if (record.size !== 0 || record.blockHashes.length !== 0) return `a symlink has no size or block hashes`;
      if (record.symlinkTarget === '') return `a symlink needs a target (it is empty)`;
      if (!equalBytes(record.contentHash, symlinkContentHash(record.symlinkTarget))) return `the content hash is not the hash of the symlink target`;
      return undefined;
  }
}

// The generated codec types its bytes as Uint8Array<ArrayBuffer>; it only reads them.
function wireBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

function deviceBytes(device: string): Uint8Array<ArrayBuffer> {
  return wireBytes(Buffer.from(device, 'hex'));
}

/** The vector as the wire carries it (checked by the caller). */
export function vectorToWire(vector: VersionVector): WireCounter[] {
  return vector.map(({ device, value }) => ({ device: deviceBytes(device), value }));
}

/**
 * A local record as peers receive it: the inode dropped, the rest checked first, so this device
 * never announces what a peer would (rightly) refuse. Throws UnsendableRecordError.
 */
export function toWire(record: RemoteRecord): WireRecord {
  const problem = remoteRecordProblem(record);
  if (problem !== undefined) throw new UnsendableRecordError(`cannot announce ${problem}`);
  return {
    path: record.path,
    type: TO_WIRE[record.type],
    size: record.size,
    // As its unsigned bit pattern, as the store does: protons-runtime drops a carry when it splits
    // some negative bigints below -2^53 into 32-bit halves; the positive path keeps all 64 bits.
    mtimeNs: BigInt.asUintN(64, record.mtimeNs),
    mode: record.mode,
    blockHashes: wireBytes(record.blockHashes),
    contentHash: wireBytes(record.contentHash),
    symlinkTarget: record.symlinkTarget,
    version: vectorToWire(record.version),
    deleted: record.deleted,
    modifiedBy: deviceBytes(record.modifiedBy),
    sequence: record.sequence,
  };
}

/** Varints read as numbers lose precision past 2^53: such a value is never taken as exact. */
function safeNumber(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new ProtocolError(`${what} ${value} is not a whole number below 2^53`);
  return value;
}

function deviceId(bytes: Uint8Array, what: string): string {
  if (bytes.length !== DEVICE_ID_BYTES) throw new ProtocolError(`${what} is ${bytes.length} bytes, not ${DEVICE_ID_BYTES}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A vector from the wire, checked: device ids of 8 bytes, sorted, distinct, no zero, at most 1024. */
export function vectorFromWire(counters: readonly WireCounter[]): VersionVector {
  if (counters.length > MAX_VECTOR_DEVICES) throw new ProtocolError(`version vector of ${counters.length} devices`);
  const vector = counters.map((c): Counter => ({ device: deviceId(c.device, 'a version device'), value: safeNumber(c.value, 'a counter') }));
  const problem = vectorProblem(vector);
  if (problem !== undefined) throw new ProtocolError(problem);
  return vector;
}

/**
 * A record a peer sent, checked field by field and as a whole (remoteRecordProblem). Every problem
 * is a ProtocolError. The byte fields are copied: the decoder hands out views of the whole message.
 */
export function fromWire(wire: WireRecord): RemoteRecord {
  const type = FROM_WIRE.get(wire.type);
  if (type === undefined) throw new ProtocolError(`record with unknown type ${String(wire.type)}`);
  const record: RemoteRecord = {
    path: wire.path,
    type,
    size: safeNumber(wire.size, 'size'),
    mtimeNs: BigInt.asIntN(64, wire.mtimeNs),
    mode: wire.mode,
    blockHashes: new Uint8Array(wire.blockHashes),
    contentHash: new Uint8Array(wire.contentHash),
    symlinkTarget: wire.symlinkTarget,
    version: vectorFromWire(wire.version),
    deleted: wire.deleted,
    modifiedBy: deviceId(wire.modifiedBy, 'modifiedBy'),
    sequence: safeNumber(wire.sequence, 'sequence'),
  };
  if (!Number.isInteger(record.mode) || record.mode < 0 || record.mode > MAX_MODE) throw new ProtocolError(`record mode ${record.mode} is not permission bits`);
  const problem = remoteRecordProblem(record);
  if (problem !== undefined) throw new ProtocolError(problem);
  return record;
}
