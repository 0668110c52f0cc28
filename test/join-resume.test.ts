// A large pull interrupted by kill -9 of the receiving `mesh join` resumes when it is started again:
// the part already on disk (its temp file) is the basis of the next transfer, so the bytes that
// crossed the wire over both attempts are about the file's size once, not twice, and the file
// arrives intact.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { sleep, startJoin, tempFolder, treeOf, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
const FILE_BYTES = 64 * 1024 * 1024;
/** A's sending rate: the 64 MiB take about 5 s, so B can be killed part way, whatever the machine's load. */
const RATE_MBIT = 100;
/** B is killed once its temp file holds this share of the file. */
const KILL_AT = 0.4;
/** Both attempts together may move at most this many times the file (in flight when killed: a few MiB). */
const MAX_WIRE_RATIO = 1.3;
const TIMEOUT_MS = 40_000;

/** Size of the largest mesh temp file in `dir` (the pull's), 0 if none. */
async function tempBytes(dir: string): Promise<number> {
  const names = (await readdir(dir)).filter((name) => name.startsWith('.mesh-tmp.'));
  const sizes = await Promise.all(names.map((name) => stat(join(dir, name)).then((s) => s.size, () => 0)));
  return Math.max(0, ...sizes);
}

test('a large pull interrupted by kill -9 resumes from what it had received, and the file arrives intact', { skip, timeout: 90_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const [a, b] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b')]);
  await writeFile(join(a, 'big.bin'), randomBytes(FILE_BYTES));
  await lan.throttle(0, RATE_MBIT);
  const before = await lan.bytes(1);
  startJoin(t, lan, 0, a, key);
  const firstB = startJoin(t, lan, 1, b, key);

  const deadline = Date.now() + TIMEOUT_MS;
  for (let bytes = 0; bytes < KILL_AT * FILE_BYTES; bytes = await tempBytes(b)) {
    if (Date.now() > deadline || firstB.child.exitCode !== null) throw new Error(`no partial pull to interrupt (${bytes} bytes)\n${firstB.describe()}`);
    await sleep(20);
  }
  firstB.child.kill('SIGKILL');
  await firstB.exit;
  const partial = await tempBytes(b);
  t.diagnostic(`killed with ${partial} bytes in the temp file`);
  assert.ok(partial < FILE_BYTES, 'the pull finished before it could be interrupted');

  const secondB = startJoin(t, lan, 1, b, key);
  const tree = await waitForSameTrees([a, b], TIMEOUT_MS, (tr) => tr.has('big.bin'), [secondB]);
  assert.equal(tree.get('big.bin'), (await treeOf(a)).get('big.bin'));
  const received = (await lan.bytes(1)).rx - before.rx;
  t.diagnostic(`B received ${received} bytes over both attempts (${(received / FILE_BYTES).toFixed(2)} x the file)`);
  // The second attempt says what it reused: at least what was on disk when B was killed. (A false
  // block match, about one pull in a thousand here, adds a retry, which reuses what it received.)
  const pulled = /pulled big\.bin \(([\d.]+ \w+) received, ([\d.]+) (\w+) reused[;)]/.exec(secondB.stdout);
  assert.ok(pulled !== null, secondB.describe());
  assert.ok(received < MAX_WIRE_RATIO * FILE_BYTES, `B received ${received} bytes for a ${FILE_BYTES}-byte file: the partial pull was sent again\n${pulled[0]}`);
  assert.ok(pulled[3] === 'MiB' && Number(pulled[2]) * 1024 * 1024 >= partial - 1024 * 1024, `reused ${pulled[2]} ${pulled[3]}, had ${partial} bytes`);
  assert.deepEqual((await readdir(b)).filter((name) => name.startsWith('.mesh-tmp.')), [], 'temp files left behind');
});
