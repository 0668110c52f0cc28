// `mesh join` end to end: real processes on a LAN of network namespaces, found by mDNS, real TCP,
// LevelDB and files. Each side's changes must show up on the other within a bounded time.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { startJoin, tempFolder, treeOf, waitForSameTrees, sleep } from './join-helpers.js';
import { createLan, netnsUnavailable } from './netns.js';

const SYNC_TIMEOUT_MS = 15_000;

/** How treeOf shows a file with this content. */
function fileEntry(content: string): string {
  return `file:${createHash('sha256').update(content).digest('hex')}`;
}
const skip = await netnsUnavailable();

test('two nodes find each other by mDNS and keep their folders identical both ways', { skip, timeout: 90_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const a = await tempFolder(t, 'a');
  const b = await tempFolder(t, 'b');
  await writeFile(join(a, 'hello.txt'), 'hello from a\n');
  await mkdir(join(a, 'docs/nested/deep'), { recursive: true });
  await writeFile(join(a, 'docs/nested/deep/notes.md'), '# notes\n');
  await mkdir(join(a, 'empty folder'));
  await writeFile(join(a, 'with spaces in name.txt'), 'spaces\n');
  await writeFile(join(a, '中文文件.txt'), '你好\n');

  const nodeA = startJoin(t, lan, 0, a, key);
  const nodeB = startJoin(t, lan, 1, b, key);
  await nodeA.waitForOutput(/peer connected/, SYNC_TIMEOUT_MS);
  const first = await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tree) => tree.has('中文文件.txt') && tree.has('empty folder'), [nodeA, nodeB]);
  assert.equal(first.get('docs/nested/deep'), 'dir');
  // The file lands (rename) before the apply that pulled it is over and logged.
  await nodeB.waitForOutput(/pulled hello\.txt/, SYNC_TIMEOUT_MS);

  // Changes on A: an edit, a delete, a rename, a new nested empty folder, a new CJK folder with a file.
  await writeFile(join(a, 'hello.txt'), 'hello again from a, edited\n');
  await rm(join(a, 'with spaces in name.txt'));
  await rename(join(a, 'docs/nested/deep/notes.md'), join(a, 'docs/renamed notes.md'));
  await mkdir(join(a, 'new/empty/inner'), { recursive: true });
  await mkdir(join(a, '目录 一'));
  await writeFile(join(a, '目录 一/文件 二.txt'), 'nested cjk\n');
  const second = await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tree) => tree.has('目录 一/文件 二.txt') && tree.has('docs/renamed notes.md') && !tree.has('with spaces in name.txt') && tree.has('new/empty/inner'), [nodeA, nodeB]);
  assert.equal(second.has('docs/nested/deep/notes.md'), false);

  // Changes on B flow back: a new file, an edit, a folder deleted with its contents.
  await writeFile(join(b, 'from b.txt'), 'made on b\n');
  await writeFile(join(b, '中文文件.txt'), '你好, edited on b\n');
  await rm(join(b, 'new'), { recursive: true });
  const third = await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tree) => tree.has('from b.txt') && !tree.has('new'), [nodeA, nodeB]);
  const expected = await treeOf(b);
  assert.deepEqual(third, expected);
  assert.match(nodeA.stdout, /deleted new\/empty\/inner/);
  assert.match(nodeB.stdout, /announced/);
});

test('edits made on a node the moment a change from its peer lands there go back to the peer', { skip, timeout: 60_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const key = generateMeshKey();
  const a = await tempFolder(t, 'a');
  const b = await tempFolder(t, 'b');
  const nodeA = startJoin(t, lan, 0, a, key);
  const nodeB = startJoin(t, lan, 1, b, key);
  await nodeA.waitForOutput(/peer connected/, SYNC_TIMEOUT_MS);
  await nodeB.waitForOutput(/peer connected/, SYNC_TIMEOUT_MS);

  // While B applies these (and its watcher's events on them wait for the rescan after the apply),
  // B edits the file, adds one beside it, and deletes another of them.
  await mkdir(join(a, 'fresh'));
  for (let n = 0; n < 50; n++) await writeFile(join(a, 'fresh', `f${n}.txt`), `from a ${n}\n`);
  const deadline = Date.now() + SYNC_TIMEOUT_MS;
  while (!existsSync(join(b, 'fresh', 'f0.txt')) && Date.now() < deadline) await sleep(2);
  await writeFile(join(b, 'fresh', 'f0.txt'), 'edited on b as it arrived\n');
  await writeFile(join(b, 'fresh', 'b-made.txt'), 'made on b as its folder arrived\n');
  await waitForSameTrees([b], SYNC_TIMEOUT_MS, (tree) => tree.has('fresh/f49.txt'), [nodeB]);
  await rm(join(b, 'fresh', 'f49.txt'));

  const tree = await waitForSameTrees([a, b], SYNC_TIMEOUT_MS, (tree) => tree.has('fresh/b-made.txt') && !tree.has('fresh/f49.txt') && tree.get('fresh/f0.txt') === fileEntry('edited on b as it arrived\n'), [nodeA, nodeB]);
  assert.equal(tree.get('fresh/f1.txt'), fileEntry('from a 1\n'));
  assert.equal([...tree.keys()].filter((path) => path.includes('conflict')).length, 0);
});

test('a node with another mesh key gets nothing', { skip, timeout: 60_000 }, async (t) => {
  const lan = await createLan(t, 2);
  const a = await tempFolder(t, 'a');
  const other = await tempFolder(t, 'other');
  await writeFile(join(a, 'secret.txt'), 'for this mesh only\n');
  const nodeA = startJoin(t, lan, 0, a, generateMeshKey());
  // Given the other's address too: even a direct dial must fail in the handshake.
  await nodeA.waitForOutput(/listening:/, 10_000);
  const address = `/ip4/${lan.hosts[0].address}/tcp/${/\/tcp\/(\d+)/.exec(nodeA.stdout)![1]}`;
  const intruder = startJoin(t, lan, 1, other, generateMeshKey(), ['--peer', address]);
  await intruder.waitForOutput(/listening:/, 10_000);
  await sleep(4_000);
  assert.deepEqual([...(await treeOf(other)).keys()], []);
  assert.doesNotMatch(intruder.stdout, /peer connected/);
  assert.doesNotMatch(nodeA.stdout, /peer connected/);
});
