// Permission errors on real files, with `mesh join` running as an unprivileged user (root would
// read and write through any permission): a folder the receiver may not write into, and a file
// or folder the sender may not read. Each is reported, never turned into a delete on either side,
// and synced by itself once the permission is given back.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { canRunUnprivileged, UNPRIVILEGED } from './helpers.js';
import { startJoin, tempFolder, treeOf, waitForSameTrees, type JoinProcess } from './join-helpers.js';
import { createLan, netnsUnavailable, type Lan } from './netns.js';

const skip = (await netnsUnavailable()) ?? (canRunUnprivileged() ? undefined : 'node or this repository cannot be read by an unprivileged user here');
const SYNC_MS = 30_000;
const hash = (text: string): string => `file:${createHash('sha256').update(text).digest('hex')}`;
const REPORTED_MS = 30_000;
/** A failed pull is retried with a doubling backoff; a read error waits for the watcher or the next rescan. */
const RECOVERED_MS = 70_000;

/** A folder for a node run as UNPRIVILEGED, holding `files` (path -> content), all owned by that user. */
async function userFolder(t: TestContext, name: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await tempFolder(t, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  const own = async (path: string): Promise<void> => {
    await chown(path, UNPRIVILEGED, UNPRIVILEGED);
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (entry.isDirectory()) await own(join(path, entry.name));
      else await chown(join(path, entry.name), UNPRIVILEGED, UNPRIVILEGED);
    }
  };
  await own(dir);
  return dir;
}

function startPair(t: TestContext, lan: Lan, a: string, b: string): [JoinProcess, JoinProcess] {
  const key = generateMeshKey();
  return [startJoin(t, lan, 0, a, key, [], { uid: UNPRIVILEGED }), startJoin(t, lan, 1, b, key, [], { uid: UNPRIVILEGED })];
}

test('a folder the receiver may not write into: one line, nothing deleted anywhere, and the file arrives once it may', { skip, timeout: 150_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const a = await userFolder(t, 'a', { 'top.txt': 'top\n', 'locked/keep.txt': 'keep\n' });
  const b = await userFolder(t, 'b');
  const nodes = startPair(t, lan, a, b);
  await waitForSameTrees([a, b], SYNC_MS, (tree) => tree.has('locked/keep.txt'), nodes);

  await chmod(join(b, 'locked'), 0o555);
  await writeFile(join(a, 'locked', 'new.txt'), 'new\n');
  await nodes[1].waitForOutput(/failed to apply locked\/new\.txt .*permission denied/i, REPORTED_MS);
  assert.doesNotMatch(nodes[1].stdout + nodes[1].stderr, /\n\s+at /, 'a stack trace was printed');
  for (const dir of [a, b]) {
    const tree = await treeOf(dir);
    assert.ok(tree.has('top.txt') && tree.has('locked/keep.txt'), `${dir} lost a file`);
  }
  assert.ok((await treeOf(a)).has('locked/new.txt'), 'the failed pull deleted the file on the sender');

  await chmod(join(b, 'locked'), 0o755);
  await waitForSameTrees([a, b], RECOVERED_MS, (tree) => tree.has('locked/new.txt'), nodes);
});

test('a file and a folder the sender may not read: reported, never a delete, and sent once readable', { skip, timeout: 150_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const a = await userFolder(t, 'a', { 'secret.txt': 'version 1\n', 'private/inner.txt': 'inner\n', 'open.txt': 'open\n' });
  const b = await userFolder(t, 'b');
  const nodes = startPair(t, lan, a, b);
  await waitForSameTrees([a, b], SYNC_MS, (tree) => tree.has('secret.txt') && tree.has('private/inner.txt'), nodes);

  // Unreadable before it changes (the test runs as root, which writes it anyway), so no scan ever
  // reads the new version; and alone, so the scan that finds it commits nothing and must still say so.
  await chmod(join(a, 'secret.txt'), 0o000);
  await writeFile(join(a, 'secret.txt'), 'version 2, unreadable for now\n');
  await nodes[0].waitForOutput(/could not read secret\.txt: .*permission denied/i, REPORTED_MS);
  await chmod(join(a, 'private'), 0o000);
  await writeFile(join(a, 'open.txt'), 'open, edited\n');
  // The readable edit goes through; the unreadable file and folder stay as they were on B.
  const tree = await waitForSameTrees([b], SYNC_MS, (tr) => tr.get('open.txt') === hash('open, edited\n'), nodes);
  assert.equal(tree.get('secret.txt'), hash('version 1\n'), 'the unreadable file changed on the receiver');
  assert.equal(tree.get('private/inner.txt'), hash('inner\n'), 'the unreadable folder became a delete');

  await chmod(join(a, 'private'), 0o755);
  await chmod(join(a, 'secret.txt'), 0o644);
  await waitForSameTrees([a, b], RECOVERED_MS, (tr) => tr.get('secret.txt') === hash('version 2, unreadable for now\n'), nodes);
  assert.equal((await treeOf(b)).get('secret.txt'), hash('version 2, unreadable for now\n'));
});
