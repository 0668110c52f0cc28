import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAbsolute, join, relative, sep } from 'node:path';
import { InvalidPathError } from '../src/folder/errors.js';
import {
  MAX_NAME_BYTES,
  checkRelativePath,
  isWithin,
  outermost,
  relativePathProblem,
  toAbsolute,
} from '../src/folder/paths.js';

const HOSTILE = [
  '',
  '.',
  '..',
  '../x',
  'a/../../x',
  'a/..',
  './a',
  'a/./b',
  '/etc/passwd',
  'a//b',
  'a/',
  'C:\\x',
  'C:/x',
  '\\\\srv\\s',
  'a\\..\\..\\x',
  'a\u0000b',
  'a\nb',
  'bell\u0007',
  'esc\u001b[31m',
  'del\u007f',
  'csi\u009b',
  'e\u0301.txt', // NFD
  'lone\ud800',
  'x'.repeat(MAX_NAME_BYTES + 1),
  `${'abc/'.repeat(1100)}x`,
];

describe('folder-relative paths', () => {
  it('accepts ordinary names: spaces, Chinese, emoji, dots inside names', () => {
    for (const path of ['a', 'a/b/c.txt', 'with space/ and more ', '中文文件.txt', 'emoji 🎉/😀.md', '...', '.hidden/..x', 'é.txt', 'x'.repeat(MAX_NAME_BYTES)]) {
      assert.equal(checkRelativePath(path), path);
    }
  });

  it('rejects every hostile path a peer could send, with a typed error', () => {
    for (const path of HOSTILE) {
      assert.throws(
        () => checkRelativePath(path),
        (error: unknown) => error instanceof InvalidPathError && error.name === 'InvalidPathError' && error.path === path,
        `accepted ${JSON.stringify(path)}`,
      );
    }
  });

  it('error messages escape control characters (no terminal escapes in logs)', () => {
    assert.throws(
      () => checkRelativePath('esc\u001b[31m'),
      (error: Error) => error.message.includes('\\u001b') && !error.message.includes('\u001b'),
    );
  });

  it('toAbsolute refuses to leave the root and stays inside it for any valid path', () => {
    const root = '/srv/folder';
    for (const path of HOSTILE) assert.throws(() => toAbsolute(root, path));
    // Names that only begin with two dots are names, inside the root ('.. ' is what fast-check found).
    const inside = (path: string) => {
      const back = relative(root, toAbsolute(root, path));
      return back !== '' && back !== '..' && !back.startsWith(`..${sep}`) && !isAbsolute(back);
    };
    for (const path of ['..x', '.. ', '.. / ', 'a/..b', '...']) assert.ok(inside(path), path);
    const segment = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' });
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), (segments) => {
        const path = segments.join('/');
        if (relativePathProblem(path) !== undefined) {
          assert.throws(() => toAbsolute(root, path), InvalidPathError);
          return;
        }
        assert.ok(inside(path), `${path} -> ${toAbsolute(root, path)}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('toAbsolute gives what join gives, under any root: normalized, with a trailing separator, relative, the file system root', () => {
    const roots = ['/srv/folder', '/srv/folder/', '/', 'relative/folder', '/srv/./folder/../folder'];
    const segment = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' });
    fc.assert(
      fc.property(fc.constantFrom(...roots), fc.array(segment, { minLength: 1, maxLength: 6 }), (root, segments) => {
        const path = segments.join('/');
        if (relativePathProblem(path) === undefined) assert.equal(toAbsolute(root, path), join(root, ...segments));
        else assert.throws(() => toAbsolute(root, path), InvalidPathError);
      }),
      { numRuns: 2000 },
    );
  });

  it('isWithin and outermost treat "a b" and "a.txt" as siblings of "a", not children', () => {
    assert.ok(isWithin('a/b', 'a'));
    assert.ok(isWithin('a', 'a'));
    assert.ok(isWithin('anything', ''));
    assert.ok(!isWithin('a b', 'a'));
    assert.ok(!isWithin('ab/c', 'a'));
    assert.deepEqual(outermost(['a/b', 'a b', 'a', 'a.txt', 'a/b/c', 'z']), ['a', 'a b', 'a.txt', 'z']);
    assert.deepEqual(outermost(['x', '']), ['']);
  });
});
