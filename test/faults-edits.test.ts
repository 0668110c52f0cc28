// Edits that race: a delete against an edit, an edit on a machine whose clock is far behind, and
// edits on either side while a large file is being pulled. Decisions follow version vectors, not
// wall clocks; no version is ever lost, and two versions made on one node are never a conflict.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { sleep, startJoin, tempFolder, waitForSameTrees, type JoinProcess } from './join-helpers.js';
import { createLan, netnsUnavailable, type Lan } from './netns.js';

const skip = await netnsUnavailable();
const SYNC_MS = 30_000;
const MiB = 1024 * 1024;
/** Large enough that, at RATE_MBIT, a pull lasts a few seconds: time to edit during it. */
const BIG_BYTES = 24 * MiB;
const RATE_MBIT = 80;
const PULL_STARTS_MS = 30_000;

const hash = (bytes: string | Uint8Array): string => `file:${createHash('sha256').update(bytes).digest('hex')}`;
const conflictCopies = (tree: Map<string, string>, stem: string): string[] => [...tree.keys()].filter((p) => p.startsWith(`${stem}.sync-conflict-`));

interface Pair {
  lan: Lan;
  key: string;
  dirs: [string, string];
  nodes: [JoinProcess, JoinProcess];
}

async function startPair(t: TestContext, seed: (a: string, b: string) => Promise<void>): Promise<Pair> {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const dirs: [string, string] = [await tempFolder(t, 'a'), await tempFolder(t, 'b')];
  await seed(...dirs);
  const nodes: [JoinProcess, JoinProcess] = [startJoin(t, lan, 0, dirs[0], key), startJoin(t, lan, 1, dirs[1], key)];
  return { lan, key, dirs, nodes };
}

async function writeWithMtime(path: string, content: string | Uint8Array, mtime: string): Promise<void> {
  await writeFile(path, content);
  await utimes(path, new Date(mtime), new Date(mtime));
}

/** Waits until the largest mesh temp file in `dir` holds at least `bytes`. */
async function waitForPartialPull(dir: string, bytes: number, node: JoinProcess): Promise<void> {
  const deadline = Date.now() + PULL_STARTS_MS;
  for (;;) {
    const names = (await readdir(dir)).filter((name) => name.startsWith('.mesh-tmp.'));
    const sizes = await Promise.all(names.map((name) => stat(join(dir, name)).then((s) => s.size, () => 0)));
    if (Math.max(0, ...sizes) >= bytes) return;
    if (Date.now() > deadline) throw new Error(`no pull under way within ${PULL_STARTS_MS} ms\n${node.describe()}`);
    await sleep(20);
  }
}

test('a delete against an edit made while apart: the edit wins on both nodes, even with an older mtime', { skip, timeout: 120_000 }, async (t) => {
  const { lan, key, dirs, nodes } = await startPair(t, (a) => writeFile(join(a, 'doc.txt'), 'first\n'));
  const [a, b] = dirs;
  await waitForSameTrees(dirs, SYNC_MS, (tree) => tree.has('doc.txt'), nodes);
  await nodes[1].stop();
  await unlink(join(a, 'doc.txt'));
  await nodes[0].waitForOutput(/announced delete of doc\.txt/, SYNC_MS);
  await writeWithMtime(join(b, 'doc.txt'), 'edited while apart\n', '2001-01-01T00:00:00Z');
  const restartedB = startJoin(t, lan, 1, b, key);
  const tree = await waitForSameTrees(dirs, SYNC_MS, (tr) => tr.get('doc.txt') === hash('edited while apart\n'), [nodes[0], restartedB]);
  assert.deepEqual(conflictCopies(tree, 'doc'), [], 'an edit against a delete is not a conflict');
});

test('an edit on a node whose clock is 30 years behind still replaces the version it was made on', { skip, timeout: 120_000 }, async (t) => {
  const { dirs, nodes } = await startPair(t, (a) => writeWithMtime(join(a, 'note.txt'), 'from the node ahead\n', '2030-06-01T00:00:00Z'));
  const [a, b] = dirs;
  await waitForSameTrees(dirs, SYNC_MS, (tree) => tree.has('note.txt'), nodes);
  await writeWithMtime(join(b, 'note.txt'), 'from the node behind, made later\n', '2000-06-01T00:00:00Z');
  const tree = await waitForSameTrees(dirs, SYNC_MS, (tr) => tr.get('note.txt') === hash('from the node behind, made later\n'), nodes);
  assert.deepEqual(conflictCopies(tree, 'note'), [], 'a later edit is not a conflict, whatever its mtime');
  assert.equal((await stat(join(a, 'note.txt'))).mtime.toISOString(), '2000-06-01T00:00:00.000Z');
});

test('an edit on the receiver while it pulls a new version: both versions are kept on both nodes', { skip, timeout: 120_000 }, async (t) => {
  const { lan, dirs, nodes } = await startPair(t, (a) => writeFile(join(a, 'big.bin'), 'version 1\n'));
  const [a, b] = dirs;
  await waitForSameTrees(dirs, SYNC_MS, (tree) => tree.has('big.bin'), nodes);
  await lan.throttle(0, RATE_MBIT);
  const fromA = randomBytes(BIG_BYTES);
  await writeFile(join(a, 'big.bin'), fromA);
  await waitForPartialPull(b, BIG_BYTES / 4, nodes[1]);
  await writeFile(join(b, 'big.bin'), 'edited on b during the pull\n');
  const tree = await waitForSameTrees(dirs, SYNC_MS, (tr) => conflictCopies(tr, 'big').length > 0, nodes);
  const copies = conflictCopies(tree, 'big');
  assert.equal(copies.length, 1, copies.join(', '));
  assert.deepEqual([tree.get('big.bin'), tree.get(copies[0])].sort(), [hash(fromA), hash('edited on b during the pull\n')].sort());
});

test('an edit on the sender while the receiver pulls: the receiver ends with the latest version and no conflict copy', { skip, timeout: 120_000 }, async (t) => {
  const { lan, dirs, nodes } = await startPair(t, (a) => writeFile(join(a, 'big.bin'), 'version 1\n'));
  const [a, b] = dirs;
  await waitForSameTrees(dirs, SYNC_MS, (tree) => tree.has('big.bin'), nodes);
  await lan.throttle(0, RATE_MBIT);
  await writeFile(join(a, 'big.bin'), randomBytes(BIG_BYTES));
  await waitForPartialPull(b, BIG_BYTES / 4, nodes[1]);
  const latest = randomBytes(BIG_BYTES);
  latest.write('the latest version', 0);
  await writeFile(join(a, 'big.bin'), latest);
  const tree = await waitForSameTrees(dirs, SYNC_MS, (tr) => tr.get('big.bin') === hash(latest), nodes);
  assert.deepEqual(conflictCopies(tree, 'big'), [], 'the two versions on one node are not a conflict');
  assert.equal(hash(await readFile(join(b, 'big.bin'))), hash(latest));
});
