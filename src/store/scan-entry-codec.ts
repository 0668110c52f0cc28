import { StoreCorruptError } from './errors.js';
import { CONTENT_HASH_BYTES } from './store-input.js';
import type { EntryType, FileRecord, ScanEntry } from './types.js';

/**
 * The LevelDB store's scan table value: a fixed layout read with a DataView, no protobuf.
 *
 *   0  type (0 file, 1 directory, 2 symlink)     1 byte
 *   1  deleted (0 or 1)                          1 byte
 *   2  mode                                      2 bytes
 *   4  size                                      8 bytes (below 2^53)
 *   12 mtimeNs                                   8 bytes, signed
 *   20 inode                                     8 bytes
 *   28 content hash length (0 or 32)             1 byte
 *   29 content hash
 *
 * All numbers big-endian. The content hash is kept on disk but not decoded: a rescan does not need
 * it, and a typed array per entry would be most of its allocations.
 */
const HEADER_BYTES = 29;
const TYPES: readonly EntryType[] = ['file', 'directory', 'symlink'];
const TWO_TO_32 = 2 ** 32;

export function encodeScanEntry(record: Pick<FileRecord, keyof ScanEntry | 'contentHash'>): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES + record.contentHash.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, TYPES.indexOf(record.type));
  view.setUint8(1, record.deleted ? 1 : 0);
  view.setUint16(2, record.mode);
  view.setUint32(4, Math.floor(record.size / TWO_TO_32));
  view.setUint32(8, record.size >>> 0);
  view.setBigInt64(12, record.mtimeNs);
  view.setBigUint64(20, record.inode);
  view.setUint8(28, record.contentHash.length);
  bytes.set(record.contentHash, HEADER_BYTES);
  return bytes;
}

export function decodeScanEntry(path: string, bytes: Uint8Array): ScanEntry {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (what: string) => new StoreCorruptError(`corrupt index: the scan entry of ${JSON.stringify(path)} ${what}`);
  if (bytes.length < HEADER_BYTES) throw corrupt(`is ${bytes.length} bytes`);
  const type = TYPES[view.getUint8(0)];
  if (type === undefined) throw corrupt(`has type ${view.getUint8(0)}`);
  const deleted = view.getUint8(1);
  if (deleted > 1) throw corrupt(`has deleted flag ${deleted}`);
  const size = view.getUint32(4) * TWO_TO_32 + view.getUint32(8);
  if (!Number.isSafeInteger(size)) throw corrupt('has a size beyond 2^53');
  const hashLength = view.getUint8(28);
  if (bytes.length !== HEADER_BYTES + hashLength) throw corrupt(`is ${bytes.length} bytes with a ${hashLength}-byte content hash`);
  return {
    path,
    type,
    deleted: deleted === 1,
    mode: view.getUint16(2),
    size,
    mtimeNs: view.getBigInt64(12),
    inode: view.getBigUint64(20),
  };
}

export function scanEntryOf(record: FileRecord): ScanEntry {
  const { path, type, deleted, size, mtimeNs, mode, inode } = record;
  return { path, type, deleted, size, mtimeNs, mode, inode };
}

/**
 * The content hash of a stored scan entry when its record holds content (holdsContent: a
 * non-empty file), else undefined: what the content table lists the path under.
 */
export function contentOfScanEntry(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== HEADER_BYTES + CONTENT_HASH_BYTES || bytes[28] !== CONTENT_HASH_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const empty = view.getUint32(4) === 0 && view.getUint32(8) === 0;
  if (bytes[0] !== TYPES.indexOf('file') || bytes[1] !== 0 || empty) return undefined;
  return bytes.subarray(HEADER_BYTES);
}
