import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, open, readFile, rename, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recordOf } from './folder-helpers.js';
import { pseudoRandomBytes } from './helpers.js';
import { assertConverged, outcomeOf, pair, servedSince, sync, treeOf } from './apply-helpers.js';
import { put } from './folder-helpers.js';

describe('apply: one device converges to another', () => {
  it('creates files, nested and empty folders, symlinks and an empty file, names with spaces and Chinese', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'top.txt', 'hello');
    await put(a.root, 'a/b/c/deep.bin', pseudoRandomBytes(300_000, 1));
    await mkdir(join(a.root, 'empty/inner'), { recursive: true });
    await symlink('a/b', join(a.root, 'to-dir'));
    await symlink('../nowhere', join(a.root, 'dangling'));
    await put(a.root, 'My Documents/tax return 2023.txt', 'numbers');
    await put(a.root, '文档/会议 记录.txt', '会议');
    await put(a.root, 'empty.txt', '');
    await put(a.root, `${'长'.repeat(80)}.txt`, 'a name of 244 bytes: its temp name is shortened');
    await put(a.root, 'run.sh', '#!/bin/sh\n');
    await chmod(join(a.root, 'run.sh'), 0o755);
    await chmod(join(a.root, 'empty'), 0o700);

    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    assert.equal(report.skipped.length, 0);
    assert.equal(outcomeOf(report, 'to-dir'), 'applied symlink');
    assert.equal(outcomeOf(report, 'empty/inner'), 'applied directory');
    assert.equal(outcomeOf(report, '文档/会议 记录.txt'), 'applied file');
    // One transfer per non-empty file; the empty file needs none.
    assert.deepEqual(servedSince(a).paths.sort(), [
      'My Documents/tax return 2023.txt',
      'a/b/c/deep.bin',
      'run.sh',
      'top.txt',
      '文档/会议 记录.txt',
      `${'长'.repeat(80)}.txt`,
    ]);
    await assertConverged(a, b);

    // Nothing new: nothing to do, no transfer.
    const again = await sync(a, b);
    assert.equal(again.applied.length, 0);
    assert.ok(again.skipped.every((s) => s.reason === 'up-to-date'));
    assert.equal(servedSince(a).deltas, 6);
  });

  it('an edit moves only about the bytes that changed (a delta against the old version)', async (t) => {
    const { a, b } = await pair(t);
    const original = pseudoRandomBytes(2 * 1024 * 1024, 2);
    await put(a.root, 'data.bin', original);
    await sync(a, b);
    const before = a.served.length;

    const edited = Buffer.from(original);
    edited.fill(7, 1_000_000, 1_001_000);
    await writeFile(join(a.root, 'data.bin'), Buffer.concat([edited, Buffer.from('appended')]));
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    const pulled = report.applied.find((o) => o.path === 'data.bin');
    assert.equal(pulled?.pull?.basis, 'local');
    const { deltas, literalBytes } = servedSince(a, before);
    assert.equal(deltas, 1);
    assert.ok(literalBytes < 10_000, `literal bytes ${literalBytes}`);
    assert.equal(report.literalBytes, literalBytes);
    assert.ok(report.reusedBytes > 2_000_000);
    await assertConverged(a, b);
  });

  it('a new file sharing blocks with another local file is built from it', async (t) => {
    const { a, b } = await pair(t);
    const v1 = pseudoRandomBytes(1024 * 1024, 3);
    await put(a.root, 'v1.bin', v1);
    await sync(a, b);
    const v2 = Buffer.from(v1);
    v2.fill(1, 500_000, 500_100);
    await put(a.root, 'v2.bin', v2);
    const before = a.served.length;
    const report = await sync(a, b);
    const pulled = report.applied.find((o) => o.path === 'v2.bin');
    assert.equal(pulled?.pull?.basis, 'similar');
    assert.equal(pulled?.pull?.from, 'v1.bin');
    assert.ok(servedSince(a, before).literalBytes < 10_000);
    await assertConverged(a, b);
  });

  it('deletes files, symlinks and nested folders, and records the tombstones', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'keep.txt', 'keep');
    await put(a.root, 'gone.txt', 'gone');
    await put(a.root, 'tree/x/y/z.txt', 'z');
    await put(a.root, 'tree/top.txt', 'top');
    await mkdir(join(a.root, 'tree/empty'));
    await symlink('keep.txt', join(a.root, 'link'));
    await sync(a, b);

    await rm(join(a.root, 'tree'), { recursive: true });
    await unlink(join(a.root, 'gone.txt'));
    await unlink(join(a.root, 'link'));
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    for (const path of ['gone.txt', 'link', 'tree', 'tree/x', 'tree/x/y', 'tree/x/y/z.txt', 'tree/top.txt', 'tree/empty']) {
      assert.equal(outcomeOf(report, path), 'applied deleted', path);
      assert.equal((await recordOf(b.store, path)).deleted, true);
    }
    await assertConverged(a, b);
    assert.deepEqual([...(await treeOf(b.root)).keys()], ['keep.txt']);
  });

  it('records a delete of a path it never had, and one whose file is already gone', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'x.txt', 'x');
    await put(a.root, 'y.txt', 'y');
    await sync(a, b);
    await a.scanner.scan();
    await put(a.root, 'never-synced.txt', 'n');
    await a.scanner.scan();
    await unlink(join(a.root, 'never-synced.txt'));
    await unlink(join(a.root, 'x.txt'));
    await unlink(join(b.root, 'x.txt')); // gone on B too, not yet scanned there
    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'never-synced.txt'), 'applied tombstone');
    assert.equal(outcomeOf(report, 'x.txt'), 'applied tombstone');
    assert.equal((await recordOf(b.store, 'never-synced.txt')).deleted, true);
    await assertConverged(a, b);
  });

  it('renames and copies move no bytes: a renamed file is moved, content wanted twice is copied', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'big.bin', pseudoRandomBytes(1024 * 1024, 4));
    await put(a.root, 'album/one.jpg', pseudoRandomBytes(200_000, 5));
    await put(a.root, 'album/two.jpg', pseudoRandomBytes(200_000, 6));
    await sync(a, b);
    const before = a.served.length;
    const inodeOnB = (await recordOf(b.store, 'big.bin')).inode;

    await mkdir(join(a.root, 'moved'));
    await rename(join(a.root, 'big.bin'), join(a.root, 'moved/big renamed.bin'));
    await rename(join(a.root, 'album'), join(a.root, '相册 2024'));
    await copyFile(join(a.root, '相册 2024/one.jpg'), join(a.root, 'copy of one.jpg'));
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    assert.equal(servedSince(a, before).deltas, 0, 'no transfer at all');
    const pullOf = (path: string) => report.applied.find((o) => o.path === path)?.pull;
    assert.deepEqual([pullOf('moved/big renamed.bin')?.source, pullOf('moved/big renamed.bin')?.from], ['move', 'big.bin']);
    assert.equal((await recordOf(b.store, 'moved/big renamed.bin')).inode, inodeOnB, 'the same file, moved, not a copy');
    assert.equal(pullOf('相册 2024/two.jpg')?.source, 'move');
    // one.jpg's content is wanted at two paths: copied to both, then its old path deleted.
    assert.deepEqual([pullOf('相册 2024/one.jpg')?.source, pullOf('copy of one.jpg')?.source], ['copy', 'copy']);
    assert.equal(outcomeOf(report, 'big.bin'), 'applied tombstone');
    assert.equal(outcomeOf(report, 'album/one.jpg'), 'applied deleted');
    assert.equal(outcomeOf(report, 'album'), 'applied deleted');
    await assertConverged(a, b);
  });

  it('a rename whose old file was edited here meanwhile: the new path is pulled, the edit is kept (edit beats delete)', async (t) => {
    const { a, b } = await pair(t);
    const original = Buffer.from(pseudoRandomBytes(300_000, 8));
    await put(a.root, 'report.doc', original);
    await sync(a, b);
    await rename(join(a.root, 'report.doc'), join(a.root, 'report final.doc'));
    // B's edit, not yet scanned there: the record still says the old content.
    const edited = Buffer.from(original);
    edited.fill(1, 0, 1000);
    await writeFile(join(b.root, 'report.doc'), edited);

    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    assert.notEqual(report.applied.find((o) => o.path === 'report final.doc')?.pull?.source, 'move');
    assert.deepEqual(await readFile(join(b.root, 'report final.doc')), original);
    assert.deepEqual(
      report.skipped.filter((s) => s.path === 'report.doc').map((s) => s.reason),
      ['kept-edit'],
    );
    assert.deepEqual(await readFile(join(b.root, 'report.doc')), edited);
  });

  it('a permission or mtime-only change (same bytes) is applied without copying the file', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'tool', pseudoRandomBytes(100_000, 7));
    await sync(a, b);
    const inode = (await recordOf(b.store, 'tool')).inode;
    await chmod(join(a.root, 'tool'), 0o750);
    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'tool'), 'applied metadata');
    assert.equal((await recordOf(b.store, 'tool')).inode, inode, 'the same file, not a copy');
    await assertConverged(a, b);
  });

  it('type changes: a file becomes a folder, a folder a file, a symlink gets a new target', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'was-file', 'file');
    await put(a.root, 'was-folder/inside.txt', 'inside');
    await symlink('one', join(a.root, 'link'));
    await sync(a, b);

    await unlink(join(a.root, 'was-file'));
    await put(a.root, 'was-file/now-inside.txt', 'now');
    await rm(join(a.root, 'was-folder'), { recursive: true });
    await put(a.root, 'was-folder', 'now a file');
    await unlink(join(a.root, 'link'));
    await symlink('two', join(a.root, 'link'));
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    assert.equal(outcomeOf(report, 'was-file'), 'applied directory');
    assert.equal(outcomeOf(report, 'was-folder'), 'applied file');
    assert.equal(outcomeOf(report, 'link'), 'applied symlink');
    await assertConverged(a, b);
  });

  it('pulls at most `concurrency` files at once', async (t) => {
    const { a, b } = await pair(t);
    for (let i = 0; i < 24; i++) await put(a.root, `many/file ${i}.txt`, `content ${i}`);
    let inFlight = 0;
    let most = 0;
    a.beforeServe = async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
    };
    a.afterServe = () => {
      inFlight--;
    };
    const report = await sync(a, b);
    assert.equal(report.applied.length, 25);
    assert.equal(most, 4);
    await assertConverged(a, b);
  });

  it('sets the mtime of pulled files to the remote one (within what utimes can set)', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'old.txt', 'old');
    await utimes(join(a.root, 'old.txt'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    await sync(a, b);
    const theirs = await recordOf(a.store, 'old.txt');
    const ours = await recordOf(b.store, 'old.txt');
    assert.ok(ours.mtimeNs - theirs.mtimeNs < 1000n && theirs.mtimeNs - ours.mtimeNs < 1000n);
    const handle = await open(join(b.root, 'old.txt'));
    assert.equal((await handle.stat()).mtime.toISOString(), '2001-02-03T04:05:06.000Z');
    await handle.close();
    assert.equal(await readFile(join(b.root, 'old.txt'), 'utf8'), 'old');
  });
});
