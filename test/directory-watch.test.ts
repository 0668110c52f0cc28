import assert from 'node:assert/strict';
import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchDirectories } from '../src/folder/directory-watch.js';
import { tempDir } from './helpers.js';

/** Lets inotify deliver and the watch follow new folders (events are asynchronous). */
const SETTLE_MS = 150;
const TIMEOUT_MS = 10_000;

async function watching(t: TestContext, prepare: (root: string) => Promise<void> = () => Promise.resolve()) {
  const root = await tempDir(t);
  await prepare(root);
  const paths: string[] = [];
  const errors: Error[] = [];
  const subscription = await watchDirectories(root, (error, events) => {
    if (error !== null) errors.push(error);
    for (const event of events) paths.push(event.path);
  });
  t.after(() => subscription.unsubscribe());
  const seen = async (path: string) => {
    for (const started = Date.now(); !paths.includes(path); await sleep(10)) {
      if (Date.now() - started > TIMEOUT_MS) assert.fail(`no event for ${path}; saw ${JSON.stringify(paths)}`);
    }
  };
  return { root, paths, errors, seen, subscription };
}

describe('the per-folder watch (Linux)', { skip: process.platform !== 'linux' && 'inotify per folder is the Linux watch' }, () => {
  it('reports changes in folders that existed when it began, none in the state folder, no temp file', async (t) => {
    const { root, paths, errors, seen } = await watching(t, async (root) => {
      await mkdir(join(root, 'docs', 'old'), { recursive: true });
      await mkdir(join(root, '.mesh', 'db'), { recursive: true });
    });
    await writeFile(join(root, '.mesh', 'db', 'LOG'), 'state');
    await utimes(join(root, '.mesh'), new Date(), new Date());
    await writeFile(join(root, 'docs', 'old', '.mesh-tmp.report.txt.1234'), 'a pull in progress');
    await rename(join(root, 'docs', 'old', '.mesh-tmp.report.txt.1234'), join(root, 'docs', 'old', 'report.txt'));
    await seen(join(root, 'docs', 'old', 'report.txt'));
    assert.deepEqual(paths.filter((path) => path.startsWith(join(root, '.mesh')) || path.includes('.mesh-tmp.')), []);
    assert.deepEqual(errors, []);
  });

  it('follows folders made after it began, however deep', async (t) => {
    const { root, seen } = await watching(t);
    await mkdir(join(root, 'a'));
    await seen(join(root, 'a'));
    await sleep(SETTLE_MS);
    await mkdir(join(root, 'a', 'b'));
    await seen(join(root, 'a', 'b'));
    await sleep(SETTLE_MS);
    await writeFile(join(root, 'a', 'b', 'deep.txt'), 'x');
    await seen(join(root, 'a', 'b', 'deep.txt'));
  });

  it('watches a tree moved in from outside, and a folder moved within under its new path', async (t) => {
    const outside = await tempDir(t);
    await mkdir(join(outside, 'album', '2026'), { recursive: true });
    const { root, seen } = await watching(t, (root) => mkdir(join(root, 'inbox')));
    await rename(join(outside, 'album'), join(root, 'album'));
    await seen(join(root, 'album'));
    await sleep(SETTLE_MS);
    await writeFile(join(root, 'album', '2026', 'photo.jpg'), 'x');
    await seen(join(root, 'album', '2026', 'photo.jpg'));

    await rename(join(root, 'inbox'), join(root, 'archive'));
    await seen(join(root, 'archive'));
    await sleep(SETTLE_MS);
    await writeFile(join(root, 'archive', 'moved.txt'), 'x');
    await seen(join(root, 'archive', 'moved.txt'));
  });

  it('watches a folder deleted and made again under the same name', async (t) => {
    const { root, paths, seen } = await watching(t, (root) => mkdir(join(root, 'x')));
    await rm(join(root, 'x'), { recursive: true });
    await mkdir(join(root, 'x'));
    await sleep(SETTLE_MS);
    paths.length = 0;
    await writeFile(join(root, 'x', 'again.txt'), 'x');
    await seen(join(root, 'x', 'again.txt'));
  });

  it('reports the root itself when it is deleted', async (t) => {
    const { root, seen } = await watching(t, (root) => writeFile(join(root, 'f'), 'x'));
    await rm(root, { recursive: true });
    await seen(root);
  });

  it('reports nothing once unsubscribed', async (t) => {
    const { root, paths, subscription } = await watching(t, (root) => mkdir(join(root, 'sub')));
    await subscription.unsubscribe();
    await writeFile(join(root, 'late.txt'), 'x');
    await writeFile(join(root, 'sub', 'late.txt'), 'x');
    await sleep(SETTLE_MS);
    assert.deepEqual(paths, []);
  });
});
