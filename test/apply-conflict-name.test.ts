import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRelativePath, MAX_NAME_BYTES } from '../src/folder/paths.js';
import { conflictName, parseConflictName } from '../src/node/conflict-name.js';

const DEVICE = 'c0ffee1234567890';
// 2024-03-05 07:08:09.123456789 UTC
const MTIME = 1_709_622_489_123_456_789n;
const SUFFIX = '.sync-conflict-20240305-070809-c0ffee1';

describe('conflict copy names', () => {
  it('parseConflictName reads back the original path and device of every name conflictName makes', () => {
    for (const path of ['notes.txt', 'a/b/report.pdf', 'backup.tar.gz', 'Makefile', 'dir.d/README', '.bashrc', '.config.json', '中文/名字 1.md']) {
      assert.deepEqual(parseConflictName(conflictName(path, MTIME, DEVICE)), { original: path, device: 'c0ffee1' }, path);
    }
    for (const path of ['notes.txt', 'a/notes.sync-conflict-2024-x.txt', 'x.sync-conflict-20240305-070809-C0FFEE1.txt', '.sync-conflict-20240305-070809-c0ffee1']) {
      assert.equal(parseConflictName(path), undefined, path);
    }
  });

  it('puts the suffix before the last extension, in the same folder', () => {
    assert.equal(conflictName('notes.txt', MTIME, DEVICE), `notes${SUFFIX}.txt`);
    assert.equal(conflictName('a/b/report.pdf', MTIME, DEVICE), `a/b/report${SUFFIX}.pdf`);
  });

  it('uses only the last of several dots', () => {
    assert.equal(conflictName('backup.tar.gz', MTIME, DEVICE), `backup.tar${SUFFIX}.gz`);
    assert.equal(conflictName('x/v1.2.3.json', MTIME, DEVICE), `x/v1.2.3${SUFFIX}.json`);
  });

  it('puts the suffix at the end of a name without an extension', () => {
    assert.equal(conflictName('Makefile', MTIME, DEVICE), `Makefile${SUFFIX}`);
    assert.equal(conflictName('dir.d/README', MTIME, DEVICE), `dir.d/README${SUFFIX}`, 'a dot in a folder name is no extension');
  });

  it('treats a dotfile with no other dot as having no extension', () => {
    assert.equal(conflictName('.bashrc', MTIME, DEVICE), `.bashrc${SUFFIX}`);
    assert.equal(conflictName('home/.profile', MTIME, DEVICE), `home/.profile${SUFFIX}`);
    assert.equal(conflictName('.config.json', MTIME, DEVICE), `.config${SUFFIX}.json`);
  });

  it('keeps spaces and non-ASCII names as they are', () => {
    assert.equal(conflictName('My Documents/tax return 2023.xlsx', MTIME, DEVICE), `My Documents/tax return 2023${SUFFIX}.xlsx`);
    assert.equal(conflictName('文档/会议 记录.docx', MTIME, DEVICE), `文档/会议 记录${SUFFIX}.docx`);
    assert.equal(conflictName('照片', MTIME, DEVICE), `照片${SUFFIX}`);
  });

  it('writes the time in UTC, whole seconds rounded down, and 7 digits of the device', () => {
    assert.equal(conflictName('f', 0n, '0123456789abcdef'), 'f.sync-conflict-19700101-000000-0123456');
    assert.equal(conflictName('f', 999_999_999n, DEVICE), 'f.sync-conflict-19700101-000000-c0ffee1');
    assert.equal(conflictName('f', -1n, DEVICE), 'f.sync-conflict-19691231-235959-c0ffee1');
    assert.equal(conflictName('f', 4_102_444_799_000_000_000n, DEVICE), 'f.sync-conflict-20991231-235959-c0ffee1');
  });

  it('stays within NAME_MAX, cutting the name between characters', () => {
    const long = `${'文'.repeat(84)}.txt`; // 252 + 4 bytes
    const name = conflictName(`d/${long}`, MTIME, DEVICE);
    const base = name.slice(2);
    assert.ok(Buffer.byteLength(base) <= MAX_NAME_BYTES);
    assert.ok(base.endsWith(`${SUFFIX}.txt`));
    assert.ok(/^文+\.sync/.test(base));
    checkRelativePath(name);
    const hugeExtension = `a.${'x'.repeat(250)}`;
    const other = conflictName(hugeExtension, MTIME, DEVICE);
    assert.ok(Buffer.byteLength(other) <= MAX_NAME_BYTES);
    assert.ok(other.endsWith(SUFFIX));
  });

  it('is the same name on every device for the same losing version', () => {
    assert.equal(conflictName('a b/c.d.e', MTIME, DEVICE), conflictName('a b/c.d.e', MTIME, DEVICE));
  });
});
