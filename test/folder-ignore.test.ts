import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TEMP_PREFIX } from '../src/fs/atomic-write.js';
import { IgnoreFileError } from '../src/folder/errors.js';
import { IGNORE_FILE, IgnoreRules, isAlwaysIgnored } from '../src/folder/ignore.js';
import { tempDir } from './helpers.js';

describe('ignore rules', () => {
  it('.mesh at the root and mesh temp files anywhere are always ignored', () => {
    for (const path of ['.mesh', '.mesh/LOG', `${TEMP_PREFIX}x.1234`, `a/b/${TEMP_PREFIX}c.txt.ab12`, `${TEMP_PREFIX}dir/inside`]) {
      assert.ok(isAlwaysIgnored(path), path);
    }
    for (const path of ['a/.mesh', '.meshignore', '.mesh-other', 'mesh-tmp', `a/x${TEMP_PREFIX}`]) {
      assert.ok(!isAlwaysIgnored(path), path);
    }
  });

  it('applies gitignore syntax: globs, directory-only rules, anchors, negation, case-sensitive', async (t) => {
    const root = await tempDir(t);
    await writeFile(join(root, IGNORE_FILE), ['# comment', '*.log', '!keep.log', 'build/', '/top-only', 'cache/**/*.tmp', ''].join('\n'));
    const rules = new IgnoreRules(root);
    assert.equal(await rules.reload(), true);
    const cases: [string, boolean, boolean][] = [
      ['a.log', false, true],
      ['deep/er/a.log', false, true],
      ['keep.log', false, false],
      ['build', true, true],
      ['build', false, false], // a file named build: the rule is for directories
      ['src/build/x.c', false, true],
      ['top-only', false, true],
      ['sub/top-only', false, false],
      ['cache/a/b/c.tmp', false, true],
      ['A.LOG', false, false],
      ['notes.txt', false, false],
      ['.mesh', true, true],
    ];
    for (const [path, isDirectory, ignored] of cases) assert.equal(rules.isIgnored(path, isDirectory), ignored, `${path} (dir: ${isDirectory})`);
  });

  it('comments and blank lines alone ignore nothing; a rule after them, or one starting with a space, still counts', async (t) => {
    const root = await tempDir(t);
    const rules = new IgnoreRules(root);
    await writeFile(join(root, IGNORE_FILE), '# only a comment\n\n   \n\t\r\n#*.log\n');
    await rules.reload();
    for (const path of ['a.log', '#*.log', 'x']) assert.equal(rules.isIgnored(path, false), false, path);
    await writeFile(join(root, IGNORE_FILE), '# comment\n\n*.log\n');
    await rules.reload();
    assert.equal(rules.isIgnored('a.log', false), true);
    await writeFile(join(root, IGNORE_FILE), ' #odd\n');
    await rules.reload();
    assert.equal(rules.isIgnored(' #odd', false), true, 'a leading space is part of the pattern, not a comment');
  });

  it('reload notices a changed, a new and a removed .meshignore, and only then reports a change', async (t) => {
    const root = await tempDir(t);
    const rules = new IgnoreRules(root);
    assert.equal(await rules.reload(), false, 'no file: no rules, as before');
    assert.equal(rules.isIgnored('x.tmp', false), false);
    await writeFile(join(root, IGNORE_FILE), '*.tmp\n');
    assert.equal(await rules.reload(), true);
    assert.equal(rules.isIgnored('x.tmp', false), true);
    assert.equal(await rules.reload(), false);
    const before = rules.fingerprint;
    await writeFile(join(root, IGNORE_FILE), '*.bak\n');
    assert.equal(await rules.reload(), true);
    assert.notEqual(rules.fingerprint, before);
    assert.equal(rules.isIgnored('x.tmp', false), false);
    assert.equal(rules.isIgnored('x.bak', false), true);
    await writeFile(join(root, IGNORE_FILE), '');
    assert.equal(await rules.reload(), true);
    assert.equal(rules.isIgnored('x.bak', false), false);
  });

  it('an unreadable .meshignore is an error, never "no rules"', async (t) => {
    const root = await tempDir(t);
    await mkdir(join(root, IGNORE_FILE));
    await assert.rejects(new IgnoreRules(root).reload(), (error: Error) => error instanceof IgnoreFileError && error.name === 'IgnoreFileError');
  });
});
