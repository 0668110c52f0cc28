import fc from 'fast-check';
import type { EntryType, FileChange, FileRecord, Store } from '../src/store/types.js';
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

const deviceId: fc.Arbitrary<DeviceId> = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => n.toString(16).padStart(16, '0'));

export const vectorArbitrary: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.record({ device: deviceId, value: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) }), {
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
    size: fc.maxSafeNat(),
    mtimeNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    inode: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    blockHashes: fc.integer({ min: 0, max: 4 }).chain((blocks) => fc.uint8Array({ minLength: blocks * 32, maxLength: blocks * 32 })),
    contentHash: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 32, maxLength: 32 })),
    symlinkTarget: text(0),
    version: vectorArbitrary,
    deleted: fc.boolean(),
    modifiedBy: deviceId,
  })
  // Plain objects, as callers make them (fc.record's have no prototype).
  .map((change) => ({ ...change }));
