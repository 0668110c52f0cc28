import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StoreCorruptError, StoreInputError } from '../src/store/errors.js';
import { EntryType as WireType, FileRecord as WireRecord } from '../src/store/file-record.js';
import { decodeRecord, encodeRecord } from '../src/store/record-codec.js';
import type { FileRecord } from '../src/store/types.js';
import { MAX_VECTOR_DEVICES } from '../src/store/version-vector.js';
import { changeArbitrary, DEVICE_A, DEVICE_B, sampleChange } from './store-helpers.js';

const valid: FileRecord = { ...sampleChange('docs/a.txt'), sequence: 7 };
const validBytes = encodeRecord(valid);
const validWire = WireRecord.decode(validBytes);

/** The valid record's bytes with some fields replaced, as a damaged or foreign writer might leave them. */
function wireWith(fields: Partial<WireRecord>): Uint8Array {
  return WireRecord.encode({ ...validWire, ...fields });
}

const device = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));

describe('record codec', () => {
  it('round-trips any valid record exactly', () => {
    fc.assert(
      fc.property(changeArbitrary, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (change, sequence) => {
        const record = { ...change, sequence };
        assert.deepEqual(decodeRecord(encodeRecord(record)), record);
      }),
    );
  });

  it('keeps every mtime, negative multiples of 2^32 included (protons-runtime miscodes them as int64)', () => {
    const negativeMultiples = fc.bigInt({ min: 1n, max: 2n ** 31n }).map((k) => -(k << 32n));
    fc.assert(
      fc.property(fc.oneof(negativeMultiples, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })), (mtimeNs) => {
        assert.equal(decodeRecord(encodeRecord({ ...valid, mtimeNs })).mtimeNs, mtimeNs);
      }),
    );
    assert.equal(decodeRecord(encodeRecord({ ...valid, mtimeNs: -(2n ** 63n) })).mtimeNs, -(2n ** 63n));
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
      // A later field wins in protobuf: append type = 9, a value the enum does not have.
      'unknown type': Uint8Array.from([...validBytes, 0x10, 0x09]),
      'size past 2^53': wireWith({ size: 2n ** 53n }),
      'sequence zero': wireWith({ sequence: 0n }),
      'sequence past 2^53': wireWith({ sequence: 2n ** 53n }),
      'mode beyond permission bits': wireWith({ mode: 0o10000 }),
      'empty path': wireWith({ path: '' }),
      'content hash of 31 bytes': wireWith({ contentHash: new Uint8Array(31) }),
      'block hashes of 33 bytes': wireWith({ blockHashes: new Uint8Array(33) }),
      'modifiedBy of 9 bytes': wireWith({ modifiedBy: new Uint8Array(9) }),
      'missing modifiedBy': wireWith({ modifiedBy: new Uint8Array(0) }),
      'device of 7 bytes': wireWith({ version: [{ device: new Uint8Array(7), value: 1n }] }),
      'zero counter': wireWith({ version: [{ device: device(DEVICE_A), value: 0n }] }),
      'counter past 2^53': wireWith({ version: [{ device: device(DEVICE_A), value: 2n ** 53n }] }),
      'unsorted vector': wireWith({
        version: [
          { device: device(DEVICE_B), value: 1n },
          { device: device(DEVICE_A), value: 1n },
        ],
      }),
      'repeated device': wireWith({
        version: [
          { device: device(DEVICE_A), value: 1n },
          { device: device(DEVICE_A), value: 2n },
        ],
      }),
      'too many devices': wireWith({
        version: Array.from({ length: MAX_VECTOR_DEVICES + 1 }, (_, k) => ({ device: device(k.toString(16).padStart(16, '0')), value: 1n })),
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
});
