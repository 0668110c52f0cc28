// `mesh join` moves an edit of a large file as a delta: the receiver's eth0 (a veth in its own
// namespace, IPv6 off) counts every byte it received, framing and index batches included.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { startJoin, tempFolder, waitForSameTrees } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const FILE_BYTES = 12 * 1024 * 1024;
const EDIT_BYTES = 4 * 1024;

test('an edit of a 12 MiB file reaches the other node as a delta of a few KiB', { skip: await netnsUnavailable(), timeout: 60_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const a = await tempFolder(t, 'a');
  const b = await tempFolder(t, 'b');
  await writeFile(join(a, 'big.bin'), randomBytes(FILE_BYTES));
  startJoin(t, lan, 0, a, key);
  const nodeB = startJoin(t, lan, 1, b, key);
  const first = await waitForSameTrees([a, b], 20_000, (tree) => tree.has('big.bin'));
  const before = await lan.bytes(1);

  const handle = await open(join(a, 'big.bin'), 'r+');
  await handle.write(randomBytes(EDIT_BYTES), 0, EDIT_BYTES, 5 * 1024 * 1024 + 1000);
  await handle.close();
  await waitForSameTrees([a, b], 15_000, (tree) => tree.get('big.bin') !== first.get('big.bin'));
  const after = await lan.bytes(1);

  const received = after.rx - before.rx;
  t.diagnostic(`receiver's eth0 got ${received} bytes for a ${EDIT_BYTES}-byte edit of a ${FILE_BYTES}-byte file`);
  assert.ok(received < 512 * 1024, `received ${received} bytes: not a delta`);
  assert.match(nodeB.stdout, /pulled big\.bin \(\d+(\.\d+)? [KM]i?B received, [\d.]+ MiB reused\)/);
});
