// The puller's temp file writer: pieces of any size become the same file, in large writes, and the
// hashes it returns are those of the file on disk (it verifies without reading the file back).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { hashFile } from '../src/folder/hasher.js';
import { EARLY_SYNC_BYTES, GATHERED_WRITE_BYTES, GatheredWriter } from '../src/node/gathered-writer.js';
import { tempDir } from './helpers.js';

async function writeInPieces(file: string, data: Buffer, sizes: readonly number[], expectedSize = data.length) {
  const handle = await open(file, 'wx');
  try {
    const writer = new GatheredWriter(handle, expectedSize);
    let at = 0;
    for (let i = 0; at < data.length; i++) {
      const size = sizes[i % sizes.length];
      // A view of a larger buffer the caller then scribbles over: the writer must have copied it.
      const piece = Buffer.from(data.subarray(at, at + size));
      await writer.write(piece);
      piece.fill(0xee);
      at += size;
    }
    return await writer.finish();
  } finally {
    await handle.close();
  }
}

test('pieces of any size become the file, and the hashes returned are those of the file on disk', async (t) => {
  const dir = await tempDir(t, 'mesh-gathered-');
  const data = randomBytes(3 * GATHERED_WRITE_BYTES + 12_345);
  const cases: [string, number[], number?][] = [
    ['small pieces', [1, 7, 1000, 65_536, 4093]],
    ['pieces larger than the buffer', [GATHERED_WRITE_BYTES + 3, 2 * GATHERED_WRITE_BYTES]],
    ['an expected size far too small', [50_000], 10],
  ];
  for (const [name, sizes, expected] of cases) {
    const file = path.join(dir, name);
    const hashes = await writeInPieces(file, data, sizes, expected);
    assert.ok((await readFile(file)).equals(data), `${name}: the file has other bytes`);
    const onDisk = await hashFile(file);
    assert.equal(hashes.size, data.length, name);
    assert.ok(Buffer.from(hashes.contentHash).equals(Buffer.from(onDisk.contentHash)), `${name}: content hash`);
    assert.ok(Buffer.from(hashes.blockHashes).equals(Buffer.from(onDisk.blockHashes)), `${name}: block hashes`);
  }
});

test('an empty file has the hashes of an empty file', async (t) => {
  const file = path.join(await tempDir(t, 'mesh-gathered-'), 'empty');
  const hashes = await writeInPieces(file, Buffer.alloc(0), [1], 0);
  const onDisk = await hashFile(file);
  assert.equal(hashes.size, 0);
  assert.ok(Buffer.from(hashes.contentHash).equals(Buffer.from(onDisk.contentHash)));
});

test('after a failure of the source, settle() leaves every byte received in the file (the next basis)', async (t) => {
  const file = path.join(await tempDir(t, 'mesh-gathered-'), 'partial');
  const received = randomBytes(GATHERED_WRITE_BYTES + 777);
  const handle = await open(file, 'wx');
  try {
    const writer = new GatheredWriter(handle, 10 * GATHERED_WRITE_BYTES);
    await writer.write(received.subarray(0, 1000));
    await writer.write(received.subarray(1000));
    await writer.settle();
    assert.equal(writer.written, received.length);
  } finally {
    await handle.close();
  }
  assert.ok((await readFile(file)).equals(received));
});

/** Writes `length` patterned bytes to a new file through a GatheredWriter whose handle's datasync is `datasync`. */
async function writeLarge(file: string, length: number, datasync: () => Promise<void>) {
  const handle = await open(file, 'wx');
  // Only this handle's background flushes are replaced; its writes are real.
  handle.datasync = datasync;
  const piece = Buffer.alloc(GATHERED_WRITE_BYTES, 0x61);
  try {
    const writer = new GatheredWriter(handle, length);
    for (let at = 0; at < length; at += piece.length) await writer.write(piece.subarray(0, Math.min(piece.length, length - at)));
    return await writer.finish();
  } finally {
    await handle.close();
  }
}

test('a large file is flushed to the disk as it is written, and a failed flush fails the write', async (t) => {
  const dir = await tempDir(t, 'mesh-gathered-');
  const length = 2 * EARLY_SYNC_BYTES + GATHERED_WRITE_BYTES;
  let flushes = 0;
  const hashes = await writeLarge(path.join(dir, 'flushed'), length, async () => {
    flushes++;
  });
  assert.equal(hashes.size, length);
  assert.equal(flushes, 2, 'one background flush per EARLY_SYNC_BYTES written');

  // Linux reports a write-back error to a descriptor once: swallowed here, the puller's own fsync
  // could then succeed over lost bytes.
  const lost = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  await assert.rejects(
    writeLarge(path.join(dir, 'failed'), length, () => Promise.reject(lost)),
    (error: unknown) => error === lost,
  );
});
