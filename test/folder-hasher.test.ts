import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ReadableFile } from '../src/folder/folder-fs.js';
import { BlockHasher, EMPTY_FILE_CONTENT_HASH, hashFile, hashOpenFile, symlinkContentHash } from '../src/folder/hasher.js';
import { BLOCK_HASH_BYTES, BLOCK_HASH_LENGTH } from '../src/store/types.js';
import { pseudoRandomBytes, tempDir } from './helpers.js';

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

/** The definition, written the slow obvious way. */
function reference(data: Uint8Array): { blockHashes: Buffer; contentHash: Buffer } {
  const blocks: Buffer[] = [];
  for (let at = 0; at < data.length; at += BLOCK_HASH_LENGTH) blocks.push(sha256(data.subarray(at, at + BLOCK_HASH_LENGTH)));
  const blockHashes = Buffer.concat(blocks);
  return { blockHashes, contentHash: sha256(blockHashes) };
}

/** An in-memory file whose reads return at most `maxRead` bytes, as a pipe or a network disk may. */
function memoryFile(data: Uint8Array, maxRead = Infinity): ReadableFile {
  return {
    stat: () => Promise.reject(new Error('not used')),
    read: (buffer, position) => {
      const piece = data.subarray(position, Math.min(data.length, position + buffer.length, position + maxRead));
      buffer.set(piece);
      return Promise.resolve(piece.length);
    },
    close: () => Promise.resolve(),
  };
}

describe('file hasher', () => {
  it('an empty file has no blocks and the SHA-256 of nothing as content hash', async (t) => {
    const path = join(await tempDir(t), 'empty');
    await writeFile(path, '');
    const hashes = await hashFile(path);
    assert.equal(hashes.size, 0);
    assert.equal(hashes.blockHashes.length, 0);
    assert.deepEqual(Buffer.from(hashes.contentHash), sha256(new Uint8Array(0)));
    assert.deepEqual(Buffer.from(EMPTY_FILE_CONTENT_HASH), sha256(new Uint8Array(0)));
  });

  it('matches the definition at block boundaries and across read chunks', async (t) => {
    const dir = await tempDir(t);
    const sizes = [1, BLOCK_HASH_LENGTH - 1, BLOCK_HASH_LENGTH, BLOCK_HASH_LENGTH + 1, 8 * BLOCK_HASH_LENGTH, 8 * BLOCK_HASH_LENGTH + 5, 3_000_001];
    for (const size of sizes) {
      const data = pseudoRandomBytes(size, size);
      const path = join(dir, `f${size}`);
      await writeFile(path, data);
      const hashes = await hashFile(path);
      const expected = reference(data);
      assert.equal(hashes.size, size);
      assert.equal(hashes.blockHashes.length, Math.ceil(size / BLOCK_HASH_LENGTH) * BLOCK_HASH_BYTES);
      assert.deepEqual(Buffer.from(hashes.blockHashes), expected.blockHashes, `block hashes of ${size} bytes`);
      assert.deepEqual(Buffer.from(hashes.contentHash), expected.contentHash, `content hash of ${size} bytes`);
    }
  });

  it('does not depend on how the bytes are split (short reads, any chunking)', async () => {
    const data = pseudoRandomBytes(3 * BLOCK_HASH_LENGTH + 777, 42);
    const expected = reference(data);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1000, max: 300_000 }), async (cuts, maxRead) => {
        const hasher = new BlockHasher();
        let at = 0;
        for (const cut of cuts) {
          hasher.update(data.subarray(at, Math.min(data.length, at + cut)));
          at = Math.min(data.length, at + cut);
        }
        hasher.update(data.subarray(at));
        assert.deepEqual(Buffer.from(hasher.digest().contentHash), expected.contentHash);
        // Short reads (with the size stat gave), and a wrong size hint (a file that grew), give the
        // same answer. (Both at once may stop early: the scanner sees the size differ and retries.)
        for (const [file, expectedSize] of [[memoryFile(data, maxRead), data.length], [memoryFile(data), maxRead]] as const) {
          const fromFile = await hashOpenFile(file, { expectedSize });
          assert.deepEqual(Buffer.from(fromFile.blockHashes), expected.blockHashes);
          assert.equal(fromFile.size, data.length);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a symlink is identified by the SHA-256 of its target', () => {
    assert.deepEqual(Buffer.from(symlinkContentHash('../a b/中文')), sha256('../a b/中文'));
  });
});
