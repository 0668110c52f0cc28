import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyDelta, blockLengthFor, decodeSignature, encodeDelta, encodeSignature, MAX_LITERAL_LENGTH, signatureOptionsFor, strongLengthFor, strongLengthForComparisons } from '../src/delta/index.js';
import { chunksOf, equalBytes, memoryBasis, pseudoRandomBytes, roundTrip } from './helpers.js';

const BLOCK = 700;

async function check(oldBytes: Uint8Array, newBytes: Uint8Array) {
  const result = await roundTrip(oldBytes, newBytes, { blockLength: BLOCK, strongLength: 16 });
  assert.ok(equalBytes(result.rebuilt, newBytes), 'rebuilt file differs from the new file');
  return result;
}

describe('delta edge cases', () => {
  const file = pseudoRandomBytes(50_000, 7);

  it('empty old and empty new', async () => {
    const { delta } = await check(new Uint8Array(0), new Uint8Array(0));
    assert.ok(delta.length < 64);
  });

  it('empty old, non-empty new: everything is literal', async () => {
    const { deltaStats } = await check(new Uint8Array(0), file);
    assert.equal(deltaStats.literalBytes, file.length);
  });

  it('non-empty old, empty new', async () => {
    await check(file, new Uint8Array(0));
  });

  it('one byte, changed and unchanged', async () => {
    await check(Uint8Array.of(1), Uint8Array.of(2));
    const { deltaStats } = await check(Uint8Array.of(1), Uint8Array.of(1));
    assert.equal(deltaStats.copiedBytes, 1);
  });

  it('files smaller than one block', async () => {
    const small = pseudoRandomBytes(BLOCK - 1, 3);
    const { deltaStats } = await check(small, small);
    assert.equal(deltaStats.literalBytes, 0, 'an unchanged short file is copied');
    await check(small, small.slice(0, 300));
  });

  it('identical files: one COPY, a delta of a few dozen bytes', async () => {
    const { delta, deltaStats } = await check(file, file);
    assert.equal(deltaStats.literalBytes, 0);
    assert.ok(delta.length < 64, `delta of ${delta.length} bytes for an unchanged file`);
  });

  it('nothing in common: all literal', async () => {
    const other = pseudoRandomBytes(50_000, 8);
    const { deltaStats } = await check(file, other);
    assert.equal(deltaStats.copiedBytes, 0);
  });

  it('an edit in the first byte and in the last byte costs one block each', async () => {
    const first = file.slice();
    first[0] ^= 0xff;
    assert.equal((await check(file, first)).deltaStats.literalBytes, BLOCK);
    const last = file.slice();
    last[last.length - 1] ^= 0xff;
    const tail = file.length % BLOCK;
    assert.equal((await check(file, last)).deltaStats.literalBytes, tail);
  });

  it('short pieces and long copies come out in order', async () => {
    // A short COPY and a literal (gathered into one write) followed by a COPY of megabytes.
    const big = pseudoRandomBytes(3 * 1024 * 1024, 11);
    const changed = new Uint8Array(Buffer.concat([big.subarray(0, 2000), Uint8Array.of(1), big.subarray(2000)]));
    await check(big, changed);
    const scattered = big.slice();
    // Runs of ~700 KB between edits: one piece each, larger than half a write buffer.
    for (let at = 0; at < scattered.length; at += 700_000) scattered[at] ^= 1;
    await check(big, scattered);
  });

  it('a file made of one repeated block copies it as runs', async () => {
    const zeros = new Uint8Array(100 * BLOCK);
    const { delta } = await check(zeros, zeros);
    assert.ok(delta.length < 64, `delta of ${delta.length} bytes for unchanged zeros`);
  });
});

describe('a delta streams', () => {
  it("a new file's delta comes out a literal at a time, in buffers no larger than one literal needs", async () => {
    const newFile = pseudoRandomBytes(5 * MAX_LITERAL_LENGTH + 12_345, 11);
    const signatureBytes: Uint8Array[] = [];
    for await (const chunk of encodeSignature(chunksOf(new Uint8Array(0)), signatureOptionsFor(0))) signatureBytes.push(chunk);
    const signature = await decodeSignature(chunksOf(Buffer.concat(signatureBytes)));
    const chunks: Uint8Array[] = [];
    for await (const chunk of encodeDelta(signature, chunksOf(newFile, 1024 * 1024))) chunks.push(chunk);
    const literalChunks = chunks.filter((chunk) => chunk.length > 1024);
    assert.ok(literalChunks.length >= 5, `${literalChunks.length} chunks for 5 literals`);
    for (const chunk of chunks) {
      // The header, an opcode and a varint at most beside one literal; its buffer grew for no second one.
      assert.ok(chunk.length <= MAX_LITERAL_LENGTH + 64, `a chunk of ${chunk.length} bytes`);
      assert.ok(chunk.buffer.byteLength < 2 * MAX_LITERAL_LENGTH, `a chunk in a buffer of ${chunk.buffer.byteLength} bytes`);
    }
  });
});

describe('block and strong-hash sizes follow rsync', () => {
  it('700-byte blocks up to 490,000 bytes, then sqrt rounded to 8, capped at 128 KiB', () => {
    assert.equal(blockLengthFor(0), 700);
    assert.equal(blockLengthFor(490_000), 700);
    assert.equal(blockLengthFor(256 * 1024 * 1024), 16384);
    assert.equal(blockLengthFor(1_000_000), 1000);
    assert.equal(blockLengthFor(10 * 2 ** 30) % 8, 0);
    assert.equal(blockLengthFor(2 ** 40), 128 * 1024);
  });

  it('3 strong bytes for 256 MiB in 16 KiB blocks, as rsync; never below 2 or above 16', () => {
    assert.equal(strongLengthFor(256 * 1024 * 1024, 16384), 3);
    assert.equal(strongLengthFor(100, 700), 2);
    assert.ok(strongLengthFor(2 ** 52, 128 * 1024) <= 16);
  });

  it('the fine round counts the whole file: a 4 MiB gap of a 256 MiB file gets 3 bytes, as the same gap alone would not', () => {
    const fineBlocks = (4 * 1024 * 1024) / 512;
    assert.equal(strongLengthForComparisons(256 * 1024 * 1024, fineBlocks), 3);
    assert.equal(strongLengthForComparisons(4 * 1024 * 1024, fineBlocks), 2);
    assert.equal(strongLengthForComparisons(256 * 1024 * 1024, 64), 2);
    assert.equal(strongLengthForComparisons(2 ** 52, 2 ** 23), 7);
  });
});

describe('a delta that breaks off', () => {
  it('passes on every byte rebuilt before the break, then the error (an interrupted pull keeps them)', async () => {
    const newBytes = pseudoRandomBytes(3 * 1024 * 1024, 11);
    const { delta } = await roundTrip(new Uint8Array(0), newBytes);
    const cut = 2 * 1024 * 1024;
    async function* brokenOff(): AsyncGenerator<Uint8Array> {
      yield* chunksOf(delta.subarray(0, cut));
      throw new Error('connection lost');
    }
    const out: Uint8Array[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of applyDelta(memoryBasis(new Uint8Array(0)), brokenOff())) out.push(Uint8Array.from(chunk));
      })(),
      { message: 'connection lost' },
    );
    const got = Buffer.concat(out);
    // All but the delta's header and instruction bytes: nothing held back in the patcher's queue.
    assert.ok(got.length > cut - 1024, `${got.length} bytes passed on of a delta cut at ${cut}`);
    assert.ok(equalBytes(got, newBytes.subarray(0, got.length)), 'the bytes passed on are the start of the new file');
  });
});
