import { StoreCorruptError } from './errors.js';

/**
 * The LevelDB store's key layout: one table per one-byte prefix, so each table is one contiguous
 * key range and a table scan is a range scan.
 *
 *   'f' + UTF-8 path            -> the path's FileRecord (record-codec)
 *   'x' + UTF-8 path            -> the same record's scan entry (scan-entry-codec), same batch
 *   'c' + content hash + path   -> empty: the record holds that content (a non-empty file), same batch
 *   's' + 8-byte big-endian seq -> UTF-8 path whose record has that sequence
 *   'p' + UTF-8 peer id         -> that peer's progress (two 8-byte big-endian numbers)
 *   'm' + UTF-8 key             -> meta value (bytes as given)
 *
 * Big-endian sequence keys sort numerically, so the last key of 's' is the last sequence.
 */

export const TABLE = {
  file: 0x66, // 'f'
  scan: 0x78, // 'x'
  content: 0x63, // 'c'
  sequence: 0x73, // 's'
  peer: 0x70, // 'p'
  meta: 0x6d, // 'm'
} as const;

export type Table = (typeof TABLE)[keyof typeof TABLE];

const SEQUENCE_BYTES = 8;
const TWO_TO_32 = 2 ** 32;
// ignoreBOM keeps a leading U+FEFF: it is part of the name, not a marker.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function prefixed(table: Table, body: Uint8Array): Uint8Array {
  const key = new Uint8Array(1 + body.length);
  key[0] = table;
  key.set(body, 1);
  return key;
}

function utf8(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

/** Bounds covering every key of `table` (for iterators: gte/lt). */
export function tableRange(table: Table): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: Uint8Array.of(table), lt: Uint8Array.of(table + 1) };
}

export function fileKey(path: string): Uint8Array {
  return prefixed(TABLE.file, utf8(path));
}

export function scanKey(path: string): Uint8Array {
  return prefixed(TABLE.scan, utf8(path));
}

/** The content table's key of `path` holding `contentHash`. */
export function contentKey(contentHash: Uint8Array, path: string): Uint8Array {
  const body = utf8(path);
  const key = new Uint8Array(1 + contentHash.length + body.length);
  key[0] = TABLE.content;
  key.set(contentHash, 1);
  key.set(body, 1 + contentHash.length);
  return key;
}

/** The content hash (`hashBytes` long) and path a content key names (see contentKey). */
export function contentOfKey(key: Uint8Array, hashBytes: number): { contentHash: Uint8Array; path: string } {
  return { contentHash: key.subarray(1, 1 + hashBytes), path: decodeUtf8(key.subarray(1 + hashBytes), 'a content key') };
}

/** Bounds covering the content keys of one content hash (0xFF never occurs in UTF-8). */
export function contentRange(contentHash: Uint8Array): { gte: Uint8Array; lt: Uint8Array } {
  const gte = prefixed(TABLE.content, contentHash);
  const lt = new Uint8Array(gte.length + 1);
  lt.set(gte);
  lt[gte.length] = 0xff;
  return { gte, lt };
}

/** The file key of a path held as UTF-8 bytes (a sequence entry's value). */
export function fileKeyOfUtf8(path: Uint8Array): Uint8Array {
  return prefixed(TABLE.file, path);
}

export function peerKey(peer: string): Uint8Array {
  return prefixed(TABLE.peer, utf8(peer));
}

export function metaKey(key: string): Uint8Array {
  return prefixed(TABLE.meta, utf8(key));
}

export function sequenceKey(sequence: number): Uint8Array {
  const key = new Uint8Array(1 + SEQUENCE_BYTES);
  key[0] = TABLE.sequence;
  writeUint64(key, 1, sequence);
  return key;
}

export function sequenceOfKey(key: Uint8Array): number {
  if (key.length !== 1 + SEQUENCE_BYTES || key[0] !== TABLE.sequence) throw new StoreCorruptError('corrupt index: malformed sequence key');
  return readUint64(key, 1, 'a sequence key');
}

/** A big-endian 64-bit number that must be a safe integer (what the store writes). */
export function readUint64(bytes: Uint8Array, offset: number, what: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const value = view.getUint32(offset) * TWO_TO_32 + view.getUint32(offset + 4);
  if (!Number.isSafeInteger(value)) throw new StoreCorruptError(`corrupt index: ${what} beyond 2^53`);
  return value;
}

export function writeUint64(bytes: Uint8Array, offset: number, value: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(offset, Math.floor(value / TWO_TO_32));
  view.setUint32(offset + 4, value >>> 0);
}

/** Text stored as UTF-8 (a key's body or a sequence entry's path); invalid UTF-8 is corruption. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch (error) {
    throw new StoreCorruptError(`corrupt index: ${what} is not UTF-8`, { cause: error });
  }
}
