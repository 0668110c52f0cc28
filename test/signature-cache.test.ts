import assert from 'node:assert/strict';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chunksOf, decodeSignature, signatureOptionsFor } from '../src/delta/index.js';
import { MAX_CACHED_SIGNATURES, MIN_CACHED_SIGNATURE_BYTES, SignatureCache } from '../src/node/signature-cache.js';
import type { SignatureSource } from '../src/node/puller.js';
import { makeSide, sync, type Mesh } from './apply-helpers.js';
import { put, recordOf } from './folder-helpers.js';
import { pseudoRandomBytes } from './helpers.js';

const SIZE = MIN_CACHED_SIGNATURE_BYTES;

/** A pair whose B keeps signatures in a real cache under its .mesh; `hits` counts the pulls that used one. */
async function pairWithCache(t: import('node:test').TestContext) {
  const mesh: Mesh = new Map();
  // B's side is made before its cache (which needs B's folder): the source looks it up when asked.
  const made: { cache?: SignatureCache } = {};
  const counts = { hits: 0 };
  const signatures: SignatureSource = {
    get: async (contentHash, size) => {
      const bytes = await made.cache?.get(contentHash, size);
      if (bytes !== undefined) counts.hits++;
      return bytes;
    },
  };
  const a = await makeSide(t, mesh, 'A', 'aaaaaaaaaaaaaaaa');
  const b = await makeSide(t, mesh, 'B', 'bbbbbbbbbbbbbbbb', { signatures });
  const directory = join(b.root, '.mesh', 'signatures');
  const cache = new SignatureCache(directory, b.root, b.store);
  made.cache = cache;
  t.after(() => cache.close());
  return { a, b, cache, directory, counts };
}

describe('signature cache: a large pulled file is ready for its next edit', () => {
  it('is signed after the pull, and the next edit sends that signature instead of computing one', async (t) => {
    const { a, b, cache, counts } = await pairWithCache(t);
    const original = Buffer.from(pseudoRandomBytes(SIZE, 11));
    await put(a.root, 'disk.img', original);
    await sync(a, b);
    assert.equal(counts.hits, 0, 'nothing cached before the first pull');
    const pulled = await recordOf(b.store, 'disk.img');
    assert.equal(await cache.get(pulled.contentHash, pulled.size), undefined);

    cache.schedule(['disk.img']);
    await cache.flush();
    const cached = await cache.get(pulled.contentHash, pulled.size);
    assert.ok(cached !== undefined, 'no signature made');
    const signature = await decodeSignature(chunksOf(cached));
    assert.equal(signature.fileLength, SIZE);
    assert.equal(signature.blockLength, signatureOptionsFor(SIZE).blockLength);

    const edited = Buffer.from(original);
    edited.fill(9, 5_000_000, 5_010_000);
    await writeFile(join(a.root, 'disk.img'), edited);
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    assert.equal(counts.hits, 1, 'the edit did not use the cached signature');
    const pull = report.applied.find((o) => o.path === 'disk.img')?.pull;
    assert.equal(pull?.basis, 'local');
    assert.ok((pull?.literalBytes ?? Infinity) < 100_000, `the delta against the cached signature sent ${pull?.literalBytes} literal bytes`);
    assert.equal((await recordOf(b.store, 'disk.img')).contentHash.toString(), (await recordOf(a.store, 'disk.img')).contentHash.toString());
  });

  it('signs only a file still as recorded, and drops a damaged entry', async (t) => {
    const { a, b, cache, directory } = await pairWithCache(t);
    await put(a.root, 'video.mp4', pseudoRandomBytes(SIZE, 12));
    await sync(a, b);
    const record = await recordOf(b.store, 'video.mp4');
    // Changed on B since it was recorded (not scanned yet): what it holds is not that content.
    await writeFile(join(b.root, 'video.mp4'), pseudoRandomBytes(SIZE, 13));
    cache.schedule(['video.mp4']);
    await cache.flush();
    assert.equal(await cache.get(record.contentHash, record.size), undefined);
    assert.deepEqual(await readdir(directory).catch(() => []), []);

    const entry = join(directory, `${Buffer.from(record.contentHash).toString('hex')}.sig`);
    await put(directory, `${Buffer.from(record.contentHash).toString('hex')}.sig`, 'not a signature');
    assert.equal(await cache.get(record.contentHash, record.size), undefined);
    assert.deepEqual(await readdir(directory), [], `${entry} was kept`);
  });

  it(`keeps at most ${MAX_CACHED_SIGNATURES} entries, the newest`, async (t) => {
    const { a, b, cache, directory } = await pairWithCache(t);
    const old = Array.from({ length: MAX_CACHED_SIGNATURES + 2 }, (_, i) => `${i.toString(16).padStart(64, '0')}.sig`);
    for (const [i, name] of old.entries()) {
      await put(directory, name, 'old entry');
      const time = new Date(Date.now() - (old.length - i) * 60_000);
      await utimes(join(directory, name), time, time);
    }
    await put(a.root, 'new.bin', pseudoRandomBytes(SIZE, 14));
    await sync(a, b);
    cache.schedule(['new.bin']);
    await cache.flush();
    const left = await readdir(directory);
    assert.equal(left.length, MAX_CACHED_SIGNATURES);
    const record = await recordOf(b.store, 'new.bin');
    assert.ok(left.includes(`${Buffer.from(record.contentHash).toString('hex')}.sig`));
    assert.deepEqual(
      old.filter((name) => !left.includes(name)),
      old.slice(0, 3),
      'not the oldest were removed',
    );
  });
});
