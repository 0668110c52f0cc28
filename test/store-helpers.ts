import assert from 'node:assert/strict';
import { Level } from 'level';
import { decodeUtf8, sequenceOfKey, TABLE, tableRange } from '../src/store/level-keys.js';
import { decodeRecord } from '../src/store/record-codec.js';
import fc from 'fast-check';
import type { EntryType, FileChange, FileRecord, ScanEntry, Store } from '../src/store/types.js';
import type { DeviceId, VersionVector } from '../src/store/version-vector.js';

export const DEVICE_A: DeviceId = '0123456789abcdef';
export const DEVICE_B: DeviceId = 'fedcba9876543210';

/** A valid change for `path`: a 3-block file last edited by DEVICE_A, with `overrides` applied. */
export function sampleChange(path: string, overrides: Partial<FileChange> = {}): FileChange {
  return {
    path,
    type: 'file',
    size: 300_000,
    mtimeNs: 1_700_000_000_123_456_789n,
    mode: 0o644,
    inode: 4242n,
    blockHashes: new Uint8Array(96).fill(7),
    contentHash: new Uint8Array(32).fill(9),
    symlinkTarget: '',
    version: [{ device: DEVICE_A, value: 1 }],
    deleted: false,
    modifiedBy: DEVICE_A,
    ...overrides,
  };
}

/** A tombstone of `path`: deleted by DEVICE_B after DEVICE_A's edit. */
export function tombstone(path: string): FileChange {
  return sampleChange(path, {
    size: 0,
    blockHashes: new Uint8Array(0),
    contentHash: new Uint8Array(0),
    version: [
      { device: DEVICE_A, value: 1 },
      { device: DEVICE_B, value: 1 },
    ],
    deleted: true,
    modifiedBy: DEVICE_B,
  });
}

export async function collectRecords(records: AsyncIterable<FileRecord>): Promise<FileRecord[]> {
  const out: FileRecord[] = [];
  for await (const record of records) out.push(record);
  return out;
}

export function since(store: Store, sequence: number): Promise<FileRecord[]> {
  return collectRecords(store.since(sequence));
}

export function allRecords(store: Store): Promise<FileRecord[]> {
  return collectRecords(store.records());
}

export async function scanEntries(store: Store, subtree?: string): Promise<ScanEntry[]> {
  const out: ScanEntry[] = [];
  for await (const batch of store.scanEntries(subtree)) {
    assert.ok(batch.length > 0, 'scanEntries() yields no empty batch');
    out.push(...batch);
  }
  return out;
}

/** What scanEntries() must say of a record: its scan fields, nothing else. */
export function expectedScanEntry(record: FileRecord): ScanEntry {
  const { path, type, deleted, size, mtimeNs, mode, inode } = record;
  return { path, type, deleted, size, mtimeNs, mode, inode };
}

const deviceId: fc.Arbitrary<DeviceId> = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => n.toString(16).padStart(16, '0'));

/** 2^e + d for small d: where varint and 32-bit-halves bugs live (2^31, 2^32, 2^53, 2^63...). */
function aroundPowersOfTwo(maxExponent: number): fc.Arbitrary<bigint> {
  return fc.tuple(fc.integer({ min: 0, max: maxExponent }), fc.integer({ min: -2, max: 2 })).map(([e, d]) => (1n << BigInt(e)) + BigInt(d));
}

function bigIntIn(min: bigint, max: bigint): fc.Arbitrary<bigint> {
  const near = aroundPowersOfTwo(64).chain((v) => fc.constantFrom(v, -v));
  return fc.oneof(fc.bigInt({ min, max }), near.filter((v) => v >= min && v <= max));
}

/** Whole numbers from `min` to 2^53 - 1, often near a power of two. */
export function safeCount(min = 0): fc.Arbitrary<number> {
  return bigIntIn(BigInt(min), BigInt(Number.MAX_SAFE_INTEGER)).map(Number);
}

export const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
export const UINT64 = { min: 0n, max: 2n ** 64n - 1n };

export const vectorArbitrary: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.record({ device: deviceId, value: safeCount(1) }), {
    selector: (c) => c.device,
    maxLength: 5,
  })
  .map((counters) => counters.map(({ device, value }) => ({ device, value })).sort((a, b) => (a.device < b.device ? -1 : 1)));

/** Any text with a UTF-8 form: every code point, astral ones included, no lone surrogates. */
const text = (minLength: number) => fc.string({ unit: 'binary', minLength, maxLength: 40 });

/** Any change a store must keep exactly, across the whole range of every field. */
export const changeArbitrary: fc.Arbitrary<FileChange> = fc
  .record({
    path: text(1),
    type: fc.constantFrom<EntryType>('file', 'directory', 'symlink'),
    size: safeCount(),
    mtimeNs: bigIntIn(INT64.min, INT64.max),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    inode: bigIntIn(UINT64.min, UINT64.max),
    blockHashes: fc.integer({ min: 0, max: 4 }).chain((blocks) => fc.uint8Array({ minLength: blocks * 32, maxLength: blocks * 32 })),
    contentHash: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 32, maxLength: 32 })),
    symlinkTarget: text(0),
    version: vectorArbitrary,
    deleted: fc.boolean(),
    modifiedBy: deviceId,
  })
  // Plain objects, as callers make them (fc.record's have no prototype).
  .map((change) => ({ ...change }));

/** Every record and sequence entry, read raw: the store's own reads would hide what they skip. */
export async function readRaw(location: string): Promise<{ records: Map<string, number>; sizes: Map<string, number>; index: Map<number, string> }> {
  const db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const records = new Map<string, number>();
    const sizes = new Map<string, number>();
    for await (const [key, value] of db.iterator(tableRange(TABLE.file))) {
      const path = decodeUtf8(key.subarray(1), 'a record key');
      const record = decodeRecord(value);
      assert.equal(record.path, path);
      records.set(path, record.sequence);
      sizes.set(path, record.size);
    }
    const index = new Map<number, string>();
    for await (const [key, value] of db.iterator(tableRange(TABLE.sequence))) index.set(sequenceOfKey(key), decodeUtf8(value, 'a path'));
    return { records, sizes, index };
  } finally {
    await db.close();
  }
}

