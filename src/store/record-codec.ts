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
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

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
    size: BigInt(record.size),
    // protons-runtime 7 miscodes a negative int64 whose low 32 bits are zero and that is below
    // -2^53 (its LongBits.fromBigInt drops the carry). The same value as its unsigned 64-bit bit
    // pattern takes the correct path and gives the standard int64 bytes.
    mtimeNs: BigInt.asUintN(64, record.mtimeNs),
    mode: record.mode,
    inode: record.inode,
    blockHashes: wireBytes(record.blockHashes),
    contentHash: wireBytes(record.contentHash),
    symlinkTarget: record.symlinkTarget,
    version: record.version.map(({ device, value }) => ({ device: deviceBytes(device), value: BigInt(value) })),
    deleted: record.deleted,
    modifiedBy: deviceBytes(record.modifiedBy),
    sequence: BigInt(record.sequence),
  });
}

function corrupt(message: string, cause?: unknown): StoreCorruptError {
  return new StoreCorruptError(`corrupt record: ${message}`, cause === undefined ? undefined : { cause });
}

function safeNumber(value: bigint, what: string): number {
  if (value > MAX_SAFE) throw corrupt(`${what} ${value} is beyond 2^53`);
  return Number(value);
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
    mtimeNs: wire.mtimeNs,
    mode: wire.mode,
    inode: wire.inode,
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
