import assert from 'node:assert/strict';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  applyDelta,
  collect,
  decodeSignature,
  encodeDelta,
  FALSE_MATCH_ALLOWANCE,
  FALSE_MATCH_BYTES_PER_CREDIT,
  MAX_CHAIN_WALK,
  newDeltaStats,
  rebuild,
  SeededHash,
  type Signature,
} from '../src/delta/index.js';
import { BlockIndex, prefilterBytes } from '../src/delta/block-index.js';
import { RK_MULT, weakHash } from '../src/delta/rolling-hash.js';
import { chunksOf, equalBytes, pseudoRandomBytes, roundTrip, tempDir, writeChunks } from './helpers.js';

/** A hostile signature: `blocks` blocks that all share one weak hash, with strong hashes that never match. */
function equalWeakSignature(blocks: number, blockLength: number, weak: number): Signature {
  return {
    blockLength,
    strongLength: 16,
    seed: new Uint8Array(8),
    fileLength: blocks * blockLength,
    blockCount: blocks,
    weak: new Int32Array(blocks).fill(weak),
    strong: pseudoRandomBytes(blocks * 16, 5),
  };
}

describe('crafted weak-hash collisions cannot make delta slow', () => {
  it('a lookup walks at most MAX_CHAIN_WALK candidates however many blocks share a weak hash', () => {
    const signature = equalWeakSignature(5 * MAX_CHAIN_WALK, 700, 12345);
    const index = new BlockIndex(signature, signature.blockCount, new Uint8Array(prefilterBytes(signature.blockCount)));
    assert.equal(index.candidates(12345, new Int32Array(MAX_CHAIN_WALK)), MAX_CHAIN_WALK);
  });

  it('a file whose every window hits a crafted weak hash costs a bounded number of strong hashes', async () => {
    const blockLength = 1024;
    const zeros = new Uint8Array(8 * 1024 * 1024);
    // Every window of the zero file has this weak hash; 100,000 blocks claim it, none really match.
    const signature = equalWeakSignature(100_000, blockLength, weakHash(zeros, 0, blockLength));
    const stats = newDeltaStats();
    const delta = await collect(encodeDelta(signature, chunksOf(zeros, 1 << 20), stats));

    // Without the budget every one of the 8 million positions would hash a block and walk 1024
    // candidates; with it, delta gives up after a bounded number and sends the rest as literal data.
    const budget = FALSE_MATCH_ALLOWANCE + zeros.length / FALSE_MATCH_BYTES_PER_CREDIT;
    assert.ok(stats.gaveUp);
    assert.ok(stats.strongHashes <= budget + 2, `${stats.strongHashes} strong hashes (budget ${budget})`);
    assert.equal(stats.literalBytes, zeros.length);
    // And the delta is still right.
    const basis = { length: signature.fileLength, read: () => Promise.reject(new Error('no copy expected')) };
    assert.ok(equalBytes(await collect(applyDelta(basis, chunksOf(delta))), zeros));
  });

  it('honest data with many equal blocks does not run out of budget', async () => {
    const zeros = new Uint8Array(4 * 1024 * 1024);
    const { deltaStats, rebuilt } = await roundTrip(zeros, zeros, { blockLength: 1024, strongLength: 2 });
    assert.ok(!deltaStats.gaveUp);
    assert.equal(deltaStats.literalBytes, 0);
    assert.ok(equalBytes(rebuilt, zeros));
  });
});

/**
 * Two different 700-byte blocks with the same weak hash and the same first two bytes of seeded
 * strong hash. RabinKarp is linear: two 5-byte suffixes with equal polynomial (found by birthday
 * search) give equal weak hashes after any common prefix, so the prefix can then be varied until the
 * 2-byte strong hashes agree too (about 65,000 tries).
 */
async function truncatedCollision(seed: Uint8Array): Promise<[Uint8Array, Uint8Array]> {
  const SUFFIX = 5;
  const suffixes = pseudoRandomBytes(SUFFIX * (1 << 18), 99);
  const seen = new Map<number, number>();
  let pair: [number, number] | undefined;
  for (let i = 0; i < 1 << 18 && pair === undefined; i++) {
    let h = 0;
    for (let k = 0; k < SUFFIX; k++) h = (Math.imul(h, RK_MULT) + suffixes[i * SUFFIX + k]) | 0;
    const j = seen.get(h);
    const differs = j !== undefined && !equalBytes(suffixes.subarray(j * SUFFIX, j * SUFFIX + SUFFIX), suffixes.subarray(i * SUFFIX, i * SUFFIX + SUFFIX));
    if (j !== undefined && differs) pair = [j, i];
    seen.set(h, i);
  }
  assert.ok(pair, 'no weak-hash collision among 2^18 suffixes');
  const strong = await SeededHash.create(seed);
  const x = new Uint8Array(700);
  const y = new Uint8Array(700);
  x.set(suffixes.subarray(pair[0] * SUFFIX, pair[0] * SUFFIX + SUFFIX), 700 - SUFFIX);
  y.set(suffixes.subarray(pair[1] * SUFFIX, pair[1] * SUFFIX + SUFFIX), 700 - SUFFIX);
  for (let prefix = 0; prefix < 1 << 22; prefix++) {
    const bytes = [prefix & 255, (prefix >>> 8) & 255, prefix >>> 16];
    x.set(bytes, 0);
    y.set(bytes, 0);
    const sx = strong.digest(x);
    const sy = strong.digest(y);
    if (sx[0] === sy[0] && sx[1] === sy[1]) return [x, y];
  }
  throw new Error('no strong-hash collision found');
}

describe('truncated strong hashes are verified by the whole-file hash and retried at full length', () => {
  it('a false block match is caught, and the rebuild retries with full hashes and gets it right', async (t) => {
    const seed = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const [x, y] = await truncatedCollision(seed);
    assert.ok(!equalBytes(x, y));
    assert.equal(weakHash(x, 0, 700), weakHash(y, 0, 700));

    const rest = pseudoRandomBytes(7000, 3);
    const dir = await tempDir(t);
    const basisPath = join(dir, 'basis');
    const newBytes = new Uint8Array(Buffer.concat([y, rest]));
    await writeFile(basisPath, Buffer.concat([x, rest]));

    const sent: string[] = [];
    let rebuilt: Uint8Array = new Uint8Array(0);
    const result = await rebuild({
      basisPath,
      firstSeed: seed,
      exchange: (signature, attempt) => {
        sent.push(attempt);
        return (async function* () {
          const decoded = await decodeSignature(signature);
          // The first signature holds 2-byte strong hashes: small enough to collide here.
          if (attempt === 'truncated') assert.equal(decoded.strongLength, 2);
          yield* encodeDelta(decoded, chunksOf(newBytes));
        })();
      },
      write: async (chunks) => {
        rebuilt = await collect(chunks);
      },
    });
    assert.deepEqual(result.attempts, ['truncated', 'full']);
    assert.deepEqual(sent, ['truncated', 'full']);
    assert.ok(equalBytes(rebuilt, newBytes));
    // The full-length attempt still reused the basis: only the colliding block went as literal.
    assert.equal(result.stats.literalBytes, 700);
    assert.deepEqual(await readFile(basisPath), Buffer.concat([x, rest]));
  });

  it('the retry uses what the failed attempt wrote as its basis, when set aside: the new data is not sent again', async (t) => {
    const seed = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const [x, y] = await truncatedCollision(seed);
    const rest = pseudoRandomBytes(7000, 3);
    // New data the basis does not hold: sent once as literal, by the attempt that fails.
    const fresh = pseudoRandomBytes(100 * 700, 4);
    const newBytes = new Uint8Array(Buffer.concat([y, rest, fresh]));
    const dir = await tempDir(t);
    const basisPath = join(dir, 'basis');
    const outPath = join(dir, 'out');
    const asidePath = join(dir, 'out.failed');
    await writeFile(basisPath, Buffer.concat([x, rest]));

    const literalPerAttempt: number[] = [];
    const result = await rebuild({
      basisPath,
      firstSeed: seed,
      exchange: (signature) =>
        (async function* () {
          const stats = newDeltaStats();
          yield* encodeDelta(await decodeSignature(signature), chunksOf(newBytes), stats);
          literalPerAttempt.push(stats.literalBytes);
        })(),
      // As a puller writes: chunk by chunk, so a failed attempt leaves all it wrote.
      write: (chunks) => writeChunks(outPath, chunks),
      setAsideFailed: async () => {
        await rename(outPath, asidePath);
        return asidePath;
      },
    });
    assert.deepEqual(result.attempts, ['truncated', 'full']);
    assert.ok(equalBytes(await readFile(outPath), newBytes));
    // The failed attempt sent the fresh data (and copied x for y); the retry only the block y.
    assert.deepEqual(literalPerAttempt, [fresh.length, 700]);
    assert.equal(result.stats.literalBytes, 700);
    assert.equal(result.failedLiteralBytes, fresh.length);
    assert.deepEqual(await readFile(basisPath), Buffer.concat([x, rest]));
  });
});
