// A rename storm: 1,000 renames on one node as fast as the disk takes them (files moved between
// folders under new names, and whole folders swapped through a third name), while its peer is
// connected. The peer ends with the same tree: every file's content exactly once, none lost, none
// duplicated, no conflict copy.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { startJoin, tempFolder, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
const FOLDERS = 10;
const FILES_PER_FOLDER = 30;
const RENAMES = 1000;
/** One rename in this many swaps two folders instead of moving a file. */
const FOLDER_SWAP_EVERY = 10;
const FIRST_SYNC_MS = 60_000;
const SETTLE_MS = 90_000;

const filesOf = (tree: Map<string, string>): string[] => [...tree].filter(([, what]) => what.startsWith('file:')).map(([, what]) => what);

test('1,000 renames and folder swaps on one node: the other ends with the same tree, every file once', { skip, timeout: 240_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const [a, b] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b')]);
  // Where each file is now: folder index and name; folders keep their names, their contents swap.
  const files: { folder: number; name: string }[] = [];
  for (let folder = 0; folder < FOLDERS; folder++) {
    await mkdir(join(a, `d${folder}`));
    for (let i = 0; i < FILES_PER_FOLDER; i++) {
      const name = `f${files.length}.bin`;
      await writeFile(join(a, `d${folder}`, name), randomBytes(randomInt(1024, 4096)));
      files.push({ folder, name });
    }
  }
  const nodeA = startJoin(t, lan, 0, a, key);
  const nodeB = startJoin(t, lan, 1, b, key);
  const before = await waitForSameTrees([a, b], FIRST_SYNC_MS, (tree) => filesOf(tree).length === files.length, [nodeA, nodeB]);

  let swaps = 0;
  for (let step = 0; step < RENAMES; step++) {
    if (step % FOLDER_SWAP_EVERY === 0) {
      const x = randomInt(FOLDERS);
      const y = (x + 1 + randomInt(FOLDERS - 1)) % FOLDERS; // any other folder
      await rename(join(a, `d${x}`), join(a, 'swap'));
      await rename(join(a, `d${y}`), join(a, `d${x}`));
      await rename(join(a, 'swap'), join(a, `d${y}`));
      for (const file of files) if (file.folder === x) file.folder = y;
      else if (file.folder === y) file.folder = x;
      swaps++;
    } else {
      const file = files[randomInt(files.length)];
      const to = { folder: randomInt(FOLDERS), name: `f${randomInt(1e9)}-${step}.bin` };
      await rename(join(a, `d${file.folder}`, file.name), join(a, `d${to.folder}`, to.name));
      Object.assign(file, to);
    }
  }
  t.diagnostic(`${RENAMES} renames, ${swaps} of them folder swaps`);

  const expectedPaths = files.map((f) => `d${f.folder}/${f.name}`).sort();
  const tree = await waitForSameTrees(
    [a, b],
    SETTLE_MS,
    (tr) => expectedPaths.every((path) => tr.has(path)),
    [nodeA, nodeB],
  );
  assert.deepEqual(filesOf(tree).sort(), filesOf(before).sort(), 'file contents lost or duplicated');
  assert.deepEqual([...tree.keys()].filter((p) => p.includes('sync-conflict')), [], 'renames made conflict copies');
  assert.equal(tree.has('swap'), false);
});
