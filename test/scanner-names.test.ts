import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { livePaths, put, recordOf, testFolder } from './folder-helpers.js';

const NFC_E_ACUTE = '\u00e9';
const NFD_E_ACUTE = 'e\u0301';

describe('scanner: names and shapes of trees', () => {
  it('records names with spaces, Chinese, emoji and other scripts exactly, in NFC', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const names = ['with  two spaces .txt', ' leading space', '中文文件.txt', '文件夹/里面.md', 'emoji 🎉😀.txt', 'Ελληνικά/κείμενο', 'עברית.txt', 'x'.repeat(255)];
    for (const name of names) await put(root, name, name);
    const report = await scanner.scan();
    assert.deepEqual(report.errors, []);
    for (const name of names) assert.equal((await recordOf(store, name)).size, Buffer.byteLength(name), name);
  });

  it('renames an NFD name on disk to NFC and records the NFC path (folders too)', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, `caf${NFD_E_ACUTE}.txt`, 'coffee');
    await put(root, `r${NFD_E_ACUTE}sum${NFD_E_ACUTE}/inside.txt`, 'cv');
    const report = await scanner.scan();
    assert.deepEqual(report.errors, []);
    const onDisk = await readdir(root);
    assert.ok(onDisk.includes(`caf${NFC_E_ACUTE}.txt`), 'renamed on disk');
    assert.ok(!onDisk.includes(`caf${NFD_E_ACUTE}.txt`));
    assert.ok(onDisk.includes(`r${NFC_E_ACUTE}sum${NFC_E_ACUTE}`));
    assert.deepEqual(await livePaths(store), [`caf${NFC_E_ACUTE}.txt`, `r${NFC_E_ACUTE}sum${NFC_E_ACUTE}`, `r${NFC_E_ACUTE}sum${NFC_E_ACUTE}/inside.txt`]);
    assert.equal((await scanner.scan()).counts.added, 0, 'stable afterwards');
  });

  it('an NFD name whose NFC twin exists is reported and left alone, never overwriting the twin', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, `caf${NFC_E_ACUTE}.txt`, 'the NFC one');
    await put(root, `caf${NFD_E_ACUTE}.txt`, 'the NFD one');
    const report = await scanner.scan();
    assert.equal(report.errors.length, 1);
    assert.equal(report.errors[0].path, `caf${NFD_E_ACUTE}.txt`);
    assert.match(report.errors[0].message, /NFC/);
    assert.equal((await readdir(root)).filter((name) => name.startsWith('caf')).length, 2, 'both still on disk');
    assert.deepEqual(await livePaths(store), [`caf${NFC_E_ACUTE}.txt`]);
    assert.equal((await recordOf(store, `caf${NFC_E_ACUTE}.txt`)).size, 'the NFC one'.length);
  });

  it('a scoped scan finds a path given in NFC that is spelled NFD on disk', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await scanner.scan();
    await put(root, `na${NFD_E_ACUTE}ve.txt`, 'naive');
    const report = await scanner.scan({ paths: [`na${NFC_E_ACUTE}ve.txt`] });
    assert.deepEqual(report.added, [`na${NFC_E_ACUTE}ve.txt`]);
    assert.equal((await recordOf(store, `na${NFC_E_ACUTE}ve.txt`)).deleted, false);
  });

  it('walks a tree 100 levels deep', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const deepest = Array.from({ length: 100 }, (_, i) => `level${i}`).join('/');
    await put(root, `${deepest}/bottom.txt`, 'deep');
    const report = await scanner.scan();
    assert.equal(report.counts.added, 101);
    assert.equal((await recordOf(store, `${deepest}/bottom.txt`)).size, 4);
  });

  it('never follows a symlink: a link to a folder of files records the link only', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const outside = join(root, '..', `${root.split('/').pop()}-outside`);
    await mkdir(outside);
    t.after(() => rm(outside, { recursive: true, force: true }));
    await put(outside, 'secret.txt', 'outside the folder');
    await put(root, 'real/inside.txt', 'inside');
    await symlink(outside, join(root, 'to-outside'));
    await symlink('real', join(root, 'to-real'));
    await symlink('to-loop', join(root, 'to-loop'));
    const report = await scanner.scan();
    assert.deepEqual(report.errors, []);
    assert.deepEqual(await livePaths(store), ['real', 'real/inside.txt', 'to-loop', 'to-outside', 'to-real']);
    assert.equal((await recordOf(store, 'to-outside')).symlinkTarget, outside);
    assert.equal((await recordOf(store, 'to-loop')).symlinkTarget, 'to-loop');
  });

  it('names that cannot be synced (control characters, backslashes) are reported and skipped', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'bad\u001b[31mname', 'escape codes');
    await put(root, 'back\\slash', 'windows would split it');
    await put(root, 'fine.txt', 'fine');
    const report = await scanner.scan();
    assert.deepEqual(report.errors.map((e) => e.path).sort(), ['back\\slash', 'bad\u001b[31mname']);
    assert.deepEqual(await livePaths(store), ['fine.txt']);
  });

  it('FIFOs and other special files are not synced (and never opened)', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    execFileSync('mkfifo', [join(root, 'pipe')]);
    await put(root, 'normal.txt', 'n');
    const report = await scanner.scan();
    assert.deepEqual(report.errors, []);
    assert.deepEqual(await livePaths(store), ['normal.txt']);
  });
});
