import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  applyDelta,
  BasisMismatchError,
  collect,
  decodeSignature,
  DeltaError,
  MalformedDeltaError,
  MalformedSignatureError,
  VerificationError,
} from '../src/delta/index.js';
import { chunksOf, memoryBasis, pseudoRandomBytes, roundTrip } from './helpers.js';

const BLOCK = 100;
const oldBytes = pseudoRandomBytes(1000, 1);
const newBytes = new Uint8Array(Buffer.concat([oldBytes.subarray(0, 500), Uint8Array.of(9, 9, 9), oldBytes.subarray(520)]));
const valid = await roundTrip(oldBytes, newBytes, { blockLength: BLOCK, strongLength: 4 });

function decode(bytes: Uint8Array) {
  return decodeSignature(chunksOf(bytes, 7));
}

function patch(delta: Uint8Array, basis = oldBytes) {
  return collect(applyDelta(memoryBasis(basis), chunksOf(delta, 7)));
}

function edited(bytes: Uint8Array, at: number, ...values: number[]): Uint8Array {
  const copy = bytes.slice();
  copy.set(values, at);
  return copy;
}

const concat = (...parts: (Uint8Array | number[])[]) => new Uint8Array(Buffer.concat(parts.map((p) => Uint8Array.from(p))));

describe('a malformed signature is rejected with MalformedSignatureError', () => {
  const sig = valid.signature;
  const header = sig.subarray(0, 20);

  it('accepts the valid signature it starts from', async () => {
    const decoded = await decode(sig);
    assert.equal(decoded.blockCount, 10);
    assert.equal(decoded.fileLength, 1000);
  });

  it('wrong magic, version, reserved bits, strong length or block length', async () => {
    const cases = {
      magic: edited(sig, 0, 0x42),
      version: edited(sig, 4, 2),
      'strong length 0': edited(sig, 5, 0),
      'strong length 1': edited(sig, 5, 1),
      'strong length 17': edited(sig, 5, 17),
      reserved: edited(sig, 7, 1),
      'block length 0': edited(sig, 8, 0, 0, 0, 0),
      'block length 4 GiB': edited(sig, 8, 0xff, 0xff, 0xff, 0xff),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      await assert.rejects(decode(bytes), MalformedSignatureError, name);
    }
  });

  it('truncated at every length', async () => {
    for (let length = 0; length < sig.length; length++) {
      await assert.rejects(decode(sig.subarray(0, length)), MalformedSignatureError, `truncated to ${length}`);
    }
  });

  it('trailing bytes after the end', async () => {
    await assert.rejects(decode(concat(sig, [0])), MalformedSignatureError);
  });

  it('counts and lengths that disagree', async () => {
    const end = (high: number, low: number) => concat([0, 0, 0, 0], [high >>> 24, (high >>> 16) & 255, (high >>> 8) & 255, high & 255], [low >>> 24, (low >>> 16) & 255, (low >>> 8) & 255, low & 255]);
    // Ten records, but a file length that needs eleven blocks or nine.
    const records = sig.subarray(20, sig.length - 12);
    await assert.rejects(decode(concat(header, records, end(0, 1001))), MalformedSignatureError);
    await assert.rejects(decode(concat(header, records, end(0, 900))), MalformedSignatureError);
    // A file length beyond 2^53.
    await assert.rejects(decode(concat(header, records, end(0x00200000, 0))), MalformedSignatureError);
    // A chunk claiming more records than a chunk may hold, or far more than are sent.
    await assert.rejects(decode(concat(header, [0, 0, 0x10, 0x01])), MalformedSignatureError);
    await assert.rejects(decode(concat(header, [0, 0, 0x10, 0x00], records)), MalformedSignatureError);
    // A million blocks claimed by a file length, with none sent.
    await assert.rejects(decode(concat(header, end(0, 100_000_000))), MalformedSignatureError);
  });

  it('random mutations only ever throw MalformedSignatureError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), async (changes) => {
        const bytes = sig.slice();
        for (const [at, value] of changes) bytes[at % bytes.length] = value;
        try {
          await decode(bytes);
        } catch (error) {
          assert.ok(error instanceof MalformedSignatureError, `threw ${String(error)}`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('a malformed delta is rejected with a typed error', () => {
  const delta = valid.delta;
  const header = delta.subarray(0, 28);
  const endOp = (length: number, hash: Uint8Array) => concat([0x00, length], hash);
  const zeroHash = new Uint8Array(16);

  it('applies the valid delta it starts from', async () => {
    assert.deepEqual(await patch(delta), newBytes);
  });

  it('wrong magic, version, reserved bits or block length', async () => {
    for (const bytes of [edited(delta, 0, 0), edited(delta, 4, 9), edited(delta, 5, 1), edited(delta, 8, 0, 0, 0, 1)]) {
      await assert.rejects(patch(bytes), MalformedDeltaError);
    }
  });

  it('a basis of another length is refused before anything is written', async () => {
    await assert.rejects(patch(delta, oldBytes.subarray(0, 999)), BasisMismatchError);
  });

  it('truncated at every length', async () => {
    for (let length = 0; length < delta.length; length++) {
      await assert.rejects(patch(delta.subarray(0, length)), MalformedDeltaError, `truncated to ${length}`);
    }
  });

  it('copies out of range, of zero blocks, or overflowing the basis', async () => {
    const copy = (start: number, count: number) => concat(header, [0x01, start, count]);
    await assert.rejects(patch(copy(10, 1)), MalformedDeltaError);
    await assert.rejects(patch(copy(0, 0)), MalformedDeltaError);
    await assert.rejects(patch(copy(9, 2)), MalformedDeltaError);
    await assert.rejects(patch(concat(header, [0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])), MalformedDeltaError);
  });

  it('literal lengths of zero, over 1 MiB, or longer than the data', async () => {
    await assert.rejects(patch(concat(header, [0x02, 0x00])), MalformedDeltaError);
    await assert.rejects(patch(concat(header, [0x02, 0x81, 0x80, 0x40])), MalformedDeltaError);
    await assert.rejects(patch(concat(header, [0x02, 0x10, 1, 2, 3])), MalformedDeltaError);
  });

  it('a 10-byte varint, a redundant varint byte, an unknown instruction, trailing bytes', async () => {
    const tenBytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    await assert.rejects(patch(concat(header, [0x02], tenBytes)), MalformedDeltaError);
    await assert.rejects(patch(concat(header, [0x02, 0x81, 0x00])), MalformedDeltaError);
    await assert.rejects(patch(concat(header, [0x7f])), MalformedDeltaError);
    await assert.rejects(patch(concat(delta, [0])), MalformedDeltaError);
  });

  it('a rebuilt file whose hash or length does not match is refused', async () => {
    // Flip one byte of literal data: the whole-file hash catches it.
    const literalAt = delta.findIndex((_, i) => i >= 28 && delta[i] === 0x02);
    const flipped = delta.slice();
    flipped[literalAt + 3] ^= 1;
    await assert.rejects(patch(flipped), VerificationError);
    await assert.rejects(patch(concat(header, endOp(5, zeroHash))), VerificationError);
    await assert.rejects(patch(concat(header, endOp(0, zeroHash))), VerificationError);
  });

  it('a caller that checks the content itself skips the file hash only where no block was matched', async () => {
    const checked = (bytes: Uint8Array, basis: Uint8Array) => collect(applyDelta(memoryBasis(basis), chunksOf(bytes, 7), { contentCheckedByCaller: true }));
    const wrongHash = (bytes: Uint8Array) => edited(bytes, bytes.length - 1, bytes[bytes.length - 1] ^ 1);
    // No basis: every byte is a literal, and the caller's own hash (the puller's SHA-256) judges them.
    const fresh = await roundTrip(new Uint8Array(0), newBytes);
    assert.deepEqual(await checked(wrongHash(fresh.delta), new Uint8Array(0)), newBytes);
    await assert.rejects(patch(wrongHash(fresh.delta), new Uint8Array(0)), VerificationError);
    // A basis: blocks matched by truncated hashes may be wrong, and rebuild() retries only on this error.
    await assert.rejects(checked(wrongHash(delta), oldBytes), VerificationError);
  });

  it('random mutations only ever throw the engine’s own errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), async (changes) => {
        const bytes = delta.slice();
        for (const [at, value] of changes) bytes[at % bytes.length] = value;
        try {
          await patch(bytes);
        } catch (error) {
          assert.ok(error instanceof DeltaError, `threw ${String(error)}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes only ever throw the engine’s own errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), async (bytes, withHeader) => {
        const input = withHeader ? concat(header, bytes) : bytes;
        await assert.rejects(patch(input), (error) => error instanceof DeltaError);
        await assert.rejects(decode(input), (error) => error instanceof MalformedSignatureError);
      }),
      { numRuns: 300 },
    );
  });

  it('a malformed signature or delta lets go of its source at once (a file is closed, not left to the collector)', async () => {
    const tracked = (bytes: Uint8Array) => {
      const state = { closed: false };
      async function* source(): AsyncGenerator<Uint8Array> {
        try {
          yield* chunksOf(bytes, 7);
        } finally {
          state.closed = true;
        }
      }
      return { state, source: source() };
    };
    const signature = tracked(edited(valid.signature, 0, 0));
    await assert.rejects(decodeSignature(signature.source), MalformedSignatureError);
    assert.ok(signature.state.closed, 'the signature source is still open');
    const delta = tracked(edited(valid.delta, 40, 0xff));
    await assert.rejects(collect(applyDelta(memoryBasis(oldBytes), delta.source)), DeltaError);
    assert.ok(delta.state.closed, 'the delta source is still open');
  });
});
