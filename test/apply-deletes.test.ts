// Deletes arriving together (a folder deleted elsewhere) are applied in batches: one hold of the
// folder lock, one fsync per folder and one commit per DELETE_BATCH paths, with every check of a
// delete made one at a time still made for each path of the batch.
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DELETE_BATCH } from '../src/node/batch-delete.js';
import { COMMIT_BATCH_SIZE } from '../src/folder/index.js';
import { announced, assertConverged, outcomeOf, pair, sync } from './apply-helpers.js';
import { put } from './folder-helpers.js';

const FILES = DELETE_BATCH + 44;

describe('apply: deletes in batches', () => {
  it(`a folder of ${FILES} files deleted elsewhere goes with one commit per ${DELETE_BATCH} deletes, its own tombstone last`, async (t) => {
    const { a, b } = await pair(t);
    for (let i = 0; i < FILES; i++) await put(a.root, `old/f-${String(i).padStart(3, '0')}.txt`, `file ${i}`);
    await put(a.root, 'keep.txt', 'stays');
    await sync(a, b);
    await rm(join(a.root, 'old'), { recursive: true });

    const commitSizes: number[] = [];
    const commit = b.store.commit.bind(b.store);
    b.store.commit = (changes) => {
      commitSizes.push(changes.length);
      return commit(changes);
    };
    const report = await sync(a, b);
    assert.equal(report.applied.filter((applied) => applied.action === 'deleted').length, FILES + 1);
    assert.deepEqual(commitSizes, [DELETE_BATCH, FILES + 1 - DELETE_BATCH]);
    const old = await b.store.get('old');
    assert.equal(old?.deleted, true, 'the folder has its tombstone');
    assert.equal(await readFile(join(b.root, 'keep.txt'), 'utf8'), 'stays');
    await assertConverged(a, b);
  });

  it('a folder deleted elsewhere goes even when its tombstones arrive in two parts, cut where a scan commit ends', async (t) => {
    const { a, b } = await pair(t);
    for (const sub of ['x', 'y']) for (let i = 0; i < 150; i++) await put(a.root, `old/${sub}/f-${String(i).padStart(3, '0')}.txt`, `${sub} ${i}`);
    await put(a.root, 'keep.txt', 'stays');
    await sync(a, b);
    const before = a.store.lastSequence;
    await rm(join(a.root, 'old'), { recursive: true });
    await a.scanner.scan();

    // A peer hears of each of A's commits as it lands (COMMIT_BATCH_SIZE tombstones at a time).
    const tombstones = (await announced(a)).filter((record) => record.sequence > before).sort((x, y) => x.sequence - y.sequence);
    assert.equal(tombstones.length, 303);
    await b.applier.apply(tombstones.slice(0, COMMIT_BATCH_SIZE));
    await b.applier.apply(tombstones.slice(COMMIT_BATCH_SIZE));
    assert.equal((await b.store.get('old'))?.deleted, true, 'the folder has its tombstone');
    await assertConverged(a, b);
  });

  it('a folder replaced by a file elsewhere becomes the file even when the records arrive in two parts', async (t) => {
    const { a, b } = await pair(t);
    for (const sub of ['x', 'y']) for (let i = 0; i < 150; i++) await put(a.root, `old/${sub}/f-${String(i).padStart(3, '0')}.txt`, `${sub} ${i}`);
    await sync(a, b);
    const before = a.store.lastSequence;
    await rm(join(a.root, 'old'), { recursive: true });
    await writeFile(join(a.root, 'old'), 'now a file');
    await a.scanner.scan();

    const records = (await announced(a)).filter((record) => record.sequence > before).sort((x, y) => x.sequence - y.sequence);
    assert.equal(records.length, 303);
    await b.applier.apply(records.slice(0, COMMIT_BATCH_SIZE));
    await b.applier.apply(records.slice(COMMIT_BATCH_SIZE));
    assert.equal(await readFile(join(b.root, 'old'), 'utf8'), 'now a file');
    await assertConverged(a, b);
  });

  it('each path of a batch is still checked: an edit made here since the scan is kept, and so is its folder', async (t) => {
    const { a, b } = await pair(t);
    for (const name of ['a', 'b', 'c']) await put(a.root, `d/${name}.txt`, name);
    await sync(a, b);
    await rm(join(a.root, 'd'), { recursive: true });
    await writeFile(join(b.root, 'd/b.txt'), 'edited on B, not yet scanned');

    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'd/a.txt'), 'applied deleted');
    assert.equal(outcomeOf(report, 'd/b.txt'), 'skipped kept-edit');
    assert.equal(outcomeOf(report, 'd/c.txt'), 'applied deleted');
    assert.equal(outcomeOf(report, 'd'), 'skipped kept-folder');
    assert.equal(await readFile(join(b.root, 'd/b.txt'), 'utf8'), 'edited on B, not yet scanned');
    assert.equal((await b.store.get('d/a.txt'))?.deleted, true);
    assert.equal((await b.store.get('d/b.txt'))?.deleted, false, 'the kept edit has no tombstone');
  });
});
