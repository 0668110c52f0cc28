// kill -9 of the receiving `mesh join`, again and again at random moments of a large pull. After
// each kill: no partial file under the real name, at most the pull's own temp files, and the node
// starts again on the same store. In the end the file arrives intact and no temp file is left.
// And a kill at the worst moment of a pull, between the rename into place and the record's commit
// (of a file fetched whole, by delta, or moved from the old path of a rename).
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { sleep, startJoin, tempFolder, treeOf, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
const FILE_BYTES = 48 * 1024 * 1024;
/** A's sending rate: the file takes about 4 s, so there is time to kill B part way, whatever the load. */
const RATE_MBIT = 100;
const KILLS = 4;
/** Each kill comes once the temp file holds a random share of the file in this range (per mille). */
const KILL_SHARE_PER_MILLE: readonly [number, number] = [20, 950];
const PULL_STARTS_MS = 40_000;
const CONVERGE_MS = 60_000;
/** What a restart of a node in sync may receive: the index exchange and keep-alives, no file. */
const MAX_RESTART_BYTES = 256 * 1024;
/** After the restart, time for B's rescan and announcement and A's answer. */
const SETTLE_AFTER_RESTART_MS = 3000;

const isTemp = (name: string): boolean => name.startsWith('.mesh-tmp.');

/** Bytes in the largest mesh temp file of `dir`, 0 if none. */
async function tempBytes(dir: string): Promise<number> {
  const names = (await readdir(dir)).filter(isTemp);
  const sizes = await Promise.all(names.map((name) => stat(join(dir, name)).then((s) => s.size, () => 0)));
  return Math.max(0, ...sizes);
}

test('kill -9 of a receiver at random moments of a large pull, again and again: never a partial file, and it arrives intact', { skip, timeout: 240_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const [a, b] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b')]);
  await writeFile(join(a, 'big.bin'), randomBytes(FILE_BYTES));
  await lan.throttle(0, RATE_MBIT);
  const nodeA = startJoin(t, lan, 0, a, key);
  const expected = (await treeOf(a)).get('big.bin');

  for (let kill = 1; kill <= KILLS; kill++) {
    const nodeB = startJoin(t, lan, 1, b, key);
    const share = randomInt(...KILL_SHARE_PER_MILLE) / 1000;
    const deadline = Date.now() + PULL_STARTS_MS;
    for (let bytes = 0; bytes < share * FILE_BYTES; bytes = await tempBytes(b)) {
      if ((await readdir(b)).includes('big.bin')) break; // finished before this share: a kill after the pull
      if (Date.now() > deadline || nodeB.child.exitCode !== null) throw new Error(`kill ${kill}: no pull under way (${bytes} bytes)\n${nodeB.describe()}`);
      await sleep(randomInt(5, 40));
    }
    nodeB.child.kill('SIGKILL');
    await nodeB.exit;
    const names = await readdir(b);
    const temps = names.filter(isTemp);
    t.diagnostic(`kill ${kill} at ${(share * 100).toFixed(1)}%: ${names.filter((n) => n !== '.mesh').join(', ')}`);
    // The pull's temp file and the partial it set aside as its basis, nothing more.
    assert.ok(temps.length <= 2, `kill ${kill}: temp files pile up: ${temps.join(', ')}`);
    if (names.includes('big.bin')) {
      assert.equal((await treeOf(b)).get('big.bin'), expected, `kill ${kill}: a partial or wrong file sits under the real name`);
    }
  }

  const lastB = startJoin(t, lan, 1, b, key);
  const tree = await waitForSameTrees([a, b], CONVERGE_MS, (tr) => tr.has('big.bin'), [nodeA, lastB]);
  assert.equal(tree.get('big.bin'), expected);
  assert.deepEqual((await readdir(b)).filter(isTemp), [], 'temp files left behind');
  assert.doesNotMatch(lastB.stdout, /conflict/, 'the restarts made a conflict copy');
});

/**
 * The three ways a pulled file is placed: a whole small file in a fetch batch, a large one by
 * delta, a renamed one moved from its old path (the path it lands at: `placed`).
 */
const PLACEMENTS = [
  { path: 'note.txt', placed: 'note.txt', bytes: 2048, way: 'fetched whole' },
  { path: 'doc.bin', placed: 'doc.bin', bytes: 4 * 1024 * 1024, way: 'by delta' },
  { path: 'photo.bin', placed: 'photo renamed.bin', bytes: 4 * 1024 * 1024, way: 'moved by a rename' },
] as const;

for (const { path, placed: placedPath, bytes, way } of PLACEMENTS) {
  test(`kill -9 between placing a pulled file (${way}) and recording it: the restart keeps it, pulls nothing again, makes no conflict`, { skip, timeout: 120_000 }, async (t) => {
    const lan = await createLan(t, 2);
    const key = generateMeshKey();
    const [a, b] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b')]);
    await writeFile(join(a, path), randomBytes(bytes));
    const nodeA = startJoin(t, lan, 0, a, key);
    const firstB = startJoin(t, lan, 1, b, key);
    await waitForSameTrees([a, b], CONVERGE_MS, (tree) => tree.has(path), [nodeA, firstB]);
    await firstB.stop();

    const crashingB = startJoin(t, lan, 1, b, key, [], { env: { MESH_TEST_CRASH_AT: 'placed-before-commit' } });
    await crashingB.waitForOutput(/scanned the folder/, CONVERGE_MS);
    if (placedPath === path) await writeFile(join(a, path), randomBytes(bytes));
    else await rename(join(a, path), join(a, placedPath));
    await crashingB.exit;
    assert.equal(crashingB.child.signalCode, 'SIGKILL', crashingB.describe());
    const placed = await treeOf(b);
    assert.equal(placed.get(placedPath), (await treeOf(a)).get(placedPath), 'the crash point was not after the rename');
    if (placedPath !== path) assert.equal(placed.has(path), false, 'the renamed file was copied, not moved');

    const before = await lan.bytes(1);
    const lastB = startJoin(t, lan, 1, b, key);
    await lastB.waitForOutput(/peer connected/, CONVERGE_MS);
    // Settled: B's rescan found the placed file, and both agree it is A's version.
    await sleep(SETTLE_AFTER_RESTART_MS);
    const tree = await waitForSameTrees([a, b], CONVERGE_MS, undefined, [nodeA, lastB]);
    assert.deepEqual([...tree.keys()].filter((p) => p.includes('sync-conflict')), [], 'the restart made a conflict copy');
    assert.equal(tree.get(placedPath), placed.get(placedPath));
    assert.equal(tree.has(path), placedPath === path, 'the old path of the rename is back');
    const received = (await lan.bytes(1)).rx - before.rx;
    assert.ok(received < Math.max(bytes / 4, MAX_RESTART_BYTES), `B received ${received} bytes after the restart: the file was pulled again`);
    assert.doesNotMatch(lastB.stdout, new RegExp(`(pulled|moved) .*${placedPath.replace('.', '\\.')}`), 'the restart pulled the file again');
  });
}
