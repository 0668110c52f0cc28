// A receiver whose disk fills up: its folder is a small tmpfs, and a peer adds a file larger than
// the space left. What was there stays intact, nothing half-written sits under a real name, the
// disk is not filled to the last byte (the index and other programs need room), the node says in
// one line what is wrong and what to do, and when space is freed it pulls the file by itself.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MIN_FREE_BYTES } from '../src/node/disk-space.js';
import { generateMeshKey } from '../src/node/keys.js';
import { startJoin, tempFolder, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const run = promisify(execFile);
const skip = await netnsUnavailable();
const MiB = 1024 * 1024;
/** B's folder: room for its index and the existing file, not for the new one. */
const SMALL_DISK_MIB = 16;
const EXISTING_BYTES = 4 * MiB;
const NEW_BYTES = 24 * MiB;
const FIRST_SYNC_MS = 25_000;
const REPORTED_MS = 25_000;
/** After space is freed: the failed pull is retried with a backoff that doubles; generous for a loaded machine. */
const RESUMED_MS = 60_000;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

test('a full disk keeps what the receiver had, says so, and the pull resumes by itself once space is freed', { skip, timeout: 180_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const [a, b] = await Promise.all([tempFolder(t, 'a'), tempFolder(t, 'b')]);
  await run('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_DISK_MIB}m`, 'mesh-test-full', b]);
  try {
    const existing = randomBytes(EXISTING_BYTES);
    await writeFile(join(b, 'existing.bin'), existing);
    const nodeA = startJoin(t, lan, 0, a, key);
    const nodeB = startJoin(t, lan, 1, b, key);
    await waitForSameTrees([a, b], FIRST_SYNC_MS, (tree) => tree.has('existing.bin'), [nodeA, nodeB]);

    await writeFile(join(a, 'new.bin'), randomBytes(NEW_BYTES));
    await nodeB.waitForOutput(/space/i, REPORTED_MS);
    const line = nodeB.stdout.split('\n').find((l) => /space/i.test(l)) ?? '';
    t.diagnostic(`B said: ${line}`);
    assert.match(line, /new\.bin/, 'the report names the file');
    assert.match(line, /free some space/, 'the report says what to do');
    const disk = await statfs(b);
    assert.ok(disk.bavail * disk.bsize >= MIN_FREE_BYTES, `the pull filled the disk (${disk.bavail * disk.bsize} bytes left)`);
    assert.doesNotMatch(nodeB.stdout + nodeB.stderr, /\n\s+at /, 'a stack trace was printed');
    assert.equal(sha256(await readFile(join(b, 'existing.bin'))), sha256(existing), 'the existing file changed');
    assert.ok(!(await readdir(b)).includes('new.bin'), 'a partial file sits under the real name');
    assert.equal(nodeB.child.exitCode, null, 'the node stopped instead of waiting for space');

    await run('mount', ['-o', `remount,size=${SMALL_DISK_MIB + NEW_BYTES / MiB + 16}m`, b]);
    await waitForSameTrees([a, b], RESUMED_MS, (tree) => tree.has('new.bin'), [nodeA, nodeB]);
    assert.deepEqual((await readdir(b)).filter((name) => name.startsWith('.mesh-tmp')), [], 'temp files left behind');
    await Promise.all([nodeA.stop(), nodeB.stop()]);
  } finally {
    await run('umount', ['-l', b]);
  }
});
