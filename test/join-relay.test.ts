// Three `mesh join` nodes in a chain: A and C cannot reach each other (blackhole routes), B reaches
// both. What A changes reaches C through B, and back: a record a node applied becomes its own.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { startJoin, tempFolder, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

test('changes relay through the middle node of a chain A - B - C', { skip: await netnsUnavailable(), timeout: 60_000 }, async (t) => {
  const lan = await createLan(t, 3);
  await lan.partition(0, 2);
  const key = generateMeshKey();
  const [a, b, c] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b'), tempFolder(t, 'c')]);
  await writeFile(join(a, 'from a.txt'), 'made on a\n');
  const nodeA = startJoin(t, lan, 0, a, key);
  startJoin(t, lan, 1, b, key);
  const nodeC = startJoin(t, lan, 2, c, key);
  await waitForSameTrees([a, b, c], 20_000, (tree) => tree.has('from a.txt'));

  await writeFile(join(c, 'from c.txt'), 'made on c\n');
  await rm(join(c, 'from a.txt'));
  await waitForSameTrees([a, b, c], 15_000, (tree) => tree.has('from c.txt') && !tree.has('from a.txt'));
  const peerA = nodeA.peerId!;
  const peerC = nodeC.peerId!;
  assert.doesNotMatch(nodeA.stdout, new RegExp(`peer connected: ${peerC}`));
  assert.doesNotMatch(nodeC.stdout, new RegExp(`peer connected: ${peerA}`));
});
