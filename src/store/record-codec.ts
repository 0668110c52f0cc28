import { StoreCorruptError, StoreInputError } from './errors.js';
import { EntryType as WireType, FileRecord as WireRecord } from './file-record.js';
import { recordProblem } from './store-input.js';
import type { EntryType, FileRecord } from './types.js';
import { DEVICE_ID_BYTES, MAX_VECTOR_DEVICES, type Counter } from './version-vector.js';

/**
 * A FileRecord as stored bytes (the protobuf message in file-record.proto). Encoding refuses a
 * record that would not read back equal; decoding trusts nothing and throws StoreCorruptError.
 */

const TO_WIRE: Readonly<Record<EntryType, WireType>> = {
  file: WireType.FILE,
  directory: WireType.DIRECTORY,
  symlink: WireType.SYMLINK,
};
const FROM_WIRE: ReadonlyMap<WireType, EntryType> = new Map(Object.entries(TO_WIRE).map(([type, wire]) => [wire, type as EntryType]));

// The generated codec types its bytes as Uint8Array<ArrayBuffer>; it only reads them, so any
// Uint8Array will do.
function wireBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

function deviceBytes(device: string): Uint8Array<ArrayBuffer> {
  return wireBytes(Buffer.from(device, 'hex'));
}

export function encodeRecord(record: FileRecord): Uint8Array {
  const problem = recordProblem(record);
  if (problem !== undefined) throw new StoreInputError(problem);
  return WireRecord.encode({
    path: record.path,
    type: TO_WIRE[record.type],
    size: record.size,
    // As its unsigned bit pattern: protons-runtime drops a carry when it splits some negative
    // bigints below -2^53 (e.g. -2^63) into 32-bit halves; the positive path keeps all 64 bits.
    mtimeNs: BigInt.asUintN(64, record.mtimeNs),
    mode: record.mode,
    inode: record.inode,
    blockHashes: wireBytes(record.blockHashes),
    contentHash: wireBytes(record.contentHash),
    symlinkTarget: record.symlinkTarget,
    version: record.version.map(({ device, value }) => ({ device: deviceBytes(device), value })),
    deleted: record.deleted,
    modifiedBy: deviceBytes(record.modifiedBy),
    sequence: record.sequence,
  });
}

function corrupt(message: string, cause?: unknown): StoreCorruptError {
  return new StoreCorruptError(`corrupt record: ${message}`, cause === undefined ? undefined : { cause });
}

/** Varints read as numbers lose precision past 2^53, so such a value is never taken as exact. */
function safeNumber(value: number, what: string): number {
  if (!Number.isSafeInteger(value)) throw corrupt(`${what} ${value} is beyond 2^53`);
  return value;
}

function deviceId(bytes: Uint8Array, what: string): string {
  if (bytes.length !== DEVICE_ID_BYTES) throw corrupt(`${what} is ${bytes.length} bytes, not ${DEVICE_ID_BYTES}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function decodeRecord(bytes: Uint8Array): FileRecord {
  let wire: WireRecord;
  try {
    wire = WireRecord.decode(bytes, { limits: { version: MAX_VECTOR_DEVICES } });
  } catch (error) {
    throw corrupt(error instanceof Error ? error.message : String(error), error);
  }
  const type = FROM_WIRE.get(wire.type);
  if (type === undefined) throw corrupt(`unknown type ${wire.type}`);
  const version = wire.version.map(
    (counter): Counter => ({ device: deviceId(counter.device, 'a version device'), value: safeNumber(counter.value, 'a counter') }),
  );
  const record: FileRecord = {
    path: wire.path,
    type,
    size: safeNumber(wire.size, 'size'),
    // The 64 bits as they were written, whichever sign the runtime gives fixed fields.
    mtimeNs: BigInt.asIntN(64, wire.mtimeNs),
    mode: wire.mode,
    inode: BigInt.asUintN(64, wire.inode),
    // Copies: the decoder hands out views of the whole value.
    blockHashes: new Uint8Array(wire.blockHashes),
    contentHash: new Uint8Array(wire.contentHash),
    symlinkTarget: wire.symlinkTarget,
    version,
    deleted: wire.deleted,
    modifiedBy: deviceId(wire.modifiedBy, 'modifiedBy'),
    sequence: safeNumber(wire.sequence, 'sequence'),
  };
  const problem = recordProblem(record);
  if (problem !== undefined) throw corrupt(problem);
  return record;
}

/** Protobuf wire types: the low three bits of a field's tag. */
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;
/** FileRecord's `sequence` field (file-record.proto). */
const SEQUENCE_FIELD = 13;
/** A varint of a safe integer takes at most 8 bytes (7 bits each, 53 bits). */
const MAX_SAFE_VARINT_BYTES = 8;

/**
 * The sequence of a stored record, its other fields skipped, not decoded: what a commit needs of
 * the record a path had, and what tells whether a path changed since it was read (a full decode
 * costs ~5 µs, and an index exchange of 100,000 records asks this twice per path). Throws
 * StoreCorruptError when the message cannot be walked or holds no valid sequence.
 */
export function decodeSequence(bytes: Uint8Array): number {
  let position = 0;
  let sequence = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let k = 0; k < MAX_SAFE_VARINT_BYTES; k++) {
      if (position >= bytes.length) throw corrupt('a varint runs past the end');
      const byte = bytes[position++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw corrupt('a varint is longer than a safe integer');
  };
  while (position < bytes.length) {
    const tag = varint();
    const wireType = tag % 8;
    if (Math.floor(tag / 8) === SEQUENCE_FIELD && wireType === WIRE_VARINT) {
      sequence = varint();
    } else if (wireType === WIRE_VARINT) {
      varint();
    } else if (wireType === WIRE_FIXED64) {
      position += 8;
    } else if (wireType === WIRE_LENGTH_DELIMITED) {
      const length = varint(); // read first: `position += varint()` would add to the old position
      position += length;
    } else if (wireType === WIRE_FIXED32) {
      position += 4;
    } else {
      throw corrupt(`unknown wire type ${wireType}`);
    }
  }
  if (position !== bytes.length) throw corrupt('a field runs past the end');
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw corrupt(`bad sequence ${sequence}`);
  return sequence;
}
