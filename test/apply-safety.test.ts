import assert from 'node:assert/strict';
import { appendFile, lstat, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FolderMissingError, IGNORE_FILE } from '../src/folder/index.js';
import { TEMP_PREFIX } from '../src/fs/atomic-write.js';
import { tempPathOf, type FailedPath } from '../src/node/index.js';
import { announced, assertConverged, outcomeOf, pair, servedSince, sync, tempFiles, treeOf } from './apply-helpers.js';
import { put, recordOf } from './folder-helpers.js';
import { pseudoRandomBytes, tempDir } from './helpers.js';

const MiB = 1024 * 1024;

function failure(report: { failed: readonly FailedPath[] }, path: string): FailedPath {
  const failed = report.failed.find((f) => f.path === path);
  assert.ok(failed !== undefined, `${path} failed`);
  return failed;
}

describe('apply: local changes are never overwritten', () => {
  it('a change made after the scan, while the file is transferred, is reported and kept', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', pseudoRandomBytes(300_000, 1));
    await sync(a, b);
    const recorded = await recordOf(b.store, 'f.txt');
    await put(a.root, 'f.txt', 'edited on A');
    await a.scanner.scan();
    // B's user edits the file once A has sent the delta (B's basis has been read): after B's
    // scan, before B's rename.
    a.afterServe = () => appendFile(join(b.root, 'f.txt'), 'edited on B');
    const report = await b.applier.apply(await announced(a));
    a.afterServe = undefined;
    assert.equal(outcomeOf(report, 'f.txt'), 'skipped changed-locally', JSON.stringify(report.outcomes));
    assert.deepEqual(report.changedLocally, ['f.txt']);
    assert.ok((await readFile(join(b.root, 'f.txt'), 'utf8')).endsWith('edited on B'), 'not overwritten');
    assert.equal((await recordOf(b.store, 'f.txt')).sequence, recorded.sequence, 'nothing recorded');
    assert.deepEqual(await tempFiles(b.root), []);

    // The caller rescans and decides again: a conflict now, and neither edit is lost.
    await b.scanner.scan({ paths: report.changedLocally });
    const again = await b.applier.apply(await announced(a));
    assert.equal(again.failed.length, 0);
    await sync(b, a);
    await sync(a, b);
    await assertConverged(a, b);
    const contents = [...(await treeOf(b.root)).values()].map((entry) => Buffer.from(entry.split(' ')[2], 'base64').toString('latin1'));
    assert.ok(contents.includes('edited on A'), JSON.stringify([...(await treeOf(b.root)).keys()]) + JSON.stringify(again.outcomes));
    assert.ok(contents.some((text) => text.endsWith('edited on B')));
  });

  it('a file made locally (not yet scanned) where a peer creates one is kept, with no transfer', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'new.txt', 'from A');
    await put(b.root, 'new.txt', 'made on B');
    await a.scanner.scan();
    const report = await b.applier.apply(await announced(a));
    assert.equal(outcomeOf(report, 'new.txt'), 'skipped changed-locally');
    assert.equal(servedSince(a).deltas, 0);
    assert.equal(await readFile(join(b.root, 'new.txt'), 'utf8'), 'made on B');
  });

  it('a delete of a file changed since the scan keeps the file (edit beats delete)', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'original');
    await sync(a, b);
    await rm(join(a.root, 'f.txt'));
    await writeFile(join(b.root, 'f.txt'), 'edited on B, not yet scanned');
    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'f.txt'), 'skipped kept-edit');
    assert.deepEqual(report.changedLocally, ['f.txt']);
    assert.equal(await readFile(join(b.root, 'f.txt'), 'utf8'), 'edited on B, not yet scanned');
    // Rescanned, it is a conflict the edit wins, and A gets it back.
    await b.scanner.scan({ paths: ['f.txt'] });
    assert.equal(outcomeOf(await b.applier.apply(await announced(a)), 'f.txt'), 'skipped local-wins');
    await sync(b, a);
    await sync(a, b); // A's merged version comes back
    await assertConverged(b, a);
    await assertConverged(a, b);
  });

  it('a pull waits for the folder lock before it replaces anything', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'from A');
    await a.scanner.scan();
    let release!: () => void;
    const held = b.lock.run(() => new Promise<void>((resolve) => (release = resolve)));
    const applying = b.applier.apply(await announced(a));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(servedSince(a).deltas, 1, 'the transfer runs meanwhile');
    await assert.rejects(stat(join(b.root, 'f.txt')), { code: 'ENOENT' });
    release();
    await held;
    assert.equal(outcomeOf(await applying, 'f.txt'), 'applied file');
  });
});

describe('apply: transfers', () => {
  it('an interrupted pull leaves its temp file, and each retry builds on the longest one', async (t) => {
    const { a, b } = await pair(t);
    const data = pseudoRandomBytes(8 * MiB, 9);
    await put(a.root, 'big.bin', data);
    const temp = tempPathOf('big.bin', (await (await a.scanner.scan(), recordOf(a.store, 'big.bin'))).contentHash);

    // A connection lost before any byte leaves nothing behind.
    a.interruptAfter = 0;
    assert.equal(failure(await sync(a, b), 'big.bin').error.message, 'connection lost');
    assert.deepEqual(await tempFiles(b.root), []);

    a.interruptAfter = 6 * MiB;
    const first = await sync(a, b);
    const failed = failure(first, 'big.bin');
    assert.equal(failed.error.message, 'connection lost');
    assert.equal(failed.peer, 'A');
    assert.equal(failed.peerAtFault, false);
    assert.deepEqual(await tempFiles(b.root), [temp]);
    const partial = (await stat(join(b.root, temp))).size;
    assert.ok(partial > MiB, `partial ${partial}`);
    await assert.rejects(stat(join(b.root, 'big.bin')), { code: 'ENOENT' });

    // The partial holds every byte received, so the retry's delta is about 2 MiB: cut it half way.
    a.interruptAfter = MiB;
    const second = await sync(a, b);
    assert.equal(failure(second, 'big.bin').error.message, 'connection lost');
    const longer = Math.max(...(await Promise.all((await tempFiles(b.root)).map(async (p) => (await stat(join(b.root, p))).size))));
    assert.ok(longer > partial, `${longer} > ${partial}`);

    const before = a.served.length;
    const last = await sync(a, b);
    assert.equal(outcomeOf(last, 'big.bin'), 'applied file');
    assert.equal(last.applied[0].pull?.basis, 'partial');
    const { literalBytes } = servedSince(a, before);
    assert.ok(literalBytes <= data.length - longer + 64 * 1024, `literal ${literalBytes} with a ${longer}-byte partial`);
    await assertConverged(a, b);
  });

  it('bytes that do not hash to the announced content are not applied, and the peer is blamed', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.bin', pseudoRandomBytes(200_000, 1));
    await put(a.root, 'other.bin', pseudoRandomBytes(200_000, 2));
    await a.scanner.scan();
    a.serveInstead = 'other.bin';
    const report = await b.applier.apply((await announced(a)).filter((r) => r.path === 'f.bin'));
    const failed = failure(report, 'f.bin');
    assert.equal(failed.error.name, 'ContentMismatchError');
    assert.equal(failed.peer, 'A');
    assert.equal(failed.peerAtFault, true);
    await assert.rejects(stat(join(b.root, 'f.bin')), { code: 'ENOENT' });
    assert.equal(await b.store.get('f.bin'), undefined);
    assert.deepEqual(await tempFiles(b.root), []);
  });

  it('a symlink planted at the temp name is removed, never followed, never a basis', async (t) => {
    const { a, b } = await pair(t);
    const outside = await tempDir(t, 'mesh-outside-');
    await writeFile(join(outside, 'victim.txt'), pseudoRandomBytes(300_000, 4));
    const victim = await readFile(join(outside, 'victim.txt'));
    await put(a.root, 'sub/f.bin', pseudoRandomBytes(300_000, 5));
    await a.scanner.scan();
    const temp = tempPathOf('sub/f.bin', (await recordOf(a.store, 'sub/f.bin')).contentHash);
    await mkdir(join(b.root, 'sub'));
    await symlink(join(outside, 'victim.txt'), join(b.root, temp));
    await symlink(join(outside, 'victim.txt'), join(b.root, `${temp}.basis`));
    const report = await b.applier.apply(await announced(a));
    assert.deepEqual(report.failed, []);
    assert.equal(report.applied.find((o) => o.path === 'sub/f.bin')?.pull?.basis, 'none');
    assert.deepEqual(await readFile(join(outside, 'victim.txt')), victim);
    assert.deepEqual(await readdir(outside), ['victim.txt']);
    await assertConverged(a, b);
  });
});

describe('apply: never through a symlink, never out of the folder', () => {
  it('a folder replaced by a symlink is not written through', async (t) => {
    const { a, b } = await pair(t);
    const outside = await tempDir(t, 'mesh-outside-');
    await put(a.root, 'dir/a.txt', 'a');
    await sync(a, b);
    await rm(join(b.root, 'dir'), { recursive: true });
    await symlink(outside, join(b.root, 'dir'));
    await put(a.root, 'dir/new.txt', 'new');
    await put(a.root, 'dir/a.txt', 'a, edited');
    const report = await sync(a, b);
    assert.equal(failure(report, 'dir/new.txt').error.name, 'UnsafePathError');
    assert.equal(failure(report, 'dir/a.txt').error.name, 'UnsafePathError');
    assert.deepEqual(await readdir(outside), []);
  });

  it('a delete is not made through a symlinked parent, even to the very file recorded', async (t) => {
    const { a, b } = await pair(t);
    const outside = await tempDir(t, 'mesh-outside-');
    await put(a.root, 'dir/a.txt', 'a');
    await sync(a, b);
    // B's folder moved out of the tree and a symlink left in its place: dir/a.txt through the link
    // is the recorded file (same inode, size, mtime).
    await rename(join(b.root, 'dir'), join(outside, 'dir'));
    await symlink(join(outside, 'dir'), join(b.root, 'dir'));
    await rm(join(a.root, 'dir'), { recursive: true });
    const report = await sync(a, b);
    assert.equal(failure(report, 'dir/a.txt').error.name, 'UnsafePathError');
    assert.equal(await readFile(join(outside, 'dir/a.txt'), 'utf8'), 'a');
    assert.equal((await lstat(join(b.root, 'dir'))).isSymbolicLink(), true);
  });

  it('a file under a symlink a peer made is refused', async (t) => {
    const { a, b } = await pair(t);
    const outside = await tempDir(t, 'mesh-outside-');
    await symlink(outside, join(a.root, 'link'));
    await put(a.root, 'real/evil.txt', 'evil');
    await a.scanner.scan();
    const records = await announced(a);
    assert.equal(outcomeOf(await b.applier.apply(records.filter((r) => r.path === 'link')), 'link'), 'applied symlink');
    // A hostile peer: its own scanner never records a file under a symlink.
    const evil = { ...records.find((r) => r.path === 'real/evil.txt')!, path: 'link/evil.txt' };
    const report = await b.applier.apply([evil]);
    assert.equal(failure(report, 'link/evil.txt').error.name, 'UnsafePathError');
    assert.deepEqual(await readdir(outside), []);
  });

  it('refuses records for paths outside the folder or in mesh’s own state, blaming the peer', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'payload');
    await a.scanner.scan();
    const [record] = (await announced(a)).filter((r) => r.path === 'f.txt');
    const hostile = ['../escape.txt', 'a/../../escape.txt', '/tmp/escape.txt', '.mesh/index', `${TEMP_PREFIX}f.txt.00000000`, 'C:/x', 'ok/\u001b[2Jx'];
    const before = await treeOf(b.root);
    const report = await b.applier.apply(hostile.map((path) => ({ ...record, path })));
    assert.equal(report.failed.length, hostile.length);
    for (const failed of report.failed) {
      assert.equal(failed.error.name, 'InvalidRemoteRecordError');
      assert.equal(failed.peerAtFault, true);
    }
    assert.deepEqual(await treeOf(b.root), before);
    assert.deepEqual(await readdir(join(b.root, '.mesh')), []);
    await assert.rejects(stat(join(b.root, '..', 'escape.txt')), { code: 'ENOENT' });
    await assert.rejects(stat('/tmp/escape.txt'), { code: 'ENOENT' });
    assert.equal(servedSince(a).deltas, 0);
  });
});

describe('apply: folders holding what mesh does not know', () => {
  it('a folder holding an unknown file is kept when its delete arrives (its known files go)', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'd/f.txt', 'f');
    await put(a.root, 'd/sub/g.txt', 'g');
    await sync(a, b);
    await put(b.root, 'd/sub/unknown.txt', 'made on B, not yet scanned');
    await rm(join(a.root, 'd'), { recursive: true });
    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'd/f.txt'), 'applied deleted');
    assert.equal(outcomeOf(report, 'd/sub/g.txt'), 'applied deleted');
    assert.equal(outcomeOf(report, 'd/sub'), 'skipped kept-folder');
    assert.equal(outcomeOf(report, 'd'), 'skipped kept-folder');
    assert.equal(await readFile(join(b.root, 'd/sub/unknown.txt'), 'utf8'), 'made on B, not yet scanned');
  });

  it('a folder holding an ignored file is kept; one holding only mesh temp files is removed', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'logs/today.txt', 't');
    await put(a.root, 'tmp/x.txt', 'x');
    await sync(a, b);
    await writeFile(join(b.root, IGNORE_FILE), '*.log\n');
    await put(b.root, 'logs/app.log', 'ignored on B');
    await put(b.root, `tmp/${TEMP_PREFIX}stale.bin.0badf00d`, 'left by a pull long ago');
    await b.scanner.scan();
    await rm(join(a.root, 'logs'), { recursive: true });
    await rm(join(a.root, 'tmp'), { recursive: true });
    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'logs'), 'skipped kept-folder');
    assert.equal(await readFile(join(b.root, 'logs/app.log'), 'utf8'), 'ignored on B');
    assert.equal(outcomeOf(report, 'tmp'), 'applied deleted');
    await assert.rejects(stat(join(b.root, 'tmp')), { code: 'ENOENT' });
  });

  it('paths the local rules ignore are neither written nor deleted', async (t) => {
    const { a, b } = await pair(t);
    await writeFile(join(b.root, IGNORE_FILE), 'private/\n');
    await b.scanner.scan();
    await put(a.root, 'private/secret.txt', 'secret');
    await put(a.root, 'public.txt', 'public');
    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'private'), 'skipped ignored');
    assert.equal(outcomeOf(report, 'private/secret.txt'), 'skipped ignored');
    assert.equal(outcomeOf(report, 'public.txt'), 'applied file');
    await assert.rejects(stat(join(b.root, 'private')), { code: 'ENOENT' });
  });

  it('stops, applying nothing, when the folder is gone', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'f');
    await a.scanner.scan();
    await rm(join(b.root, '.mesh'), { recursive: true });
    await assert.rejects(b.applier.apply(await announced(a)), FolderMissingError);
    await assert.rejects(stat(join(b.root, 'f.txt')), { code: 'ENOENT' });
  });
});
