// A fetch batch of many files is made durable by one syncfs (through the folder root, opened before
// the files were made) instead of an fsync per file; a few files are fsynced one by one; where
// syncfs fails, every file is fsynced after all and the batch still lands.
import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadSyncFs, syncFsReportsErrors, type SyncFs } from '../src/fs/sync-fs.js';
import { assertConverged, fetchFrom, makeSide, sync, type Mesh } from './apply-helpers.js';
import { put } from './folder-helpers.js';
import { pseudoRandomBytes, tempDir } from './helpers.js';

const system = await loadSyncFs();
const noSyncFs = system === undefined ? 'this system has no syncfs that reports errors (Linux 5.8 or later)' : false;

/**
 * `count` small files made on A and applied by B, which flushes its fetch batches with `syncFs`:
 * every file lands and B converges with A.
 */
async function applySmallFiles(t: Parameters<typeof makeSide>[0], count: number, syncFs: SyncFs): Promise<void> {
  const mesh: Mesh = new Map();
  const a = await makeSide(t, mesh, 'A', 'a'.repeat(16), { fetchFiles: fetchFrom(mesh) });
  const b = await makeSide(t, mesh, 'B', 'b'.repeat(16), { fetchFiles: fetchFrom(mesh), syncFs });
  for (let k = 0; k < count; k++) await put(a.root, `tree/d${k % 3}/f${k}.bin`, pseudoRandomBytes(1024 + k, k));
  const report = await sync(a, b);
  assert.deepEqual(report.failed, []);
  await assertConverged(a, b);
}

describe('apply: a fetch batch flushed with syncfs', () => {
  it('a batch of many files takes one syncfs, through the folder root opened before them, and lands', { skip: noSyncFs }, async (t) => {
    const flushed: string[] = [];
    await applySmallFiles(t, 40, (fd) => (flushed.push(fstatSync(fd).isDirectory() ? 'folder' : 'file'), system!(fd)));
    assert.deepEqual(flushed, ['folder']);
  });

  it('a few files are fsynced one by one, no syncfs', async (t) => {
    let calls = 0;
    await applySmallFiles(t, 3, () => (calls++, Promise.resolve(true)));
    assert.equal(calls, 0);
  });

  it('where syncfs fails, each file is fsynced after all and the batch lands', async (t) => {
    let calls = 0;
    await applySmallFiles(t, 40, () => (calls++, Promise.resolve(false)));
    assert.equal(calls, 1);
  });
});

describe('syncfs', () => {
  it('is trusted from Linux 5.8, the first to report write-back errors from it', () => {
    for (const release of ['5.8.0', '5.10.0-28-amd64', '6.18.44-fc-v595', '6.1.21-v8+', '10.0.0']) assert.ok(syncFsReportsErrors(release), release);
    for (const release of ['5.7.19', '4.19.0-21-amd64', '3.10.0-1160.el7.x86_64', '', 'unknown']) assert.ok(!syncFsReportsErrors(release), release);
  });

  it('flushes the file system of an open file', { skip: noSyncFs }, async (t) => {
    const file = await open(join(await tempDir(t), 'f'), 'w');
    try {
      await file.write('data');
      assert.equal(await system!(file.fd), true);
    } finally {
      await file.close();
    }
  });
});
