import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StoreCorruptError, StoreInputError } from '../src/store/errors.js';
import { EntryType as WireType, FileRecord as WireRecord } from '../src/store/file-record.js';
import { decodeRecord, decodeSequence, encodeRecord } from '../src/store/record-codec.js';
import type { FileRecord } from '../src/store/types.js';
import { MAX_VECTOR_DEVICES } from '../src/store/version-vector.js';
import { changeArbitrary, DEVICE_A, DEVICE_B, INT64, safeCount, sampleChange } from './store-helpers.js';

const valid: FileRecord = { ...sampleChange('docs/a.txt'), sequence: 7 };
const validBytes = encodeRecord(valid);
const validWire = WireRecord.decode(validBytes);

/** The valid record's bytes with some fields replaced, as a damaged or foreign writer might leave them. */
function wireWith(fields: Partial<WireRecord>): Uint8Array {
  return WireRecord.encode({ ...validWire, ...fields });
}

const device = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));

/** Protobuf varint bytes of `value`, for numbers the generated encoder refuses to write. */
function varint(value: bigint): number[] {
  const out: number[] = [];
  for (let v = value; ; v >>= 7n) {
    if (v < 0x80n) return [...out, Number(v)];
    out.push(Number(v & 0x7fn) | 0x80);
  }
}

/** The valid record's bytes followed by more fields: for a scalar, the later value wins. */
function appended(...fields: number[]): Uint8Array {
  return Uint8Array.from([...validBytes, ...fields]);
}

const SIZE_TAG = (3 << 3) | 0;
const SEQUENCE_TAG = (13 << 3) | 0;
const VERSION_TAG = (10 << 3) | 2;

describe('record codec', () => {
  it('round-trips any valid record exactly', () => {
    fc.assert(
      fc.property(changeArbitrary, safeCount(1), (change, sequence) => {
        const record = { ...change, sequence };
        assert.deepEqual(decodeRecord(encodeRecord(record)), record);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every number field exactly at the edges: 2^31, 2^32, 2^53 - 1, 2^63, 2^64 - 1, -2^63', () => {
    const counts = [0, 1, 2 ** 31 - 1, 2 ** 31, 3 * 2 ** 30, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    const signed = [0n, -1n, 2n ** 31n, 2n ** 32n - 1n, -(2n ** 31n), -(2n ** 32n), -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)];
    const unsigned = [0n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n];
    for (const size of counts) assert.equal(decodeRecord(encodeRecord({ ...valid, size })).size, size, `size ${size}`);
    for (const sequence of counts.slice(1)) assert.equal(decodeRecord(encodeRecord({ ...valid, sequence })).sequence, sequence, `sequence ${sequence}`);
    for (const value of counts.slice(1)) {
      assert.equal(decodeRecord(encodeRecord({ ...valid, version: [{ device: DEVICE_A, value }] })).version[0].value, value, `counter ${value}`);
    }
    for (const mtimeNs of signed) assert.equal(decodeRecord(encodeRecord({ ...valid, mtimeNs })).mtimeNs, mtimeNs, `mtime ${mtimeNs}`);
    for (const inode of unsigned) assert.equal(decodeRecord(encodeRecord({ ...valid, inode })).inode, inode, `inode ${inode}`);
  });

  it('keeps every mtime, negative multiples of 2^32 included', () => {
    const negativeMultiples = fc.bigInt({ min: 1n, max: 2n ** 31n }).map((k) => -(k << 32n));
    fc.assert(
      fc.property(fc.oneof(negativeMultiples, fc.bigInt(INT64)), (mtimeNs) => {
        assert.equal(decodeRecord(encodeRecord({ ...valid, mtimeNs })).mtimeNs, mtimeNs);
      }),
    );
  });

  it('refuses to encode a record that would not read back equal', () => {
    const bad: Record<string, Partial<FileRecord>> = {
      'empty path': { path: '' },
      'lone surrogate in the path': { path: 'a\uD800b' },
      'negative size': { size: -1 },
      'size past 2^53': { size: 2 ** 53 },
      'fractional size': { size: 1.5 },
      'mtime past int64': { mtimeNs: 2n ** 63n },
      'negative inode': { inode: -1n },
      'mode beyond permission bits': { mode: 0o10000 },
      'block hashes not a multiple of 32': { blockHashes: new Uint8Array(33) },
      'content hash of 16 bytes': { contentHash: new Uint8Array(16) },
      'unsorted vector': {
        version: [
          { device: DEVICE_B, value: 1 },
          { device: DEVICE_A, value: 1 },
        ],
      },
      'zero counter': { version: [{ device: DEVICE_A, value: 0 }] },
      'bad modifiedBy': { modifiedBy: 'somebody' },
      'zero sequence': { sequence: 0 },
    };
    for (const [name, fields] of Object.entries(bad)) assert.throws(() => encodeRecord({ ...valid, ...fields }), StoreInputError, name);
  });

  it('rejects damaged bytes with StoreCorruptError', () => {
    const bad: Record<string, Uint8Array> = {
      empty: new Uint8Array(0),
      garbage: Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff),
      'unspecified type': wireWith({ type: WireType.ENTRY_TYPE_UNSPECIFIED }),
      // Type 9: a value the enum does not have.
      'unknown type': appended(0x10, 0x09),
      'size past 2^53': appended(SIZE_TAG, ...varint(2n ** 53n)),
      'size of 2^64 - 1': appended(SIZE_TAG, ...varint(2n ** 64n - 1n)),
      'sequence zero': wireWith({ sequence: 0 }),
      'sequence past 2^53': appended(SEQUENCE_TAG, ...varint(2n ** 53n)),
      'counter past 2^53': appended(VERSION_TAG, 19, 0x0a, 8, ...device(DEVICE_B), 0x10, ...varint(2n ** 53n)),
      'mode beyond permission bits': wireWith({ mode: 0o10000 }),
      'empty path': wireWith({ path: '' }),
      'content hash of 31 bytes': wireWith({ contentHash: new Uint8Array(31) }),
      'block hashes of 33 bytes': wireWith({ blockHashes: new Uint8Array(33) }),
      'modifiedBy of 9 bytes': wireWith({ modifiedBy: new Uint8Array(9) }),
      'missing modifiedBy': wireWith({ modifiedBy: new Uint8Array(0) }),
      'device of 7 bytes': wireWith({ version: [{ device: new Uint8Array(7), value: 1 }] }),
      'zero counter': wireWith({ version: [{ device: device(DEVICE_A), value: 0 }] }),
      'unsorted vector': wireWith({
        version: [
          { device: device(DEVICE_B), value: 1 },
          { device: device(DEVICE_A), value: 1 },
        ],
      }),
      'repeated device': wireWith({
        version: [
          { device: device(DEVICE_A), value: 1 },
          { device: device(DEVICE_A), value: 2 },
        ],
      }),
      'too many devices': wireWith({
        version: Array.from({ length: MAX_VECTOR_DEVICES + 1 }, (_, k) => ({ device: device(k.toString(16).padStart(16, '0')), value: 1 })),
      }),
    };
    for (const [name, bytes] of Object.entries(bad)) assert.throws(() => decodeRecord(bytes), StoreCorruptError, name);
  });

  it('rejects every truncation of a valid record', () => {
    // The sequence is the last field written and never zero, so no prefix can pass for a record.
    for (let length = 0; length < validBytes.length; length++) {
      assert.throws(() => decodeRecord(validBytes.subarray(0, length)), StoreCorruptError, `truncated to ${length}`);
    }
  });

  it('skips fields it does not know, so a newer writer can add some', () => {
    // Field 100, varint 1: tag (100 << 3) | 0 = 800 = 0xa0 0x06.
    assert.deepEqual(decodeRecord(Uint8Array.from([...validBytes, 0xa0, 0x06, 0x01])), valid);
  });

  it('reads the sequence alone as the whole decode does, whatever the other fields hold', () => {
    fc.assert(
      fc.property(changeArbitrary, safeCount(1), (change, sequence) => {
        assert.equal(decodeSequence(encodeRecord({ ...change, sequence })), sequence);
      }),
      { numRuns: 300 },
    );
    // Fields it does not know are skipped; a later sequence field wins, as for the whole decode.
    assert.equal(decodeSequence(Uint8Array.from([...validBytes, 0xa0, 0x06, 0x01])), valid.sequence);
    assert.equal(decodeSequence(appended(SEQUENCE_TAG, ...varint(2n ** 53n - 1n))), 2 ** 53 - 1);
  });

  it('refuses a sequence it cannot read, as the whole decode does', () => {
    const bad: Record<string, Uint8Array> = {
      empty: new Uint8Array(0),
      garbage: Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff),
      'sequence zero': wireWith({ sequence: 0 }),
      'sequence past 2^53': appended(SEQUENCE_TAG, ...varint(2n ** 53n)),
      // Wire type 7 does not exist.
      'unknown wire type': appended((14 << 3) | 7),
      'a field longer than the record': appended((14 << 3) | 2, 100, 1, 2),
    };
    for (const [name, bytes] of Object.entries(bad)) {
      assert.throws(() => decodeSequence(bytes), StoreCorruptError, name);
      assert.throws(() => decodeRecord(bytes), StoreCorruptError, name);
    }
    for (let length = 0; length < validBytes.length; length++) {
      assert.throws(() => decodeSequence(validBytes.subarray(0, length)), StoreCorruptError, `truncated to ${length}`);
    }
  });
});
