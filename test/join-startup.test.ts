// A peer that connects while a node is still in its first scan is answered once the scan is done,
// quietly: no refused index stream, no warning and retry on either side.
import assert from 'node:assert/strict';
import { readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { startJoin, tempFolder } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
/**
 * A sparse file of zeros, the same on both nodes (so nothing is transferred): B's first scan hashes
 * it for 3 s or more here (no disk read; much longer on a loaded machine), longer than B takes to
 * find A and connect (at most about 2 s).
 */
const SPARSE_BYTES = 3.5 * 1024 ** 3;
/** Each node's first scan, on a machine other work may slow to a tenth of its speed. */
const TIMEOUT_MS = 60_000;

test('a peer that connects during the first scan gets the index after it, with no warning on either side', { skip, timeout: 150_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const [a, b] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b')]);
  const old = new Date('2020-01-01T00:00:00Z');
  for (const dir of [a, b]) {
    await writeFile(join(dir, 'zeros.bin'), '');
    await truncate(join(dir, 'zeros.bin'), SPARSE_BYTES);
    await utimes(join(dir, 'zeros.bin'), old, old);
  }
  await writeFile(join(b, 'from b.txt'), 'made on b\n');
  const nodeA = startJoin(t, lan, 0, a, key);
  await nodeA.waitForOutput(/scanned the folder/, TIMEOUT_MS);
  const nodeB = startJoin(t, lan, 1, b, key);
  // (Not waitForSameTrees: it would read the 4 GiB file over and over, and slow the scan down.)
  await nodeA.waitForOutput(/pulled from b\.txt/, TIMEOUT_MS);
  assert.equal(await readFile(join(a, 'from b.txt'), 'utf8'), 'made on b\n');

  const connectedAt = nodeB.stdout.indexOf('peer connected');
  const scannedAt = nodeB.stdout.indexOf('scanned the folder');
  if (connectedAt < 0 || scannedAt < connectedAt) {
    throw new Error(`B finished its first scan before A connected: the case under test did not happen\n${nodeB.describe()}`);
  }
  for (const node of [nodeA, nodeB]) assert.doesNotMatch(node.stdout, /warning/, node.describe());
});
