import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AsyncSubscription, SubscribeCallback } from '@parcel/watcher';
import { defaultSubscribe, FolderWatcher } from '../src/folder/watcher.js';
import { tempDir } from './helpers.js';

/** Waits (bounded) until `condition` holds; the bound only keeps a broken test from hanging. */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 10_000) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function watched(t: TestContext, init: Partial<ConstructorParameters<typeof FolderWatcher>[0]> = {}) {
  const root = await tempDir(t);
  await mkdir(join(root, '.mesh'));
  const rescans: (string[] | undefined)[] = [];
  const watcher = new FolderWatcher({
    root,
    rescan: (paths) => {
      rescans.push(paths?.sort());
      return Promise.resolve();
    },
    ...init,
  });
  await watcher.start();
  t.after(() => watcher.stop());
  return { root, rescans, watcher };
}

describe('the folder watcher', () => {
  it('rescans the path of a new file', async (t) => {
    const { root, rescans } = await watched(t);
    await writeFile(join(root, 'hello world.txt'), 'hi');
    await eventually(() => rescans.length > 0, 'a rescan');
    assert.deepEqual(rescans[0], ['hello world.txt']);
  });

  it('rescans just the path of a name that begins with two dots, not the whole folder', async (t) => {
    const { root, rescans } = await watched(t);
    await writeFile(join(root, '..x'), 'a name, not the parent folder');
    await eventually(() => rescans.length > 0, 'a rescan');
    assert.deepEqual(rescans[0], ['..x']);
  });

  it('turns a burst of 500 new files into a few rescans that cover them all', async (t) => {
    const { root, rescans } = await watched(t);
    await mkdir(join(root, 'burst'));
    for (let i = 0; i < 500; i++) await writeFile(join(root, 'burst', `f${i}`), String(i));
    // A rescan of a folder covers everything under it: a new folder may be reported as itself.
    const covered = (path: string) => rescans.some((paths) => paths === undefined || paths.some((p) => p === path || path.startsWith(`${p}/`)));
    await eventually(() => [...Array(500).keys()].every((i) => covered(`burst/f${i}`)), 'every file rescanned');
    assert.ok(rescans.length <= 10, `${rescans.length} rescans for one burst`);
  });

  it('never rescans for the state folder or temp files', async (t) => {
    const { root, rescans } = await watched(t);
    await writeFile(join(root, '.mesh', 'state'), 'x');
    await writeFile(join(root, '.mesh-tmp.file.1234'), 'x');
    await writeFile(join(root, 'real'), 'x');
    await eventually(() => rescans.length > 0, 'a rescan');
    await sleep(200);
    // A write may come as a create and an update in two batches: 'real' may be rescanned twice.
    assert.deepEqual([...new Set(rescans.flat())], ['real']);
  });

  it('on macOS and Windows, through @parcel/watcher, rescans a new file and never the state folder', async (t) => {
    // The source those systems get (on this machine @parcel/watcher watches through inotify).
    const { root, rescans } = await watched(t, { subscribe: defaultSubscribe('darwin') });
    await writeFile(join(root, '.mesh', 'state'), 'x');
    await writeFile(join(root, 'from a mac.txt'), 'x');
    await eventually(() => rescans.length > 0, 'a rescan');
    assert.deepEqual([...new Set(rescans.flat())], ['from a mac.txt']);
  });

  it('a watcher error (lost events) becomes a full rescan', async (t) => {
    let emit: SubscribeCallback | undefined;
    const subscription: AsyncSubscription = { unsubscribe: () => Promise.resolve() };
    const { rescans } = await watched(t, {
      subscribe: (_root, callback) => {
        emit = callback;
        return Promise.resolve(subscription);
      },
      onError: () => undefined,
    });
    emit?.(new Error('Events were dropped'), []);
    await eventually(() => rescans.length > 0, 'a rescan');
    assert.deepEqual(rescans, [undefined]);
  });

  it('paths touched during a rescan are rescanned after it, one rescan at a time', async (t) => {
    let active = 0;
    let overlapped = false;
    const calls: (string[] | undefined)[] = [];
    let emit: SubscribeCallback | undefined;
    const { root } = await watched(t, {
      subscribe: (_root, callback) => {
        emit = callback;
        return Promise.resolve({ unsubscribe: () => Promise.resolve() });
      },
      rescan: async (paths) => {
        overlapped ||= active > 0;
        active++;
        calls.push(paths);
        // While this rescan runs, another path is touched.
        if (calls.length === 1) emit?.(null, [{ type: 'update', path: join(root, 'y') }]);
        await sleep(100);
        active--;
      },
    });
    emit?.(null, [{ type: 'create', path: join(root, 'x') }]);
    await eventually(() => calls.length === 2, 'the second rescan');
    assert.deepEqual(calls, [['x'], ['y']]);
    assert.equal(overlapped, false);
  });

  it('stops: no rescan after stop()', async (t) => {
    const { root, rescans, watcher } = await watched(t);
    await watcher.stop();
    await writeFile(join(root, 'late'), 'x');
    await sleep(300);
    assert.deepEqual(rescans, []);
  });
});
