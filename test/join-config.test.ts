// `mesh join` takes its settings from the folder's .mesh/config, and a flag replaces a setting.
// Real processes on loopback (static peers, no mDNS: the host network is no place for it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { JoinProcess, sleep, SOURCE_CLI, tempFolder } from './join-helpers.js';

const KEY = `mesh1${'cd'.repeat(32)}`;

function joinNode(t: TestContext, dir: string, args: readonly string[] = []): JoinProcess {
  const env = { ...process.env, MESH_KEY: KEY };
  const run = new JoinProcess(spawn(process.execPath, [...SOURCE_CLI, 'join', dir, ...args], { stdio: 'pipe', env }));
  t.after(() => run.stop());
  return run;
}

async function settings(dir: string, lines: readonly string[]): Promise<void> {
  await mkdir(join(dir, '.mesh'), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, '.mesh', 'config'), `${lines.join('\n')}\n`);
}

/**
 * A file of `bytes` random (incompressible) bytes on node A, pulled by node B under
 * max-recv-kibps = `kibps`: the milliseconds from B's connecting to the file's arrival, intact.
 */
async function limitedPull(t: TestContext, name: string, bytes: number, kibps: number): Promise<number> {
  const a = await tempFolder(t, `${name}-a`);
  const b = await tempFolder(t, `${name}-b`);
  const content = randomBytes(bytes);
  await writeFile(join(a, 'big.bin'), content);
  const nodeA = joinNode(t, a, ['--no-mdns', '--port', '0']);
  await nodeA.waitForOutput(/scanned the folder/, 30_000);
  const port = /\/ip4\/[\d.]+\/tcp\/(\d+)/.exec(nodeA.stdout)?.[1];
  await settings(b, [`max-recv-kibps = ${kibps}`]);
  const nodeB = joinNode(t, b, ['--no-mdns', '--port', '0', '--peer', `/ip4/127.0.0.1/tcp/${port}/p2p/${nodeA.peerId}`]);
  await nodeB.waitForOutput(/connected/, 30_000);
  const connected = Date.now();
  const received = await arrival(join(b, 'big.bin'), 60_000);
  const ms = Date.now() - connected;
  assert.ok(received.equals(content));
  return ms;
}

/** A port free right now (the kernel's choice), for a node to be told to listen on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function arrival(path: string, timeoutMs: number): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const bytes = await readFile(path).catch(() => undefined);
    if (bytes !== undefined) return bytes;
    if (Date.now() > deadline) throw new Error(`${path} did not arrive within ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe('mesh join settings', () => {
  it('listens on the port of .mesh/config, dials its peers, and --port replaces the setting', async (t) => {
    const a = await tempFolder(t, 'config-a');
    const b = await tempFolder(t, 'config-b');
    const [portA, portFlag] = [await freePort(), await freePort()];
    await settings(a, [`port = ${portA}`, 'mdns = false']);
    await writeFile(join(a, 'from-a.txt'), 'configured');
    const nodeA = joinNode(t, a);
    await nodeA.waitForOutput(/scanned the folder/, 30_000);
    assert.match(nodeA.stdout, new RegExp(`listening: .*/tcp/${portA}/`));

    // B's only way to A is the peer its settings list; its --port flag wins over its setting.
    await settings(b, ['port = 1', 'mdns = false', `peers = ["/ip4/127.0.0.1/tcp/${portA}/p2p/${nodeA.peerId}"]`]);
    const nodeB = joinNode(t, b, ['--port', String(portFlag)]);
    await nodeB.waitForOutput(/scanned the folder/, 30_000);
    assert.match(nodeB.stdout, new RegExp(`listening: .*/tcp/${portFlag}/`));
    assert.equal((await arrival(join(b, 'from-a.txt'), 30_000)).toString(), 'configured');
  });

  it('holds a pull to max-recv-kibps', async (t) => {
    // Fetched whole (up to 1 MiB). 768 KiB at 256 KiB/s, less the first quarter second's burst:
    // 2.75 s at the least (unlimited, well under 1 s).
    const ms = await limitedPull(t, 'limit', 768 * 1024, 256);
    assert.ok(ms >= 2_500, `arrived after ${ms} ms`);
  });

  it('holds a pull by delta to max-recv-kibps too', async (t) => {
    // Over the largest file fetched whole: it comes as a delta, all literal. 2 MiB at 1 MiB/s, less
    // the first quarter second's burst: 1.75 s at the least (unlimited, well under 0.5 s).
    const ms = await limitedPull(t, 'limit-delta', 2 * 1024 * 1024, 1024);
    assert.ok(ms >= 1_600, `arrived after ${ms} ms`);
  });

  it('a bad setting is one line naming the file and the setting, and no node starts', async (t) => {
    const dir = await tempFolder(t, 'config-bad');
    await settings(dir, ['pull-concurrency = 1000']);
    const node = joinNode(t, dir, ['--no-mdns']);
    assert.equal(await node.exit, 1);
    assert.equal(node.stderr, `mesh: ${join(dir, '.mesh', 'config')}: pull-concurrency must be a whole number from 1 to 64, not 1000\n`);
  });
});
