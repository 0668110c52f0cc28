// `mesh join` across a node's absence: a restarted node rereads and re-fetches nothing it has and
// catches up on what changed meanwhile; edits made on both sides while apart end as the same
// winner and the same conflict copy on both.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { startJoin, tempFolder, treeOf, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const SYNC_TIMEOUT_MS = 15_000;
const skip = await netnsUnavailable();

test('a restarted node rehashes nothing, re-fetches nothing and catches up on what changed while it was down', { skip, timeout: 60_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const a = await tempFolder(t, 'a');
  const b = await tempFolder(t, 'b');
  await writeFile(join(a, 'big.bin'), randomBytes(2 * 1024 * 1024));
  await writeFile(join(a, 'edited.txt'), 'first version\n');
  await writeFile(join(a, 'deleted.txt'), 'to be deleted\n');
  startJoin(t, lan, 0, a, key);
  const firstB = startJoin(t, lan, 1, b, key);
  await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tree) => tree.size === 3);
  await firstB.stop();
  assert.equal(await firstB.exit, 0, `mesh join did not exit cleanly on SIGTERM\n${firstB.describe()}`);

  await writeFile(join(a, 'edited.txt'), 'second version, made while b was down\n');
  await rm(join(a, 'deleted.txt'));
  // Let A's watcher record both before B comes back.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const before = await lan.bytes(1);
  const secondB = startJoin(t, lan, 1, b, key);
  const tree = await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tr) => !tr.has('deleted.txt') && tr.size === 2);
  const received = (await lan.bytes(1)).rx - before.rx;
  t.diagnostic(`restarted node received ${received} bytes`);
  assert.equal(tree.get('edited.txt'), (await treeOf(a)).get('edited.txt'));
  assert.match(secondB.stdout, /scanned the folder: \d+ entries, 0 files hashed/);
  assert.match(secondB.stdout, /pulled edited\.txt/);
  assert.match(secondB.stdout, /deleted deleted\.txt/);
  assert.doesNotMatch(secondB.stdout, /pulled big\.bin/);
  assert.ok(received < 256 * 1024, `the restarted node received ${received} bytes: something was fetched again`);
});

test('edits made on both sides while apart leave the same winner and the same conflict copy on both', { skip, timeout: 60_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const a = await tempFolder(t, 'a');
  const b = await tempFolder(t, 'b');
  await writeFile(join(a, 'shared.txt'), 'the original\n');
  startJoin(t, lan, 0, a, key);
  const firstB = startJoin(t, lan, 1, b, key);
  await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tree) => tree.has('shared.txt'));
  await firstB.stop();

  // B's edit is older (mtime), so A's wins; B keeps its own as the conflict copy.
  await writeFile(join(b, 'shared.txt'), 'edited on b while apart\n');
  await utimes(join(b, 'shared.txt'), new Date('2030-01-01T00:00:00Z'), new Date('2030-01-01T00:00:00Z'));
  await writeFile(join(a, 'shared.txt'), 'edited on a while apart\n');
  await utimes(join(a, 'shared.txt'), new Date('2031-01-01T00:00:00Z'), new Date('2031-01-01T00:00:00Z'));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const secondB = startJoin(t, lan, 1, b, key);
  const tree = await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tr) => [...tr.keys()].some((p) => p.startsWith('shared.sync-conflict-')));
  const copies = [...tree.keys()].filter((p) => p.startsWith('shared.sync-conflict-'));
  assert.equal(copies.length, 1, `one conflict copy expected: ${copies.join(', ')}`);
  assert.match(copies[0], /^shared\.sync-conflict-20300101-000000-[0-9a-f]{7}\.txt$/);
  const expectTree = await treeOf(a);
  assert.deepEqual(tree, expectTree);
  const hash = (text: string): string => `file:${createHash('sha256').update(text).digest('hex')}`;
  assert.equal(tree.get('shared.txt'), hash('edited on a while apart\n'));
  assert.equal(tree.get(copies[0]), hash('edited on b while apart\n'));
  assert.match(secondB.stdout, /conflict at shared\.txt/);
});
