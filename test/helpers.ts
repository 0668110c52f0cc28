import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import {
  applyDelta,
  collect,
  decodeSignature,
  encodeDelta,
  encodeSignature,
  newDeltaStats,
  newPatchStats,
  signatureOptionsFor,
  type Basis,
  type DeltaStats,
  type PatchStats,
  type SignatureOptions,
} from '../src/delta/index.js';

/** A fresh temp directory, removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'mesh-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
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
  const rebuilt = await collect(applyDelta(memoryBasis(oldBytes), chunksOf(delta, options.chunk), patchStats));
  return { rebuilt, signature, delta, deltaStats, patchStats };
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
