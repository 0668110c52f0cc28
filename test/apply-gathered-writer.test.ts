// The puller's temp file writer: pieces of any size become the same file, in large writes, and the
// hashes it returns are those of the file on disk (it verifies without reading the file back). A
// large file is written with direct I/O, and where that is refused, through the page cache.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashFile } from '../src/folder/hasher.js';
import { loadDirectIo, type DirectIo } from '../src/fs/direct-io.js';
import { DIRECT_WRITE_MIN_BYTES, EARLY_SYNC_BYTES, GATHERED_WRITE_BYTES, GatheredWriter } from '../src/node/gathered-writer.js';
import { tempDir } from './helpers.js';

/** Whether a file descriptor of this process is open with O_DIRECT (its flags in /proc). */
async function isDirect(fd: number): Promise<boolean> {
  const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
  const flags = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(info)?.[1] ?? '', 8);
  return (flags & constants.O_DIRECT) !== 0;
}

async function writeInPieces(file: string, data: Buffer, sizes: readonly number[], expectedSize = data.length, directIo?: DirectIo) {
  const handle = await open(file, 'wx');
  try {
    const writer = new GatheredWriter(handle, expectedSize, directIo);
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
    assertSameFile(hashes, await hashFile(file), name);
  }
});

function assertSameFile(hashes: Awaited<ReturnType<GatheredWriter['finish']>>, onDisk: typeof hashes, name: string) {
  assert.equal(hashes.size, onDisk.size, name);
  assert.ok(Buffer.from(hashes.contentHash).equals(Buffer.from(onDisk.contentHash)), `${name}: content hash`);
  assert.ok(Buffer.from(hashes.blockHashes).equals(Buffer.from(onDisk.blockHashes)), `${name}: block hashes`);
}

/** Direct I/O, or a skip where this machine or the temp folder's file system does not offer it. */
async function directIoOrSkip(t: TestContext, dir: string): Promise<DirectIo | undefined> {
  const directIo = await loadDirectIo();
  if (directIo === undefined) {
    t.skip('no direct I/O here (Linux with glibc only)');
    return undefined;
  }
  const probe = await open(path.join(dir, 'probe'), 'wx');
  try {
    if (!directIo.setDirect(probe.fd, true)) t.skip(`the file system of ${dir} refuses direct I/O`);
    else return directIo;
  } finally {
    await probe.close();
  }
  return undefined;
}

test('a large file goes to the disk directly, its tail through the page cache, and is the same file', async (t) => {
  const dir = await tempDir(t, 'mesh-gathered-');
  const directIo = await directIoOrSkip(t, dir);
  if (directIo === undefined) return;
  const data = randomBytes(DIRECT_WRITE_MIN_BYTES + 12_345);
  const cases: [string, number[], number?][] = [
    ['small pieces', [1, 7, 1000, 65_536, 4093]],
    ['pieces larger than the buffer', [GATHERED_WRITE_BYTES + 3, 2 * GATHERED_WRITE_BYTES]],
    ['a whole number of buffers', [GATHERED_WRITE_BYTES], DIRECT_WRITE_MIN_BYTES],
    ['an expected size too large (the source ends early)', [65_536], 2 * DIRECT_WRITE_MIN_BYTES],
  ];
  for (const [name, sizes, expected] of cases) {
    const file = path.join(dir, name);
    const written = expected === DIRECT_WRITE_MIN_BYTES ? data.subarray(0, expected) : data;
    const hashes = await writeInPieces(file, written, sizes, expected, directIo);
    assert.ok((await readFile(file)).equals(written), `${name}: the file has other bytes`);
    assertSameFile(hashes, await hashFile(file), name);
  }

  // The descriptor is direct while whole buffers are written, and not once the tail is.
  const handle = await open(path.join(dir, 'flags'), 'wx');
  try {
    const writer = new GatheredWriter(handle, data.length, directIo);
    await writer.write(data.subarray(0, 2 * GATHERED_WRITE_BYTES + 1));
    assert.ok(writer.writesDirectly && (await isDirect(handle.fd)), 'whole buffers are written directly');
    await writer.write(data.subarray(2 * GATHERED_WRITE_BYTES + 1));
    await writer.finish();
    assert.ok(!writer.writesDirectly && !(await isDirect(handle.fd)), 'the tail is written through the page cache');
  } finally {
    await handle.close();
  }
});

test('where direct writes are refused, the file is written through the page cache', async (t) => {
  const dir = await tempDir(t, 'mesh-gathered-');
  const directIo = await directIoOrSkip(t, dir);
  if (directIo === undefined) return;
  const data = randomBytes(DIRECT_WRITE_MIN_BYTES + 777);
  const refusers: [string, DirectIo][] = [
    // Memory one byte past an aligned address: the kernel fails the direct write with EINVAL.
    ['misaligned memory', { alignedBuffer: (size) => directIo.alignedBuffer(size + 1).subarray(1), setDirect: (fd, on) => directIo.setDirect(fd, on) }],
    ['a file system that refuses the mode', { alignedBuffer: (size) => directIo.alignedBuffer(size), setDirect: () => false }],
  ];
  for (const [name, refuser] of refusers) {
    const file = path.join(dir, name);
    const hashes = await writeInPieces(file, data, [100_000], data.length, refuser);
    assert.ok((await readFile(file)).equals(data), `${name}: the file has other bytes`);
    assertSameFile(hashes, await hashFile(file), name);
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
