import { spawnSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import {
  applyDelta,
  collect,
  decodeSignature,
  encodeDelta,
  encodeDeltaWithFineRound,
  encodeSignature,
  FineRoundAnswers,
  newDeltaStats,
  newPatchStats,
  signatureOptionsFor,
  type Basis,
  type DeltaStats,
  type FineRoundSender,
  type PatchStats,
  type SignatureOptions,
} from '../src/delta/index.js';

/** A fresh temp directory, removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'mesh-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `chunks` to the file at `path` (created or truncated) one by one, as a puller does: a failure leaves what came before it. */
export async function writeChunks(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for await (const chunk of chunks) await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

/** Yields `bytes` in pieces of `chunk` bytes, as a file or socket would. */
export async function* chunksOf(bytes: Uint8Array, chunk = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) yield bytes.slice(at, at + chunk);
}

export function memoryBasis(bytes: Uint8Array): Basis {
  return {
    length: bytes.length,
    read: (target, position) => {
      const piece = bytes.subarray(position, position + target.length);
      target.set(piece);
      return Promise.resolve(piece.length);
    },
  };
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export interface RoundTrip {
  rebuilt: Uint8Array;
  signature: Uint8Array;
  delta: Uint8Array;
  deltaStats: DeltaStats;
  patchStats: PatchStats;
}

/** patch(old, delta(signature(old), new)) with each stage streamed through its encoded bytes. */
export async function roundTrip(
  oldBytes: Uint8Array,
  newBytes: Uint8Array,
  options: Partial<SignatureOptions> & { chunk?: number } = {},
): Promise<RoundTrip> {
  const sizing = { ...signatureOptionsFor(oldBytes.length), ...options };
  const signature = await collect(encodeSignature(chunksOf(oldBytes, options.chunk), sizing));
  const decoded = await decodeSignature(chunksOf(signature, options.chunk));
  const deltaStats = newDeltaStats();
  const delta = await collect(encodeDelta(decoded, chunksOf(newBytes, options.chunk), deltaStats));
  const patchStats = newPatchStats();
  const rebuilt = await collect(applyDelta(memoryBasis(oldBytes), chunksOf(delta, options.chunk), { stats: patchStats }));
  return { rebuilt, signature, delta, deltaStats, patchStats };
}

/**
 * Everything an async iterable yields, each chunk copied before the next is asked for: what a
 * consumer of a source that reuses its buffers (applyDelta's `recycle`) must do.
 */
export async function collectCopies(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return new Uint8Array(Buffer.concat(parts));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The user the permission tests run mesh as, when they run as root: nobody / nogroup. */
export const UNPRIVILEGED = 65534;

/**
 * Whether node can run as UNPRIVILEGED and read this repository. Root reads everything, so a
 * permission test is only real as another user; a checkout under a private folder rules it out.
 */
export function canRunUnprivileged(): boolean {
  const probe = `require('fs').accessSync(${JSON.stringify(fileURLToPath(new URL('../node_modules/tsx/package.json', import.meta.url)))})`;
  const result = spawnSync(process.execPath, ['-e', probe], { uid: UNPRIVILEGED, gid: UNPRIVILEGED, cwd: tmpdir() });
  return result.error === undefined && result.status === 0;
}

/** Linux with glibc: where mesh calls libc itself (malloc_trim, madvise) through koffi. */
export function isGlibcLinux(): boolean {
  const report = process.report.getReport() as { header: { glibcVersionRuntime?: string } };
  return process.platform === 'linux' && report.header.glibcVersionRuntime !== undefined;
}

export interface FineRoundTrip extends RoundTrip {
  /** Bytes of the receiver's answers to the fine round. */
  answerBytes: number;
  answers: number;
}

/**
 * A fine-round sender's `nextAnswer` over the patch's answers as one byte stream (batches of
 * concatenated answers), as the transfer protocol carries them: each call takes the next `length`
 * bytes, in call order; `taken` is told each answer's length.
 */
export function answerStreamReader(answers: AsyncIterable<Uint8Array>, taken: (length: number) => void = () => undefined): FineRoundSender['nextAnswer'] {
  const iterator = answers[Symbol.asyncIterator]();
  let pending: Uint8Array = new Uint8Array(0);
  let previous: Promise<unknown> = Promise.resolve();
  return (length) => {
    const answer = previous.then(async () => {
      while (pending.length < length) {
        const next = await iterator.next();
        if (next.done === true) throw new Error('the patch closed its answers early');
        pending = new Uint8Array(Buffer.concat([pending, next.value]));
      }
      const bytes = pending.slice(0, length);
      pending = pending.subarray(length);
      taken(length);
      return bytes;
    });
    previous = answer.catch(() => undefined);
    return answer;
  };
}

/**
 * As roundTrip, with the fine round: the sender and the patch run together in this process, the
 * patch's answers fed back to the sender as the transfer protocol would.
 */
export async function fineRoundTrip(
  oldBytes: Uint8Array,
  newBytes: Uint8Array,
  options: Partial<SignatureOptions> & { chunk?: number; reread?: Uint8Array } = {},
): Promise<FineRoundTrip> {
  const sizing = { ...signatureOptionsFor(oldBytes.length), ...options };
  const signature = await collect(encodeSignature(chunksOf(oldBytes, options.chunk), sizing));
  const decoded = await decodeSignature(chunksOf(signature, options.chunk));
  const answers = new FineRoundAnswers();
  let answerBytes = 0;
  let answerCount = 0;
  const sender: FineRoundSender = {
    nextAnswer: answerStreamReader(answers, (length) => {
      answerBytes += length;
      answerCount++;
    }),
    // `reread`: what the file holds when the sender reads it again (it changed during the transfer).
    readTarget: (start, end) => chunksOf((options.reread ?? newBytes).subarray(start, end), options.chunk),
  };
  const deltaStats = newDeltaStats();
  const parts: Uint8Array[] = [];
  async function* tapped(): AsyncGenerator<Uint8Array> {
    for await (const chunk of encodeDeltaWithFineRound(decoded, chunksOf(newBytes, options.chunk), sender, deltaStats)) {
      parts.push(chunk.slice());
      yield chunk;
    }
  }
  const patchStats = newPatchStats();
  // As mesh join runs it: the patch reuses its buffers, the consumer copies each piece.
  const rebuilt = await collectCopies(applyDelta(memoryBasis(oldBytes), tapped(), { stats: patchStats, receiver: answers, recycle: true }));
  const delta = new Uint8Array(Buffer.concat(parts));
  return { rebuilt, signature, delta, deltaStats, patchStats, answerBytes, answers: answerCount };
}
