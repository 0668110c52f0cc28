// New folders arriving together (a tree made elsewhere) are made in batches: one hold of the
// folder lock, one fsync per parent and one commit, with every check of a folder made one at a
// time still made for each.
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { FileChange } from '../src/store/types.js';
import { assertConverged, outcomeOf, pair, sync } from './apply-helpers.js';

/** Counts the changes of each commit B's store makes from now on. */
function countCommits(store: { commit(changes: readonly FileChange[]): Promise<unknown> }): number[] {
  const sizes: number[] = [];
  const commit = store.commit.bind(store);
  store.commit = (changes) => {
    sizes.push(changes.length);
    return commit(changes);
  };
  return sizes;
}

describe('apply: folders in batches', () => {
  it('a new tree of 31 folders is made with one commit, parents first, each with its permissions', async (t) => {
    const { a, b } = await pair(t);
    for (let top = 0; top < 5; top++) for (let sub = 0; sub < 5; sub++) await mkdir(join(a.root, `tree/t${top}/s${sub}`), { recursive: true });
    await chmod(join(a.root, 'tree/t3'), 0o750);
    await chmod(join(a.root, 'tree/t3/s1'), 0o700);

    const commits = countCommits(b.store);
    const report = await sync(a, b);
    assert.deepEqual(commits, [31]);
    assert.equal(report.applied.filter((applied) => applied.action === 'directory').length, 31);
    assert.equal((await stat(join(b.root, 'tree/t3'))).mode & 0o777, 0o750);
    assert.equal((await stat(join(b.root, 'tree/t3/s1'))).mode & 0o777, 0o700);
    await assertConverged(a, b);
  });

  it('a folder made here and not yet scanned is adopted; a file where a folder should go is kept', async (t) => {
    const { a, b } = await pair(t);
    for (const name of ['made', 'taken', 'new']) await mkdir(join(a.root, name));
    await mkdir(join(b.root, 'made'));
    await writeFile(join(b.root, 'taken'), 'a file of B, not yet scanned');

    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'made'), 'applied directory');
    assert.equal(outcomeOf(report, 'new'), 'applied directory');
    assert.equal(outcomeOf(report, 'taken'), 'skipped changed-locally');
    assert.equal(await readFile(join(b.root, 'taken'), 'utf8'), 'a file of B, not yet scanned');
    assert.equal((await b.store.get('made'))?.type, 'directory');
    assert.equal(await b.store.get('taken'), undefined);
  });

  it("a folder's new permissions are applied to the folder there", async (t) => {
    const { a, b } = await pair(t);
    await mkdir(join(a.root, 'shared'));
    await sync(a, b);
    await chmod(join(a.root, 'shared'), 0o711);

    const report = await sync(a, b);
    assert.equal(outcomeOf(report, 'shared'), 'applied directory');
    assert.equal((await stat(join(b.root, 'shared'))).mode & 0o777, 0o711);
    await assertConverged(a, b);
  });
});
