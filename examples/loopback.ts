/**
 * Two folders on this machine kept in sync over loopback, the second node given the first's
 * address with --peer (no mDNS: the host network is no place for a demo's multicast). Run:
 *
 *   npm run example:loopback
 *
 * It prints each step and what it saw, then stops both nodes and removes the folders.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BUILT_CLI, JoinProcess, sleep } from '../test/join-helpers.js';

const TIMEOUT_MS = 30_000;

function say(text: string): void {
  console.log(`[loopback] ${text}`);
}

function startNode(dir: string, key: string, args: readonly string[] = []): JoinProcess {
  const child = spawn(process.execPath, [...BUILT_CLI, 'join', dir, '--no-mdns', '--port', '0', ...args], {
    stdio: 'pipe',
    env: { ...process.env, MESH_KEY: key },
  });
  return new JoinProcess(child);
}

async function appears(path: string, expected: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === expected) return performance.now() - started;
    if (performance.now() - started > TIMEOUT_MS) throw new Error(`${path} did not get "${expected}" within ${TIMEOUT_MS} ms`);
    await sleep(10);
  }
}

async function gone(path: string): Promise<number> {
  const started = performance.now();
  while ((await readFile(path).catch(() => undefined)) !== undefined) {
    if (performance.now() - started > TIMEOUT_MS) throw new Error(`${path} was not deleted within ${TIMEOUT_MS} ms`);
    await sleep(10);
  }
  return performance.now() - started;
}

const base = await mkdtemp(join(tmpdir(), 'mesh-example-'));
const [a, b] = [join(base, 'laptop'), join(base, 'nas')];
const nodes: JoinProcess[] = [];
try {
  const key = `mesh1${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}`;
  await Promise.all([a, b].map((dir) => mkdir(dir)));
  await writeFile(join(a, 'hello.txt'), 'written on the laptop before anything ran');

  const nodeA = startNode(a, key);
  nodes.push(nodeA);
  await nodeA.waitForOutput(/scanned the folder/, TIMEOUT_MS);
  const port = /\/tcp\/(\d+)\//.exec(nodeA.stdout)?.[1];
  say(`node A (${a}) listens on port ${port}, id ${nodeA.peerId}`);

  const nodeB = startNode(b, key, ['--peer', `/ip4/127.0.0.1/tcp/${port}/p2p/${nodeA.peerId}`]);
  nodes.push(nodeB);
  await nodeB.waitForOutput(/peer connected/, TIMEOUT_MS);
  say(`node B (${b}) dialled A and connected`);
  say(`hello.txt reached B after ${(await appears(join(b, 'hello.txt'), 'written on the laptop before anything ran')).toFixed(0)} ms more`);

  await writeFile(join(b, 'from-nas.txt'), 'an edit on B');
  say(`a new file on B reached A in ${(await appears(join(a, 'from-nas.txt'), 'an edit on B')).toFixed(0)} ms`);

  await writeFile(join(a, 'hello.txt'), 'edited on A');
  say(`an edit on A reached B in ${(await appears(join(b, 'hello.txt'), 'edited on A')).toFixed(0)} ms`);

  await rename(join(a, 'from-nas.txt'), join(a, 'renamed.txt'));
  say(`a rename on A reached B in ${(await appears(join(b, 'renamed.txt'), 'an edit on B')).toFixed(0)} ms`);

  await rm(join(b, 'hello.txt'));
  say(`a delete on B reached A in ${(await gone(join(a, 'hello.txt'))).toFixed(0)} ms`);

  const status = spawn(process.execPath, [...BUILT_CLI, 'status', b], { stdio: 'pipe' });
  let text = '';
  status.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await new Promise((resolve) => status.once('exit', resolve));
  say(`mesh status ${b}:\n${text.trimEnd()}`);
  const listing = async (dir: string) => (await readdir(dir)).filter((name) => name !== '.mesh').join(', ');
  say(`done: A holds ${await listing(a)}; B holds ${await listing(b)}`);
} finally {
  await Promise.all(nodes.map((node) => node.stop()));
  await rm(base, { recursive: true, force: true });
}
