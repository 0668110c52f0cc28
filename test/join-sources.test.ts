// A pull goes to whichever connected peer has the version: C is pulling a large file from A when B,
// which has the same version, connects; A is killed part way, and C finishes from B at once,
// building on what A had sent (the bytes cross the wire about once), with the file intact.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { sleep, startJoin, tempFolder, treeOf, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
const FILE_BYTES = 32 * 1024 * 1024;
/** A's sending rate once B has the file: C's pull from A takes about 27 s, time enough to bring B in on a loaded machine. */
const RATE_MBIT = 10;
/** B is started again once C's temp file holds this share of the file. */
const START_B_AT = 0.05;
/** From A's death to C's complete file: B sends the rest unthrottled; the margin is for a loaded machine. */
const FINISH_MS = 10_000;
const MAX_WIRE_RATIO = 1.3;
const TIMEOUT_MS = 30_000;

async function tempBytes(dir: string): Promise<number> {
  const names = (await readdir(dir)).filter((name) => name.startsWith('.mesh-tmp.'));
  return Math.max(0, ...(await Promise.all(names.map((name) => stat(join(dir, name)).then((s) => s.size, () => 0)))));
}

test('a pull whose peer dies part way is finished by another peer with the same version, from the partial file', { skip, timeout: 90_000 }, async (t) => {
  const lan = await createLan(t, 3);
  const key = generateMeshKey();
  const [a, b, c] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b'), tempFolder(t, 'c')]);
  await writeFile(join(a, 'big.bin'), randomBytes(FILE_BYTES));
  const nodeA = startJoin(t, lan, 0, a, key);
  const firstB = startJoin(t, lan, 1, b, key);
  await waitForSameTrees([a, b], TIMEOUT_MS, (tree) => tree.has('big.bin'), [nodeA, firstB]);
  await firstB.stop();

  // C learns the file from A alone and pulls it slowly.
  await lan.throttle(0, RATE_MBIT);
  const before = await lan.bytes(2);
  const nodeC = startJoin(t, lan, 2, c, key);
  const deadline = Date.now() + TIMEOUT_MS;
  while ((await tempBytes(c)) < START_B_AT * FILE_BYTES) {
    if (Date.now() > deadline) throw new Error(`C's pull from A never got going\n${nodeC.describe()}`);
    await sleep(50);
  }
  // B comes back with the same version; C hears of it while still pulling from A.
  const secondB = startJoin(t, lan, 1, b, key);
  await secondB.waitForOutput(/node id:/, TIMEOUT_MS);
  await nodeC.waitForOutput(new RegExp(`peer connected: ${secondB.peerId!}`), TIMEOUT_MS);
  // Time for B's index batch to reach C (it is tiny).
  await sleep(1_000);
  const partial = await tempBytes(c);
  if (/pulled big\.bin/.test(nodeC.stdout) || partial === 0) throw new Error(`C finished pulling from A before A could be killed\n${nodeC.describe()}`);

  nodeA.child.kill('SIGKILL');
  await nodeA.exit;
  const killed = Date.now();
  const tree = await waitForSameTrees([b, c], FINISH_MS, (tr) => tr.has('big.bin'), [secondB, nodeC]);
  t.diagnostic(`C had ${partial} bytes from A; finished ${Date.now() - killed} ms after A died`);
  assert.equal(tree.get('big.bin'), (await treeOf(a)).get('big.bin'));
  // Within the same pull, not by a later retry of B's batch after the pull from A failed.
  assert.doesNotMatch(nodeC.stdout, /failed to apply big\.bin/);
  assert.match(nodeC.stdout, new RegExp(`pulled big\\.bin \\([\\d.]+ \\w+ received, [\\d.]+ MiB reused\\) from ${secondB.peerId!}`));
  const received = (await lan.bytes(2)).rx - before.rx;
  t.diagnostic(`C received ${received} bytes (${(received / FILE_BYTES).toFixed(2)} x the file)`);
  assert.ok(received < MAX_WIRE_RATIO * FILE_BYTES, `C received ${received} bytes for a ${FILE_BYTES}-byte file`);
});
