import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FolderLock } from '../src/folder/index.js';
import { put, testFolder } from './folder-helpers.js';

describe('folder lock', () => {
  it('runs holders one at a time, in the order they asked', async () => {
    const lock = new FolderLock();
    const events: string[] = [];
    const holder = (name: string, ms: number) =>
      lock.run(async () => {
        events.push(`${name} in`);
        await new Promise((resolve) => setTimeout(resolve, ms));
        events.push(`${name} out`);
        return name;
      });
    const results = await Promise.all([holder('a', 20), holder('b', 1), holder('c', 5)]);
    assert.deepEqual(results, ['a', 'b', 'c']);
    assert.deepEqual(events, ['a in', 'a out', 'b in', 'b out', 'c in', 'c out']);
    assert.equal(lock.busy, false);
  });

  it('a failed holder releases the lock and its caller sees the failure', async () => {
    const lock = new FolderLock();
    await assert.rejects(
      lock.run(() => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(await lock.run(() => 'next'), 'next');
  });

  it('a scan waits for the holder of the folder lock', async (t) => {
    const lock = new FolderLock();
    const { root, store, scanner } = await testFolder(t, { lock });
    await put(root, 'a.txt', 'a');
    let release!: () => void;
    const held = lock.run(() => new Promise<void>((resolve) => (release = resolve)));
    const scan = scanner.scan();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await store.get('a.txt'), undefined, 'the scan must not record while the lock is held');
    release();
    await held;
    const report = await scan;
    assert.equal(report.counts.added, 1);
    assert.equal(lock.busy, false);
  });
});
