// A chunked stream (a signature, a delta) arrives in whatever pieces the network makes: the reader
// must hand on every byte in order, join what arrived in several pieces (each piece is a step
// through every stage of the pull after it), and never hold bytes back waiting for more.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Stream } from '@libp2p/interface';
import fc from 'fast-check';
import { JOINED_PIECE_MAX_BYTES } from '../src/protocol/constants.js';
import { CHUNK_RAW, readChunks, StreamReader } from '../src/protocol/streams.js';
import { encodeVarint } from '../src/protocol/varint.js';

/** The parts of a libp2p stream StreamReader uses, fed by hand: `deliver` is the muxer handing over bytes. */
function handFedStream() {
  const target = new EventTarget() as EventTarget & Record<string, unknown>;
  Object.assign(target, { status: 'open', readStatus: 'readable', remoteWriteStatus: 'writable', readBufferLength: 0, maxReadBufferLength: 0, pause() {}, resume() {} });
  return {
    reader: new StreamReader(target as unknown as Stream),
    deliver(...pieces: Uint8Array[]) {
      for (const piece of pieces) target.dispatchEvent(Object.assign(new Event('message'), { data: piece }));
    },
    end() {
      target.dispatchEvent(new Event('remoteCloseWrite'));
    },
  };
}

/** Payloads as raw chunks, then the end marker. */
function chunked(...payloads: Uint8Array[]): Buffer {
  return Buffer.concat([...payloads.flatMap((p) => [Buffer.from(encodeVarint(p.length + 1)), Buffer.of(CHUNK_RAW), p]), Buffer.of(0)]);
}

/** `bytes` cut at the given fractions of its length (sorted, distinct cut points). */
function cut(bytes: Uint8Array, fractions: number[]): Uint8Array[] {
  const at = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b).filter((p) => p > 0 && p < bytes.length);
  return [0, ...at].map((start, i) => bytes.subarray(start, [...at, bytes.length][i]));
}

test('the bytes of chunks come out intact and in order however the network cuts them', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 4 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }), async (lengths, fractions) => {
      const payloads = lengths.map((length) => randomBytes(length));
      const stream = handFedStream();
      stream.deliver(...cut(chunked(...payloads), fractions));
      stream.end();
      const pieces: Uint8Array[] = [];
      for await (const piece of readChunks(stream.reader, 'a test stream')) pieces.push(piece);
      assert.ok(Buffer.concat(pieces).equals(Buffer.concat(payloads)));
      assert.ok(pieces.every((piece) => piece.length <= JOINED_PIECE_MAX_BYTES));
    }),
    { numRuns: 60 },
  );
});

test('pieces that arrived together come out joined, up to the limit', async () => {
  const payload = randomBytes(2 * JOINED_PIECE_MAX_BYTES + 10_000);
  const bytes = chunked(payload);
  const stream = handFedStream();
  // 4 KiB pieces, as a muxer delivers a frame: a list of the buffers it was received in.
  for (let at = 0; at < bytes.length; at += 4096) stream.deliver(bytes.subarray(at, at + 4096));
  stream.end();
  const lengths: number[] = [];
  for await (const piece of readChunks(stream.reader, 'a test stream')) lengths.push(piece.length);
  assert.deepEqual(lengths, [JOINED_PIECE_MAX_BYTES, JOINED_PIECE_MAX_BYTES, 10_000]);
});

test('bytes already here are handed on without waiting for the rest of their chunk', async () => {
  const payload = randomBytes(100_000);
  const bytes = chunked(payload);
  const stream = handFedStream();
  stream.deliver(bytes.subarray(0, 30_000), bytes.subarray(30_000, 50_000));
  const chunks = readChunks(stream.reader, 'a test stream');
  const first = await chunks.next();
  assert.equal(first.done, false);
  // Everything delivered so far but the chunk's 4-byte header, in one piece.
  assert.ok(Buffer.from(first.value).equals(payload.subarray(0, 50_000 - 4)));
  stream.deliver(bytes.subarray(50_000));
  stream.end();
  const rest: Uint8Array[] = [];
  for await (const piece of chunks) rest.push(piece);
  assert.ok(Buffer.concat(rest).equals(payload.subarray(50_000 - 4)));
});
