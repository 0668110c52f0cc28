import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BATCH_TARGET_BYTES, MAX_BATCH_RECORDS, MAX_WIRE_BLOCKS } from '../src/protocol/constants.js';
import { ProtocolError, UnsendableRecordError } from '../src/protocol/errors.js';
import { EntryType, IndexBatch, TransferResponse as WireResponse, WireRecord } from '../src/protocol/messages.js';
import {
  BatchBuilder,
  decodeIndexBatch,
  decodeIndexRequest,
  decodeTransferRequest,
  decodeTransferResponse,
  encodeIndexRequest,
  encodeTransferRequest,
  encodeTransferResponse,
} from '../src/protocol/messages-codec.js';
import { fromWire, toWire, type RemoteRecord } from '../src/protocol/wire-record.js';
import { BLOCK_HASH_BYTES, BLOCK_HASH_LENGTH } from '../src/store/types.js';
import { MAX_VECTOR_DEVICES, type VersionVector } from '../src/store/version-vector.js';
import { DEVICE_A, DEVICE_B } from './store-helpers.js';

const sha256 = (text: string) => new Uint8Array(createHash('sha256').update(text).digest());

/** The content hash of a file: SHA-256 of its block list, as the scanner makes it. */
const contentHashOf = (blockHashes: Uint8Array) => new Uint8Array(createHash('sha256').update(blockHashes).digest());

function file(path: string, size = 300_000, overrides: Partial<RemoteRecord> = {}): RemoteRecord {
  const blockHashes = overrides.blockHashes ?? new Uint8Array(Math.ceil(size / BLOCK_HASH_LENGTH) * BLOCK_HASH_BYTES).fill(7);
  return {
    path,
    type: 'file',
    size,
    mtimeNs: 1_700_000_000_123_456_789n,
    mode: 0o644,
    blockHashes,
    contentHash: contentHashOf(blockHashes),
    symlinkTarget: '',
    version: [{ device: DEVICE_A, value: 1 }],
    deleted: false,
    modifiedBy: DEVICE_A,
    sequence: 7,
    ...overrides,
  };
}

const valid = file('docs/a.txt');
const validWire = toWire(valid);

/** Through the bytes and back, as a peer's record arrives. */
function roundTrip(record: RemoteRecord): RemoteRecord {
  return fromWire(WireRecord.decode(WireRecord.encode(toWire(record))));
}

/** The valid record's wire form with some fields replaced, as a hostile peer would send it. */
function receive(fields: Partial<WireRecord>): RemoteRecord {
  return fromWire(WireRecord.decode(WireRecord.encode({ ...validWire, ...fields })));
}

/** Protobuf varint bytes of any value, for numbers the generated encoder would not write. */
function varint(value: bigint): number[] {
  const out: number[] = [];
  for (let v = value; ; v >>= 7n) {
    if (v < 0x80n) return [...out, Number(v)];
    out.push(Number(v & 0x7fn) | 0x80);
  }
}

const device = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));

// ---- Arbitraries: records as the scanner makes them, every shape ----

const deviceId = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => n.toString(16).padStart(16, '0'));
const vector: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.record({ device: deviceId, value: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) }), {
    selector: (c) => c.device,
    minLength: 1,
    maxLength: 5,
  })
  .map((counters) => counters.map(({ device, value }) => ({ device, value })).sort((a, b) => (a.device < b.device ? -1 : 1)));
const segment = fc
  .array(fc.constantFrom('a', 'Z', '0', '-', '_', '.', ' ', 'é', '日', '😀', 'ß'), { minLength: 1, maxLength: 12 })
  .map((chars) => chars.join(''))
  .filter((s) => s !== '.' && s !== '..');
const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((segments) => segments.join('/'));
const common = fc.record({
  path,
  mtimeNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  mode: fc.integer({ min: 0, max: 0o7777 }),
  version: vector,
  modifiedBy: deviceId,
  sequence: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
});
const recordArbitrary: fc.Arbitrary<RemoteRecord> = fc.oneof(
  fc
    .tuple(common, fc.integer({ min: 0, max: 3 * BLOCK_HASH_LENGTH }))
    .chain(([base, size]) =>
      fc.uint8Array({ minLength: Math.ceil(size / BLOCK_HASH_LENGTH) * 32, maxLength: Math.ceil(size / BLOCK_HASH_LENGTH) * 32 }).map(
        (blockHashes): RemoteRecord => ({ ...base, type: 'file', size, blockHashes, contentHash: contentHashOf(blockHashes), symlinkTarget: '', deleted: false }),
      ),
    ),
  common.map((base): RemoteRecord => ({ ...base, type: 'directory', size: 0, blockHashes: new Uint8Array(0), contentHash: new Uint8Array(0), symlinkTarget: '', deleted: false })),
  fc.tuple(common, fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes('\0'))).map(
    ([base, target]): RemoteRecord => ({ ...base, type: 'symlink', size: 0, blockHashes: new Uint8Array(0), contentHash: sha256(target), symlinkTarget: target, deleted: false }),
  ),
  fc.tuple(common, fc.constantFrom<RemoteRecord['type']>('file', 'directory', 'symlink')).map(
    ([base, type]): RemoteRecord => ({ ...base, type, size: 0, blockHashes: new Uint8Array(0), contentHash: new Uint8Array(0), symlinkTarget: '', deleted: true }),
  ),
);

function assertOnlyProtocolErrors(decode: () => unknown): void {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `${(error as Error).name}: ${(error as Error).message}`);
    assert.equal(error.name, 'ProtocolError');
    assert.equal(error.peerMisbehaved, true);
    assert.match(error.message, /^peer misbehaved: /);
  }
}

describe('wire records', () => {
  it('round-trip every valid record exactly: files, directories, symlinks, tombstones', () => {
    fc.assert(
      fc.property(recordArbitrary, (record) => {
        assert.deepEqual(roundTrip(record), record);
      }),
      { numRuns: 300 },
    );
  });

  it('keep numbers exactly at the edges: 2^31, 2^32, 2^53 - 1, and mtimes of -2^63 and 2^63 - 1', () => {
    for (const size of [0, 1, 2 ** 31 - 1, 2 ** 31, 3 * 2 ** 30, 2 ** 32 - 1, 2 ** 32]) {
      assert.equal(roundTrip(file('big', size)).size, size, `size ${size}`);
    }
    for (const n of [1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      assert.equal(roundTrip({ ...valid, sequence: n }).sequence, n, `sequence ${n}`);
      assert.equal(roundTrip({ ...valid, version: [{ device: DEVICE_A, value: n }] }).version[0].value, n, `counter ${n}`);
    }
    for (const mtimeNs of [0n, -1n, -(2n ** 63n), 2n ** 63n - 1n, -(2n ** 53n) - 1n, 2n ** 32n - 1n]) {
      assert.equal(roundTrip({ ...valid, mtimeNs }).mtimeNs, mtimeNs, `mtime ${mtimeNs}`);
    }
  });

  it('carry no inode: a remote record cannot pass for a local one', () => {
    const local = { ...valid, inode: 1234n };
    assert.equal('inode' in toWire(local), false);
    assert.equal('inode' in roundTrip(local), false);
  });

  it('refuse hostile paths', () => {
    const hostile = ['../x', 'a/../../x', '..', '.', '', '/etc/passwd', 'C:/x', 'c:', 'a\\b', '\\\\srv\\s', 'a\0b', 'a/\u001b[31mred', 'a//b', 'a/', 'e\u0301', 'x'.repeat(256), 'a/'.repeat(2100) + 'a'];
    for (const path of hostile) {
      assert.throws(() => receive({ path }), ProtocolError, JSON.stringify(path));
    }
  });

  it('refuse sizes beyond 2^53 and block hashes that do not cover the size', () => {
    const sizeTag = (3 << 3) | 0;
    for (const size of [2n ** 53n, 2n ** 60n, 2n ** 64n - 1n]) {
      const bytes = Uint8Array.from([...WireRecord.encode(validWire), sizeTag, ...varint(size)]);
      assert.throws(() => decodeIndexBatchOf(bytes), ProtocolError, `size ${size}`);
    }
    assert.throws(() => receive({ size: validWire.size + BLOCK_HASH_LENGTH }), /block hashes for/);
    assert.throws(() => receive({ blockHashes: new Uint8Array(33) }), ProtocolError);
    assert.throws(() => receive({ blockHashes: new Uint8Array(0) }), ProtocolError);
  });

  it('refuse hashes of the wrong size, and content that contradicts the type', () => {
    for (const length of [0, 1, 31, 33, 64]) {
      assert.throws(() => receive({ contentHash: new Uint8Array(length) }), ProtocolError, `content hash ${length}`);
    }
    const empty = new Uint8Array(0);
    assert.throws(() => receive({ deleted: true }), /tombstone/);
    assert.throws(() => receive({ type: EntryType.DIRECTORY }), /directory/);
    assert.throws(() => receive({ type: EntryType.SYMLINK, size: 0, blockHashes: empty, symlinkTarget: 'target' }), /not the hash of the symlink target/);
    assert.throws(() => receive({ contentHash: new Uint8Array(32).fill(9) }), /not the hash of the block list/);
    for (const path of ['.mesh', '.mesh/index/CURRENT', 'd/.mesh-tmp.x.12345678']) assert.throws(() => receive({ path }), /mesh's own/, path);
    assert.throws(
      () => receive({ type: EntryType.SYMLINK, size: 0, blockHashes: empty, symlinkTarget: 'a\0b', contentHash: sha256('a\0b') }),
      /NUL/,
    );
    const long = 'x'.repeat(4097);
    assert.throws(
      () => receive({ type: EntryType.SYMLINK, size: 0, blockHashes: empty, symlinkTarget: long, contentHash: sha256(long) }),
      /symlink target longer/,
    );
    assert.throws(() => receive({ symlinkTarget: 'x' }), /no symlink target/);
  });

  it('refuse unknown types, bad modes, bad device ids and a zero sequence', () => {
    assert.throws(() => receive({ type: EntryType.ENTRY_TYPE_UNSPECIFIED }), /unknown type/);
    const typeTag = (2 << 3) | 0;
    assert.throws(() => decodeIndexBatchOf(Uint8Array.from([...WireRecord.encode(validWire), typeTag, 7])), ProtocolError);
    assert.throws(() => receive({ mode: 0o10000 }), ProtocolError);
    assert.throws(() => receive({ modifiedBy: device('01234567') }), /modifiedBy is 4 bytes/);
    assert.throws(() => receive({ sequence: 0 }), /sequence/);
  });

  it('refuse version vectors that are unsorted, repeat a device, hold a zero, are empty or name over 1024 devices', () => {
    const counter = (hex: string, value: number) => ({ device: device(hex), value });
    assert.throws(() => receive({ version: [counter(DEVICE_B, 1), counter(DEVICE_A, 1)] }), /out of order/);
    assert.throws(() => receive({ version: [counter(DEVICE_A, 1), counter(DEVICE_A, 2)] }), /out of order/);
    assert.throws(() => receive({ version: [counter(DEVICE_A, 0)] }), /bad counter/);
    assert.throws(() => receive({ version: [] }), /empty version/);
    assert.throws(() => receive({ version: [{ device: device('0011'), value: 1 }] }), /version device is 2 bytes/);
    const many = Array.from({ length: MAX_VECTOR_DEVICES + 1 }, (_, k) => counter(k.toString(16).padStart(16, '0'), 1));
    const bytes = WireRecord.encode({ ...validWire, version: many });
    assert.throws(() => decodeIndexBatchOf(bytes), ProtocolError);
  });

  it('decode random bytes and damaged batches into ProtocolError only', () => {
    const batch = new BatchBuilder();
    for (let k = 0; k < 3; k++) batch.add({ ...valid, path: `f${k}`, sequence: k + 1 });
    const good = batch.take(3, 7);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        assertOnlyProtocolErrors(() => decodeIndexBatch(bytes));
        assertOnlyProtocolErrors(() => decodeIndexRequest(bytes));
        assertOnlyProtocolErrors(() => decodeTransferRequest(bytes));
        assertOnlyProtocolErrors(() => decodeTransferResponse(bytes));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (edits) => {
        const damaged = Uint8Array.from(good);
        for (const [at, value] of edits) damaged[at] = value;
        assertOnlyProtocolErrors(() => decodeIndexBatch(damaged));
        assertOnlyProtocolErrors(() => decodeIndexBatch(damaged.subarray(0, edits[0][0])));
      }),
      { numRuns: 2000 },
    );
  });

  it('are refused by toWire when no peer would accept them', () => {
    assert.throws(() => toWire({ ...valid, path: '../x' }), UnsendableRecordError);
    const huge = MAX_WIRE_BLOCKS * BLOCK_HASH_LENGTH + 1;
    assert.throws(() => toWire(file('huge', huge)), /more than 1048576 block hashes/);
    assert.equal(roundTrip(file('largest', MAX_WIRE_BLOCKS * BLOCK_HASH_LENGTH)).size, 2 ** 37);
  });
});

/** A batch holding the given record bytes, decoded as the client does. */
function decodeIndexBatchOf(recordBytes: Uint8Array) {
  return decodeIndexBatch(Uint8Array.from([(1 << 3) | 2, ...varint(BigInt(recordBytes.length)), ...recordBytes, (2 << 3) | 0, 100]));
}

describe('index messages', () => {
  it('a batch holds at most 1000 records and reads back as the generated codec reads it', () => {
    const builder = new BatchBuilder();
    let added = 0;
    while (builder.add(file(`f/${added}`, 10, { sequence: added + 1 }))) added++;
    assert.equal(added, MAX_BATCH_RECORDS);
    const bytes = builder.take(added, 1234);
    const generated = IndexBatch.decode(bytes);
    assert.equal(generated.records.length, MAX_BATCH_RECORDS);
    assert.equal(generated.lastSequence, MAX_BATCH_RECORDS);
    assert.equal(generated.head, 1234);
    const decoded = decodeIndexBatch(bytes);
    assert.deepEqual(decoded.records[999], file('f/999', 10, { sequence: 1000 }));
    assert.equal(decoded.head, 1234);
    assert.equal(builder.count, 0);
    assert.deepEqual(decodeIndexBatch(builder.take(0, 0)), { records: [], lastSequence: 0, head: 0 });
  });

  it("a batch's head is never below its last sequence: a sender that does not say it sent everything it had", () => {
    assert.equal(decodeIndexBatch(IndexBatch.encode({ records: [], lastSequence: 40, head: 0 })).head, 40);
    assert.equal(decodeIndexBatch(IndexBatch.encode({ records: [], lastSequence: 40, head: 12 })).head, 40);
    assert.equal(decodeIndexBatch(IndexBatch.encode({ records: [], lastSequence: 40, head: 90 })).head, 90);
    assert.throws(() => decodeIndexBatch(Uint8Array.from([(3 << 3) | 0, ...varint(2n ** 53n)])), ProtocolError);
  });

  it('a batch stays under 1 MiB, and a record larger than that travels alone', () => {
    const builder = new BatchBuilder();
    // 6400 blocks: 200 KiB of block hashes each.
    const size = 6400 * BLOCK_HASH_LENGTH;
    let added = 0;
    while (builder.add(file(`big/${added}`, size, { sequence: added + 1 }))) added++;
    assert.equal(added, 5);
    assert.ok(builder.byteLength <= BATCH_TARGET_BYTES);
    builder.take(added, added);
    const hugeSize = 40_000 * BLOCK_HASH_LENGTH; // 1.25 MiB of block hashes
    assert.equal(builder.add(file('huge', hugeSize, { sequence: 9 })), true);
    assert.equal(builder.add(file('next', 1, { sequence: 10 })), false);
    assert.equal(decodeIndexBatch(builder.take(9, 9)).records[0].size, hugeSize);
  });

  it('batches must be in sequence order and within their last sequence', () => {
    const builder = new BatchBuilder();
    builder.add({ ...valid, path: 'a', sequence: 5 });
    builder.add({ ...valid, path: 'b', sequence: 3 });
    assert.throws(() => decodeIndexBatch(builder.take(5, 5)), /not in sequence order/);
    builder.add({ ...valid, path: 'a', sequence: 5 });
    assert.throws(() => decodeIndexBatch(builder.take(4, 5)), /above its last sequence/);
  });

  it('requests carry since exactly, up to 2^53 - 1', () => {
    for (const since of [0, 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) assert.equal(decodeIndexRequest(encodeIndexRequest(since)), since);
    assert.throws(() => decodeIndexRequest(Uint8Array.from([8, ...varint(2n ** 53n)])), ProtocolError);
  });
});

describe('transfer messages', () => {
  const request = { path: 'docs/a.txt', version: [{ device: DEVICE_A, value: 3 }], contentHash: new Uint8Array(32).fill(1), fineRound: false, contentChecked: true };

  it('a request round-trips, and a hostile one is refused', () => {
    assert.deepEqual(decodeTransferRequest(encodeTransferRequest(request)), request);
    assert.throws(() => encodeTransferRequest({ ...request, path: '../x' }), RangeError);
    const hostile = [
      { ...request, path: '../etc/passwd' },
      { ...request, path: '/etc/passwd' },
      { ...request, contentHash: new Uint8Array(31) },
      { ...request, version: [] },
      {
        ...request,
        version: [
          { device: DEVICE_B, value: 1 },
          { device: DEVICE_A, value: 1 },
        ],
      },
    ];
    for (const bad of hostile) {
      // Encoded by hand: the encoder itself refuses these.
      const bytes = Uint8Array.from([
        (1 << 3) | 2,
        ...varint(BigInt(Buffer.byteLength(bad.path))),
        ...Buffer.from(bad.path),
        ...bad.version.flatMap((c) => {
          const counter = [(1 << 3) | 2, 8, ...device(c.device), (2 << 3) | 0, ...varint(BigInt(c.value))];
          return [(2 << 3) | 2, counter.length, ...counter];
        }),
        (3 << 3) | 2,
        bad.contentHash.length,
        ...bad.contentHash,
      ]);
      assert.throws(() => decodeTransferRequest(bytes), ProtocolError, JSON.stringify(bad.path));
    }
  });

  it('a response must carry a known status; a refusal message is cut to 1024 characters', () => {
    assert.deepEqual(decodeTransferResponse(encodeTransferResponse({ status: 'CHANGED', message: 'newer' })), { status: 'CHANGED', message: 'newer' });
    assert.throws(() => decodeTransferResponse(WireResponse.encode({ status: WireResponse.Status.STATUS_UNSPECIFIED, message: '' })), ProtocolError);
    assert.throws(() => decodeTransferResponse(new Uint8Array(0)), ProtocolError);
    assert.throws(() => decodeTransferResponse(Uint8Array.from([8, 9])), ProtocolError);
    assert.equal(decodeTransferResponse(encodeTransferResponse({ status: 'BUSY', message: '😀'.repeat(2000) })).message.length, 2048);
  });
});
