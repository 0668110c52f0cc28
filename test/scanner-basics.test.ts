import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, chmod, mkdir, open, readFile, rename, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { COMMIT_BATCH_SIZE, EMPTY_FILE_CONTENT_HASH, openScanner, symlinkContentHash, type ScanProgress } from '../src/folder/index.js';
import { BLOCK_HASH_BYTES } from '../src/store/types.js';
import { compare, counterOf } from '../src/store/version-vector.js';
import { ageTree, livePaths, put, recordOf, testFolder } from './folder-helpers.js';
import { pseudoRandomBytes } from './helpers.js';

const sha256Hex = (data: Uint8Array) => Buffer.from(data).toString('hex');

describe('scanner: recording a folder', () => {
  it('the first scan records files, nested and empty folders, and symlinks with their targets', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'top.txt', 'hello');
    await put(root, 'a/b/c/deep.bin', pseudoRandomBytes(300_000, 1));
    await mkdir(join(root, 'empty/inner'), { recursive: true });
    await symlink('a/b', join(root, 'to-dir'));
    await symlink('top.txt', join(root, 'to-file'));
    await symlink('../nowhere', join(root, 'dangling'));
    const report = await scanner.scan();

    const expected = ['a', 'a/b', 'a/b/c', 'a/b/c/deep.bin', 'dangling', 'empty', 'empty/inner', 'to-dir', 'to-file', 'top.txt'];
    assert.deepEqual(await livePaths(store), expected);
    assert.deepEqual([...report.added].sort(), expected);
    assert.equal(report.counts.added, expected.length);
    assert.equal(report.filesHashed, 2);
    assert.equal(report.bytesHashed, 300_005);
    assert.equal(report.bytes.added, 300_005);
    assert.deepEqual(report.errors, []);

    const deep = await recordOf(store, 'a/b/c/deep.bin');
    assert.equal(deep.type, 'file');
    assert.equal(deep.size, 300_000);
    assert.equal(deep.blockHashes.length, 3 * BLOCK_HASH_BYTES);
    assert.equal(deep.deleted, false);
    assert.equal(deep.modifiedBy, store.deviceId);
    assert.equal(counterOf(deep.version, store.deviceId), 1);
    assert.equal((await recordOf(store, 'empty/inner')).type, 'directory');
    const dangling = await recordOf(store, 'dangling');
    assert.equal(dangling.type, 'symlink');
    assert.equal(dangling.symlinkTarget, '../nowhere');
    assert.equal(sha256Hex(dangling.contentHash), sha256Hex(symlinkContentHash('../nowhere')));
    assert.equal((await recordOf(store, 'to-dir')).symlinkTarget, 'a/b');
  });

  it('a rescan with nothing changed reads no file and commits nothing', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'x/one.txt', 'one');
    await put(root, 'two.txt', pseudoRandomBytes(200_000, 2));
    await symlink('two.txt', join(root, 'link'));
    await ageTree(root);
    await scanner.scan();
    const sequence = store.lastSequence;
    const report = await scanner.scan();
    assert.equal(report.filesHashed, 0);
    assert.equal(report.bytesHashed, 0);
    assert.equal(report.counts.unchanged, 4);
    assert.equal(report.counts.added + report.counts.modified + report.counts.deleted + report.counts.metadataUpdated, 0);
    assert.equal(store.lastSequence, sequence, 'no commit');
  });

  it('edits, appends and truncation are new versions of this device', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const file = join(root, 'doc.txt');
    await writeFile(file, 'version one');
    await scanner.scan();
    const first = await recordOf(store, 'doc.txt');

    // Same size, other bytes: caught by the mtime.
    await writeFile(file, 'version two');
    let report = await scanner.scan();
    assert.deepEqual(report.modified, ['doc.txt']);
    const second = await recordOf(store, 'doc.txt');
    assert.equal(compare(second.version, first.version), 'dominates');
    assert.notEqual(sha256Hex(second.contentHash), sha256Hex(first.contentHash));

    await appendFile(file, ' and more');
    report = await scanner.scan();
    assert.deepEqual(report.modified, ['doc.txt']);
    const third = await recordOf(store, 'doc.txt');
    assert.equal(third.size, 'version two and more'.length);
    assert.equal(counterOf(third.version, store.deviceId), 3);

    await truncate(file, 0);
    report = await scanner.scan();
    assert.deepEqual(report.modified, ['doc.txt']);
    const empty = await recordOf(store, 'doc.txt');
    assert.equal(empty.size, 0);
    assert.equal(empty.blockHashes.length, 0);
    assert.equal(sha256Hex(empty.contentHash), sha256Hex(EMPTY_FILE_CONTENT_HASH));
    assert.equal(counterOf(empty.version, store.deviceId), 4);
  });

  it('a write that keeps size and mtime right after a scan is still caught (racy file)', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const file = join(root, 'racy.txt');
    await writeFile(file, 'AAAA');
    const when = new Date();
    await utimes(file, when, when);
    await scanner.scan();
    await writeFile(file, 'BBBB');
    await utimes(file, when, when); // as if within one tick of the file system's clock
    const report = await scanner.scan();
    assert.deepEqual(report.modified, ['racy.txt']);
    assert.equal(sha256Hex((await recordOf(store, 'racy.txt')).contentHash), sha256Hex(pseudoHash('BBBB')));
  });

  it('a racy file is still caught by the next scan in a new process (a new scanner on the same store)', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const file = join(root, 'racy.txt');
    await put(root, 'old.txt', 'old');
    await ageTree(root);
    await writeFile(file, 'AAAA');
    const when = new Date();
    await utimes(file, when, when);
    await scanner.scan();
    await writeFile(file, 'BBBB');
    await utimes(file, when, when);
    // A new process knows nothing of the first scanner's memory, only what the store holds.
    const again = await openScanner({ root, store });
    const report = await again.scan();
    assert.deepEqual(report.modified, ['racy.txt']);
    assert.equal(report.filesHashed, 1, 'only the racy file is read again, not old.txt');
    assert.equal(sha256Hex((await recordOf(store, 'racy.txt')).contentHash), sha256Hex(pseudoHash('BBBB')));
  });

  it('touching a file (mtime only) updates its metadata but keeps its version; chmod is a new version', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'notes.txt', 'same words');
    await ageTree(root);
    await scanner.scan();
    const before = await recordOf(store, 'notes.txt');
    const touched = new Date(Date.now() - 1000 * 1000);
    await utimes(join(root, 'notes.txt'), touched, touched);
    let report = await scanner.scan();
    assert.equal(report.counts.metadataUpdated, 1);
    assert.deepEqual(report.modified, []);
    const after = await recordOf(store, 'notes.txt');
    assert.deepEqual(after.version, before.version, 'same content, same version');
    assert.notEqual(after.mtimeNs, before.mtimeNs);
    const wanted = BigInt(touched.getTime()) * 1_000_000n;
    assert.ok(after.mtimeNs > wanted - 1_000_000n && after.mtimeNs < wanted + 1_000_000n, 'the new mtime is recorded');
    report = await scanner.scan();
    assert.equal(report.filesHashed, 0, 'the new metadata was recorded: not read again');

    await chmod(join(root, 'notes.txt'), 0o600);
    report = await scanner.scan();
    assert.deepEqual(report.modified, ['notes.txt']);
    const chmodded = await recordOf(store, 'notes.txt');
    assert.equal(chmodded.mode, 0o600);
    assert.equal(compare(chmodded.version, before.version), 'dominates');
  });

  it('a deleted file becomes a tombstone with a newer version; recreated, it dominates the tombstone', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'dir/gone.txt', 'soon gone');
    await put(root, 'dir/sub/also.txt', 'also gone');
    await scanner.scan();
    const live = await recordOf(store, 'dir/gone.txt');

    await rm(join(root, 'dir'), { recursive: true });
    const report = await scanner.scan();
    assert.deepEqual([...report.deleted].sort(), ['dir', 'dir/gone.txt', 'dir/sub', 'dir/sub/also.txt']);
    assert.equal(report.bytes.deleted, 'soon gone'.length + 'also gone'.length);
    const tombstone = await recordOf(store, 'dir/gone.txt');
    assert.equal(tombstone.deleted, true);
    assert.equal(tombstone.size, 0);
    assert.equal(tombstone.blockHashes.length, 0);
    assert.equal(tombstone.contentHash.length, 0);
    assert.equal(tombstone.modifiedBy, store.deviceId);
    assert.equal(compare(tombstone.version, live.version), 'dominates');
    assert.deepEqual(await livePaths(store), []);

    const again = await scanner.scan();
    assert.equal(again.counts.deleted, 0, 'a tombstone is not deleted twice');

    await put(root, 'dir/gone.txt', 'back again');
    const back = await scanner.scan();
    assert.deepEqual([...back.added].sort(), ['dir', 'dir/gone.txt']);
    const recreated = await recordOf(store, 'dir/gone.txt');
    assert.equal(recreated.deleted, false);
    assert.equal(compare(recreated.version, tombstone.version), 'dominates');
  });

  it('a renamed file is reported as a move, not read again (same inode, size, mtime), committed together', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const content = pseudoRandomBytes(150_000, 3);
    await put(root, 'old/name.bin', content);
    await put(root, 'other.txt', 'unrelated');
    await ageTree(root);
    await scanner.scan();
    const old = await recordOf(store, 'old/name.bin');

    await mkdir(join(root, 'new'));
    await rename(join(root, 'old/name.bin'), join(root, 'new/renamed.bin'));
    const report = await scanner.scan();
    assert.deepEqual(report.moved, [{ from: 'old/name.bin', to: 'new/renamed.bin' }]);
    assert.deepEqual(report.deleted, [], 'the source of a move is not also listed as deleted');
    assert.deepEqual(report.added, ['new']);
    assert.equal(report.filesHashed, 0, 'its record has the hashes of what did not change');
    assert.equal(report.bytesHashed, 0);
    const from = await recordOf(store, 'old/name.bin');
    const to = await recordOf(store, 'new/renamed.bin');
    assert.equal(from.deleted, true);
    assert.equal(compare(from.version, old.version), 'dominates');
    assert.equal(sha256Hex(to.contentHash), sha256Hex(old.contentHash));
    assert.equal(Math.abs(from.sequence - to.sequence), 1, 'tombstone and new record in one commit, side by side');
  });

  it('a file renamed and then changed is read again; a full scan reads a renamed file again', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const content = pseudoRandomBytes(150_000, 4);
    await put(root, 'a.bin', content);
    await put(root, 'b.bin', pseudoRandomBytes(150_000, 5));
    await ageTree(root);
    await scanner.scan();
    const before = await recordOf(store, 'a.bin');

    // Same size, same inode: only the mtime tells (as for a file changed at its own path).
    await rename(join(root, 'a.bin'), join(root, 'a renamed.bin'));
    const changed = Buffer.from(content);
    changed[0] ^= 1;
    const file = await open(join(root, 'a renamed.bin'), 'r+');
    await file.write(changed, 0, 1, 0);
    await file.close();
    const report = await scanner.scan();
    assert.equal(report.filesHashed, 1);
    assert.deepEqual(report.moved, [], 'other content: not a move');
    assert.notEqual(sha256Hex((await recordOf(store, 'a renamed.bin')).contentHash), sha256Hex(before.contentHash));

    await ageTree(root);
    await rename(join(root, 'b.bin'), join(root, 'b renamed.bin'));
    const full = await scanner.scan({ full: true });
    assert.deepEqual(full.moved, [{ from: 'b.bin', to: 'b renamed.bin' }]);
    assert.equal(full.bytesHashed, 300_000, 'both files read');
  });

  it('a move prefers the source with the same inode among identical files', async (t) => {
    const { root, scanner } = await testFolder(t);
    await put(root, 'copy-a.txt', 'identical content');
    await put(root, 'copy-b.txt', 'identical content');
    await scanner.scan();
    await rm(join(root, 'copy-a.txt'));
    await rename(join(root, 'copy-b.txt'), join(root, 'moved.txt'));
    const report = await scanner.scan();
    assert.deepEqual(report.moved, [{ from: 'copy-b.txt', to: 'moved.txt' }]);
    assert.deepEqual(report.deleted, ['copy-a.txt']);
  });

  it('full rehashes every file even when metadata matches, and finds silent changes', async (t) => {
    const { root, scanner } = await testFolder(t);
    await put(root, 'a.txt', 'aaaa');
    await put(root, 'b/c.txt', 'cccc');
    await ageTree(root);
    await scanner.scan();
    assert.equal((await scanner.scan()).filesHashed, 0);
    let report = await scanner.scan({ full: true });
    assert.equal(report.filesHashed, 2);
    assert.equal(report.counts.modified, 0);

    // Content changed behind the metadata's back (same size, mtime put back).
    const file = join(root, 'a.txt');
    const mtime = new Date(1_600_000_000_000); // whole seconds: set back exactly
    await utimes(file, mtime, mtime);
    await scanner.scan();
    await writeFile(file, 'AAAA');
    await utimes(file, mtime, mtime);
    assert.equal((await scanner.scan()).counts.modified, 0, 'metadata alone cannot see it');
    report = await scanner.scan({ full: true });
    assert.deepEqual(report.modified, ['a.txt']);
  });

  it('scoped scans look only at the given paths; a vanished path deletes everything recorded under it', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'keep/k.txt', 'k');
    await put(root, 'work/w1.txt', 'w1');
    await put(root, 'work/sub/w2.txt', 'w2');
    await scanner.scan();

    await put(root, 'keep/unseen.txt', 'not in scope');
    await put(root, 'work/new.txt', 'in scope');
    let report = await scanner.scan({ paths: ['work'] });
    assert.deepEqual(report.scope, ['work']);
    assert.deepEqual(report.added, ['work/new.txt']);
    assert.equal(await store.get('keep/unseen.txt'), undefined, 'outside the scope: not looked at');

    await rm(join(root, 'work'), { recursive: true });
    // The watcher names a file deep inside the removed tree: the scope widens to what is gone.
    report = await scanner.scan({ paths: ['work/sub/w2.txt'] });
    assert.deepEqual(report.scope, ['work']);
    assert.deepEqual([...report.deleted].sort(), ['work', 'work/new.txt', 'work/sub', 'work/sub/w2.txt', 'work/w1.txt']);
    assert.equal((await recordOf(store, 'keep/k.txt')).deleted, false);

    // A new file in a new folder: its parent folder is recorded too.
    await put(root, 'fresh/deeper/f.txt', 'f');
    report = await scanner.scan({ paths: ['fresh/deeper/f.txt'] });
    assert.deepEqual([...report.added].sort(), ['fresh', 'fresh/deeper', 'fresh/deeper/f.txt']);

    report = await scanner.scan({ paths: ['../escape', '/abs', 'fine/../x'] });
    assert.equal(report.counts.errors, 3);
    assert.deepEqual(report.scope, []);
  });

  it('a path whose parent became a symlink is never scanned through it', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'd/f.txt', 'f');
    await put(root, 'elsewhere/f.txt', 'outside');
    await scanner.scan();
    await rm(join(root, 'd'), { recursive: true });
    await symlink('elsewhere', join(root, 'd'));
    const report = await scanner.scan({ paths: ['d/f.txt'] });
    assert.deepEqual(report.scope, ['d']);
    assert.deepEqual(report.modified, ['d']);
    assert.deepEqual(report.deleted, ['d/f.txt']);
    assert.equal((await recordOf(store, 'd')).type, 'symlink');
  });

  it('reports progress at a bounded rate, ending with everything hashed', async (t) => {
    const calls: ScanProgress[] = [];
    const { root, scanner } = await testFolder(t, { onProgress: (progress) => calls.push(progress), progressIntervalMs: 60_000 });
    for (let i = 0; i < 50; i++) await put(root, `f${i}.txt`, pseudoRandomBytes(10_000, i + 1));
    await scanner.scan();
    assert.ok(calls.length <= 4, `${calls.length} calls with a long interval`);
    const last = calls[calls.length - 1];
    assert.equal(last.phase, 'hashing');
    assert.equal(last.filesSeen, 50);
    assert.equal(last.filesToHash, 50);
    assert.equal(last.filesHashed, 50);
    assert.equal(last.bytesToHash, 500_000);
    assert.equal(last.bytesHashed, 500_000);
    assert.ok(calls.some((c) => c.phase === 'walking'));
    assert.equal((await readFile(join(root, 'f0.txt'))).length, 10_000);
  });

  it('tells of each commit while the scan goes on, so its records can be announced before it ends', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    const files = 2 * COMMIT_BATCH_SIZE + 10;
    for (let i = 0; i < files; i++) await put(root, `f${String(i).padStart(4, '0')}.txt`, `file ${i}`);
    const recordedAtEachCommit: number[] = [];
    await scanner.scan({ onCommitted: () => recordedAtEachCommit.push(store.lastSequence) });
    assert.deepEqual(recordedAtEachCommit, [COMMIT_BATCH_SIZE, 2 * COMMIT_BATCH_SIZE, files]);
  });
});

function pseudoHash(text: string): Uint8Array {
  // The content hash of a one-block file: SHA-256 of the SHA-256 of its bytes.
  return createHashOf(createHashOf(Buffer.from(text)));
}

function createHashOf(data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest();
}
