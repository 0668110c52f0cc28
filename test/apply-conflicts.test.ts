import assert from 'node:assert/strict';
import { readFile, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { conflictName, type ApplyReport } from '../src/node/index.js';
import { compare } from '../src/store/version-vector.js';
import { announced, assertConverged, makeSide, outcomeOf, pair, sync, treeOf, type Side } from './apply-helpers.js';
import { put, recordOf } from './folder-helpers.js';

const A_DEVICE = 'aaaaaaaaaaaaaaaa';
const EARLIER = new Date('2024-03-05T07:08:09Z');
const LATER = new Date('2024-03-05T07:08:10Z');

async function edit(side: Side, path: string, text: string, mtime: Date): Promise<void> {
  await writeFile(join(side.root, path), text);
  await utimes(join(side.root, path), mtime, mtime);
}

describe('apply: conflicts', () => {
  for (const first of ['A', 'B'] as const) {
    it(`concurrent edits: both sides pick the newer edit and name the conflict copy alike (${first} applies first)`, async (t) => {
      const { a, b } = await pair(t);
      await put(a.root, 'docs/report final.txt', 'original');
      await sync(a, b);
      await edit(a, 'docs/report final.txt', 'edited on A, earlier', EARLIER);
      await edit(b, 'docs/report final.txt', 'edited on B, later', LATER);
      await a.scanner.scan();
      await b.scanner.scan();
      const fromA = await announced(a);
      const fromB = await announced(b);

      // Each device decides about the other's version, from the same two versions.
      let onA: ApplyReport;
      let onB: ApplyReport;
      if (first === 'A') {
        onA = await a.applier.apply(fromB);
        onB = await b.applier.apply(fromA);
      } else {
        onB = await b.applier.apply(fromA);
        onA = await a.applier.apply(fromB);
      }
      assert.equal(outcomeOf(onB, 'docs/report final.txt'), 'skipped local-wins');
      assert.equal(outcomeOf(onA, 'docs/report final.txt'), 'applied file');

      const loserA = fromA.find((r) => r.path === 'docs/report final.txt')!;
      const expectedCopy = conflictName(loserA.path, loserA.mtimeNs, loserA.modifiedBy);
      assert.equal(expectedCopy, 'docs/report final.sync-conflict-20240305-070809-aaaaaaa.txt');
      assert.deepEqual(onA.conflictCopies, [expectedCopy]);
      assert.equal(await readFile(join(a.root, expectedCopy), 'utf8'), 'edited on A, earlier');
      assert.equal(await readFile(join(a.root, 'docs/report final.txt'), 'utf8'), 'edited on B, later');
      // The copy was rescanned: a new file of A's, which syncs like any other.
      assert.equal((await recordOf(a.store, expectedCopy)).modifiedBy, A_DEVICE);
      // The loser recorded merge(L, R) with the winner's content; the winner takes it as it comes
      // back: a newer version of what it has, so no byte moves.
      const winner = await recordOf(b.store, 'docs/report final.txt');
      assert.equal(compare((await recordOf(a.store, 'docs/report final.txt')).version, winner.version), 'dominates');
      const served = b.served.length + a.served.length;
      const back = await sync(a, b);
      assert.equal(outcomeOf(back, 'docs/report final.txt'), 'applied metadata');
      assert.equal(outcomeOf(back, expectedCopy), 'applied file');
      assert.equal(b.served.length + a.served.length, served + 1, 'only the conflict copy was transferred');
      await sync(b, a);
      await assertConverged(a, b);
      await assertConverged(b, a);
      assert.equal(await readFile(join(b.root, expectedCopy), 'utf8'), 'edited on A, earlier');
    });
  }

  it('equal mtimes: the greater device id wins, on both sides', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'original');
    await sync(a, b);
    await edit(a, 'f.txt', 'A', EARLIER);
    await edit(b, 'f.txt', 'B', EARLIER);
    await a.scanner.scan();
    await b.scanner.scan();
    const fromA = await announced(a);
    const fromB = await announced(b);
    const onA = await a.applier.apply(fromB);
    const onB = await b.applier.apply(fromA);
    assert.equal(outcomeOf(onB, 'f.txt'), 'skipped local-wins');
    assert.equal(outcomeOf(onA, 'f.txt'), 'applied file');
    assert.deepEqual(onA.conflictCopies, ['f.sync-conflict-20240305-070809-aaaaaaa.txt']);
    await sync(a, b);
    await assertConverged(a, b);
    assert.equal(await readFile(join(b.root, 'f.txt'), 'utf8'), 'B');
  });

  it('concurrent identical edits are merged: no conflict copy, one version', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'original');
    await sync(a, b);
    await edit(a, 'f.txt', 'same new text', EARLIER);
    await edit(b, 'f.txt', 'same new text', LATER);
    await a.scanner.scan();
    await b.scanner.scan();
    const fromA = await announced(a);
    const fromB = await announced(b);
    const onA = await a.applier.apply(fromB);
    const onB = await b.applier.apply(fromA);
    assert.equal(outcomeOf(onA, 'f.txt'), 'applied merged');
    assert.equal(outcomeOf(onB, 'f.txt'), 'applied merged');
    assert.deepEqual([...onA.conflictCopies, ...onB.conflictCopies], []);
    assert.equal(compare((await recordOf(a.store, 'f.txt')).version, (await recordOf(b.store, 'f.txt')).version), 'equal');
    assert.equal(a.served.length + b.served.length, 1, 'only the first sync transferred');
  });

  it('edit beats delete: a delete concurrent with an edit keeps the edit on both sides', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'original');
    await sync(a, b);
    await unlink(join(a.root, 'f.txt'));
    await edit(b, 'f.txt', 'edited on B, long before the delete', new Date('2000-01-01T00:00:00Z'));
    await a.scanner.scan();
    await b.scanner.scan();
    const fromA = await announced(a);
    const fromB = await announced(b);
    const onA = await a.applier.apply(fromB);
    const onB = await b.applier.apply(fromA);
    assert.equal(outcomeOf(onA, 'f.txt'), 'applied file', 'the deleting side gets the edit back');
    assert.deepEqual(onA.conflictCopies, [], 'a delete leaves nothing to keep');
    assert.equal(outcomeOf(onB, 'f.txt'), 'skipped local-wins');
    assert.equal(await readFile(join(a.root, 'f.txt'), 'utf8'), 'edited on B, long before the delete');
    await sync(a, b);
    await assertConverged(b, a);
  });

  it('a loser that hears of the conflict only after the winner decided still keeps its version', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'f.txt', 'original');
    await sync(a, b);
    await edit(a, 'f.txt', 'edited on A, earlier', EARLIER);
    await edit(b, 'f.txt', 'edited on B, later', LATER);
    await a.scanner.scan();
    await b.scanner.scan();
    // B (the winner) decides first, then A hears of B's version as it stands after that.
    assert.equal(outcomeOf(await b.applier.apply(await announced(a)), 'f.txt'), 'skipped local-wins');
    const onA = await a.applier.apply(await announced(b));
    assert.deepEqual(onA.conflictCopies, ['f.sync-conflict-20240305-070809-aaaaaaa.txt']);
    await sync(a, b);
    await assertConverged(a, b);
    assert.equal(await readFile(join(b.root, 'f.sync-conflict-20240305-070809-aaaaaaa.txt'), 'utf8'), 'edited on A, earlier');
  });

  it('three devices: the conflict copy made on two of them is one file, merged, not copied again', async (t) => {
    const { a, b, mesh } = await pair(t);
    const c = await makeSide(t, mesh, 'C', 'cccccccccccccccc');
    await put(a.root, 'f.txt', 'original');
    await sync(a, b);
    await edit(a, 'f.txt', 'edited on A, earlier', EARLIER);
    await sync(a, c); // C holds A's version too
    await edit(b, 'f.txt', 'edited on B, later', LATER);
    await b.scanner.scan();
    const fromB = await announced(b);
    const onA = await a.applier.apply(fromB);
    const onC = await c.applier.apply(fromB);
    const copy = 'f.sync-conflict-20240305-070809-aaaaaaa.txt';
    assert.deepEqual(onA.conflictCopies, [copy]);
    assert.deepEqual(onC.conflictCopies, [copy], 'C names the loser as A does');
    const report = await sync(a, c);
    assert.equal(outcomeOf(report, copy), 'applied merged');
    await sync(c, b);
    await sync(a, b);
    await sync(b, a);
    await sync(b, c);
    await assertConverged(b, a);
    await assertConverged(b, c);
  });

  it('a folder that loses to a file is kept, with its contents, under its conflict name', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'x/inside.txt', 'in the folder');
    await utimes(join(a.root, 'x'), EARLIER, EARLIER);
    await put(b.root, 'x', 'a file named x');
    await utimes(join(b.root, 'x'), LATER, LATER);
    await a.scanner.scan();
    await b.scanner.scan();
    const fromA = await announced(a);
    const fromB = await announced(b);
    const onA = await a.applier.apply(fromB);
    const onB = await b.applier.apply(fromA);
    const copy = conflictName('x', fromA.find((r) => r.path === 'x')!.mtimeNs, A_DEVICE);
    assert.equal(copy, 'x.sync-conflict-20240305-070809-aaaaaaa');
    assert.deepEqual(onA.conflictCopies, [copy]);
    assert.equal(outcomeOf(onB, 'x'), 'skipped local-wins');
    assert.equal(await readFile(join(a.root, 'x'), 'utf8'), 'a file named x');
    assert.equal(await readFile(join(a.root, copy, 'inside.txt'), 'utf8'), 'in the folder');
    // A's rescan recorded the move of the folder's contents: x/inside.txt deleted, the copy's added.
    assert.equal((await recordOf(a.store, 'x/inside.txt')).deleted, true);
    // B could not put x/inside.txt under its file x; the next round settles it.
    assert.equal(outcomeOf(onB, 'x/inside.txt'), 'failed UnsafePathError');
    await sync(a, b);
    await sync(b, a);
    await assertConverged(a, b);
    assert.deepEqual([...(await treeOf(b.root)).keys()], ['x', copy, `${copy}/inside.txt`]);
  });
});
