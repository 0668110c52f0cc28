import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyDelta, collect, decodeSignature, encodeDelta, encodeSignature, IO_CHUNK_LENGTH, signatureOptionsFor } from '../src/delta/index.js';
import { chunksOf, collectCopies, equalBytes, memoryBasis, pseudoRandomBytes, roundTrip } from './helpers.js';

/** An edit a user makes to a file, applied to its bytes. */
type Edit =
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'move'; from: number; length: number; to: number };

function applyEdit(data: Uint8Array, edit: Edit): Uint8Array {
  const n = data.length;
  const clamp = (x: number) => Math.min(n, Math.max(0, Math.floor(x * n)));
  const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
  switch (edit.kind) {
    case 'insert': {
      const at = clamp(edit.at);
      return concat(data.subarray(0, at), edit.bytes, data.subarray(at));
    }
    case 'delete': {
      const at = clamp(edit.at);
      return concat(data.subarray(0, at), data.subarray(Math.min(n, at + edit.length)));
    }
    case 'overwrite': {
      const out = data.slice();
      const at = clamp(edit.at);
      out.set(edit.bytes.subarray(0, n - at), at);
      return out;
    }
    case 'truncate':
      return data.slice(0, clamp(edit.at));
    case 'append':
      return concat(data, edit.bytes);
    case 'move': {
      const from = clamp(edit.from);
      const piece = data.slice(from, Math.min(n, from + edit.length));
      const rest = concat(data.subarray(0, from), data.subarray(from + piece.length));
      const to = Math.min(rest.length, Math.floor(edit.to * rest.length));
      return concat(rest.subarray(0, to), piece, rest.subarray(to));
    }
  }
}

const position = fc.double({ min: 0, max: 1, noNaN: true });
const someBytes = fc.uint8Array({ minLength: 1, maxLength: 3000 });
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: position, bytes: someBytes }),
  fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: position, bytes: someBytes }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('append' as const), bytes: someBytes }),
  fc.record({
    kind: fc.constant('move' as const),
    from: position,
    length: fc.integer({ min: 1, max: 20000 }),
    to: position,
  }),
);

describe('patch(old, delta(signature(old), new)) == new', () => {
  it('for random files and random edits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer(),
        fc.array(edit, { minLength: 0, maxLength: 6 }),
        fc.constantFrom(64, 100, 700, 1024, 4096),
        fc.constantFrom(2, 4, 16),
        fc.integer({ min: 1, max: 70_000 }),
        async (length, seed, edits, blockLength, strongLength, chunk) => {
          const oldBytes = pseudoRandomBytes(length, seed);
          const newBytes = edits.reduce(applyEdit, oldBytes);
          const { rebuilt } = await roundTrip(oldBytes, newBytes, { blockLength, strongLength, chunk });
          assert.ok(equalBytes(rebuilt, newBytes), 'rebuilt file differs from the new file');
        },
      ),
      { numRuns: 150 },
    );
  });

  it('sends only what changed: an overwrite costs at most two blocks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), position, fc.integer({ min: 1, max: 200 }), async (seed, at, size) => {
        const oldBytes = pseudoRandomBytes(200_000, seed);
        const newBytes = applyEdit(oldBytes, { kind: 'overwrite', at, bytes: pseudoRandomBytes(size, seed + 1) });
        const { deltaStats } = await roundTrip(oldBytes, newBytes, { blockLength: 700, strongLength: 16 });
        // The overwritten bytes touch at most two blocks; everything else is copied.
        assert.ok(deltaStats.literalBytes <= 2 * 700, `literal ${deltaStats.literalBytes} bytes for a ${size}-byte edit`);
      }),
      { numRuns: 40 },
    );
  });

  it('reusing its buffers (as mesh join runs it), the patch yields the same bytes to a consumer that copies each piece', async () => {
    // Long COPY runs (several reads in flight at once, each buffer reused many times) between
    // short literals (gathered into the reused gather buffer).
    const oldBytes = pseudoRandomBytes(12 * IO_CHUNK_LENGTH + 12_345, 7);
    const newBytes = oldBytes.slice();
    for (let at = 1000; at < newBytes.length; at += 700_001) newBytes.set(pseudoRandomBytes(3000, at), at);
    const signature = await collect(encodeSignature(chunksOf(oldBytes), signatureOptionsFor(oldBytes.length)));
    const delta = await collect(encodeDelta(await decodeSignature(chunksOf(signature)), chunksOf(newBytes)));
    const rebuilt = await collectCopies(applyDelta(memoryBasis(oldBytes), chunksOf(delta, 4096), { recycle: true }));
    assert.ok(equalBytes(rebuilt, newBytes));
  });
});
