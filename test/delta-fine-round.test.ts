import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  applyDelta,
  collect,
  DeltaError,
  FINE_BLOCK_LENGTH,
  FINE_FORMAT_VERSION,
  FORMAT_VERSION,
  MalformedDeltaError,
  MAX_FINE_GAP_LENGTH,
  SeededHash,
  VerificationError,
  type FineRoundReceiver,
} from '../src/delta/index.js';
import { weakHash } from '../src/delta/rolling-hash.js';
import { chunksOf, equalBytes, fineRoundTrip, memoryBasis, pseudoRandomBytes, roundTrip } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** `bytes` with `count` overwrites of `length` random bytes spread over it, and one byte inserted at `insertAt`. */
function scatteredEdit(bytes: Uint8Array, count: number, length: number, insertAt: number, seed: number): Uint8Array {
  const out = new Uint8Array(Buffer.concat([bytes.subarray(0, insertAt), Uint8Array.of(0x5a), bytes.subarray(insertAt)]));
  const stratum = Math.floor(out.length / count);
  const junk = pseudoRandomBytes(count * length, seed);
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.set(junk.subarray(i * length, (i + 1) * length), i * stratum + (x % (stratum - length)));
  }
  return out;
}

describe('the fine round rebuilds the new file', () => {
  it('for random files and random edits, blocks and hash lengths', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 400_000 }),
        fc.integer(),
        fc.array(
          fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), cut: fc.integer({ min: 0, max: 6000 }), bytes: fc.uint8Array({ maxLength: 6000 }) }),
          { maxLength: 8 },
        ),
        fc.constantFrom(2048, 4096, 8192),
        fc.constantFrom(2, 3, 16),
        fc.integer({ min: 1, max: 70_000 }),
        async (length, seed, edits, blockLength, strongLength, chunk) => {
          const oldBytes = pseudoRandomBytes(length, seed);
          // Each edit replaces `cut` bytes at `at` with `bytes`: inserts, deletes and overwrites.
          const newBytes = edits.reduce((data, edit) => {
            const at = Math.floor(edit.at * data.length);
            return new Uint8Array(Buffer.concat([data.subarray(0, at), edit.bytes, data.subarray(Math.min(data.length, at + edit.cut))]));
          }, oldBytes);
          const trip = await fineRoundTrip(oldBytes, newBytes, { blockLength, strongLength, chunk });
          assert.ok(equalBytes(trip.rebuilt, newBytes), 'rebuilt file differs from the new file');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('sends about the changed bytes for scattered 10 KiB overwrites, where whole blocks cost 1.6x', async (t) => {
    const oldBytes = pseudoRandomBytes(16 * MiB, 7);
    const newBytes = scatteredEdit(oldBytes, 128, 10 * KiB, 4096, 11);
    const changed = 128 * 10 * KiB + 1;
    const plain = await roundTrip(oldBytes, newBytes);
    const fine = await fineRoundTrip(oldBytes, newBytes);
    assert.ok(equalBytes(fine.rebuilt, newBytes));
    const plainBytes = plain.signature.length + plain.delta.length;
    const fineBytes = fine.signature.length + fine.delta.length + fine.answerBytes;
    t.diagnostic(
      `16 MiB, 128 x 10 KiB: ${plainBytes} bytes without the fine round (${(plainBytes / changed).toFixed(2)}x), ` +
        `${fineBytes} with it (${(fineBytes / changed).toFixed(2)}x: signature ${fine.signature.length}, delta ${fine.delta.length}, ${fine.answers} answers ${fine.answerBytes})`,
    );
    assert.equal(fine.answers, 128, 'one SIGN per overwrite (the insertion shares the first)');
    assert.ok(fineBytes < 1.15 * changed, `${fineBytes} bytes for ${changed} changed`);
    assert.ok(plainBytes > 1.4 * changed, 'the edit is one where whole blocks cost much more');
  });

  it('does not take a changed block for the one after a match when only its short strong hash agrees', async () => {
    // A 512-byte block of new data whose 2-byte strong hash equals that of the fine block it
    // replaced (about 65,000 tries). Across a 256 MiB file's hundreds of edits such a check is
    // made once per edit; the weak hash must agree too, or one run in a few hundred would fail
    // its content check and be sent again.
    const seed = Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1);
    const blockLength = 2048;
    const oldBytes = pseudoRandomBytes(8 * MiB, 31);
    const at = 1000 * blockLength + 2 * FINE_BLOCK_LENGTH;
    const original = oldBytes.subarray(at, at + FINE_BLOCK_LENGTH);
    const strong = await SeededHash.create(seed);
    const wanted = strong.digest(original);
    const forged = pseudoRandomBytes(FINE_BLOCK_LENGTH, 33);
    for (let tries = 0; ; tries++) {
      forged[0] = tries & 255;
      forged[1] = (tries >>> 8) & 255;
      forged[2] = tries >>> 16;
      const got = strong.digest(forged);
      if (got[0] === wanted[0] && got[1] === wanted[1]) break;
      assert.ok(tries < 1 << 24, 'no 2-byte strong hash collision found');
    }
    assert.notEqual(weakHash(forged, 0, FINE_BLOCK_LENGTH), weakHash(original, 0, FINE_BLOCK_LENGTH));
    const newBytes = oldBytes.slice();
    newBytes.set(forged, at);

    const trip = await fineRoundTrip(oldBytes, newBytes, { blockLength, strongLength: 2, seed });
    assert.ok(equalBytes(trip.rebuilt, newBytes));
    assert.equal(trip.answers, 1, 'the edited coarse block went through the fine round');
    assert.equal(trip.deltaStats.literalBytes, FINE_BLOCK_LENGTH, 'only the forged block was sent');
  });

  it('is not used for small files (blocks under 2 KiB) nor without a basis', async () => {
    const oldBytes = pseudoRandomBytes(1 * MiB, 3);
    const newBytes = scatteredEdit(oldBytes, 4, 3000, 100, 5);
    const small = await fineRoundTrip(oldBytes, newBytes);
    assert.ok(equalBytes(small.rebuilt, newBytes));
    assert.equal(small.answers, 0);
    assert.equal(small.delta[4], FORMAT_VERSION);
    const none = await fineRoundTrip(new Uint8Array(0), newBytes);
    assert.ok(equalBytes(none.rebuilt, newBytes));
    assert.equal(none.answers, 0);
  });

  it('fails verification, never silently, when the file changes between the first read and a re-read', async () => {
    const oldBytes = pseudoRandomBytes(8 * MiB, 9);
    const newBytes = scatteredEdit(oldBytes, 8, 10 * KiB, 50_000, 13);
    const changedLater = newBytes.slice().fill(1);
    await assert.rejects(fineRoundTrip(oldBytes, newBytes, { reread: changedLater }), VerificationError);
  });
});

describe('a malformed fine round is rejected with MalformedDeltaError', () => {
  const basis = pseudoRandomBytes(64 * KiB, 21);
  const target = scatteredEdit(basis, 2, 3000, 10, 23);
  const receiver = (): FineRoundReceiver & { sent: number } => {
    const r = { sent: 0, answer: () => (r.sent++, Promise.resolve()), close: () => undefined };
    return r;
  };
  const concat = (...parts: (Uint8Array | number[])[]) => new Uint8Array(Buffer.concat(parts.map((p) => Uint8Array.from(p))));
  const varint = (value: number) => {
    const out: number[] = [];
    for (let v = value; ; v = Math.floor(v / 128)) {
      if (v < 128) return [...out, v];
      out.push((v % 128) | 0x80);
    }
  };
  const patch = (delta: Uint8Array, to?: FineRoundReceiver) => collect(applyDelta(memoryBasis(basis), chunksOf(delta, 5), { receiver: to }));

  async function validFineDelta(): Promise<Uint8Array> {
    const trip = await fineRoundTrip(basis, target, { blockLength: 2048 });
    assert.equal(trip.delta[4], FINE_FORMAT_VERSION);
    assert.ok(trip.answers > 0);
    return trip.delta;
  }
  const sign = (start: number, length: number, block = FINE_BLOCK_LENGTH, strong = 2) => [0x03, ...varint(start), ...varint(length), ...varint(block), strong];

  it('a SIGN with no way back, a SIGN or COPY_AT in a version 1 delta', async () => {
    const delta = await validFineDelta();
    const header = delta.subarray(0, 28);
    await assert.rejects(patch(delta), /no way back to its sender/);
    const v1 = concat([...header.subarray(0, 4)], [FORMAT_VERSION], header.subarray(5));
    await assert.rejects(patch(concat(v1, sign(0, 4096)), receiver()), /unknown instruction 0x03/);
    await assert.rejects(patch(concat(v1, [0x04, 0, 10]), receiver()), /unknown instruction 0x04/);
  });

  it('SIGN fields out of range: block and hash lengths, a gap too short, too long or past the basis', async () => {
    const header = (await validFineDelta()).subarray(0, 28);
    const cases = [
      sign(0, 4096, 32),
      sign(0, 4096, 128 * 1024),
      sign(0, 4096, 512, 1),
      sign(0, 4096, 512, 17),
      sign(0, 100),
      sign(0, MAX_FINE_GAP_LENGTH + 1),
      sign(basis.length - 1000, 2000),
      sign(basis.length, 512),
    ];
    for (const bytes of cases) await assert.rejects(patch(concat(header, bytes), receiver()), MalformedDeltaError, `SIGN ${bytes.join(' ')}`);
  });

  it('SIGNs asking, in all, for more bytes than the basis has', async () => {
    const header = (await validFineDelta()).subarray(0, 28);
    const to = receiver();
    const gap = 16 * KiB;
    const signs = Array.from({ length: basis.length / gap + 1 }, () => sign(0, gap)).flat();
    await assert.rejects(patch(concat(header, signs), to), /more bytes than the basis has/);
    assert.equal(to.sent, basis.length / gap, 'answered up to the budget');
  });

  it('COPY_AT of zero bytes or past the basis', async () => {
    const header = (await validFineDelta()).subarray(0, 28);
    await assert.rejects(patch(concat(header, [0x04, 0, 0]), receiver()), MalformedDeltaError);
    await assert.rejects(patch(concat(header, [0x04, ...varint(basis.length - 10), 11]), receiver()), MalformedDeltaError);
    await assert.rejects(patch(concat(header, [0x04, ...varint(basis.length), 1]), receiver()), MalformedDeltaError);
  });

  it('random mutations of a fine-round delta only ever throw the engine’s own errors', async () => {
    const delta = await validFineDelta();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), async (changes) => {
        const bytes = delta.slice();
        for (const [at, value] of changes) bytes[at % bytes.length] = value;
        try {
          await patch(bytes, receiver());
        } catch (error) {
          assert.ok(error instanceof DeltaError, `threw ${String(error)}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});
