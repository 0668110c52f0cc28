// `mesh join` refuses bad input with one clear line and a non-zero exit, never a stack trace.
// Nothing here joins a network for long: mDNS is off (the host network is no place for it).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JoinProcess, tempFolder } from './join-helpers.js';
import { stopChild } from './netns.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function mesh(args: readonly string[]): JoinProcess {
  const env = { ...process.env };
  delete env.MESH_KEY;
  return new JoinProcess(spawn(process.execPath, ['--import', TSX, MAIN, ...args], { stdio: 'pipe', env }));
}

async function refused(args: readonly string[], pattern: RegExp): Promise<void> {
  const run = mesh(args);
  const code = await run.exit;
  assert.notEqual(code, 0, `expected a failure: ${run.describe()}`);
  const lines = run.stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --help'));
  assert.equal(lines.length, 1, `one line expected: ${run.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
}

test('join refuses a missing argument, a missing folder, a file, a malformed key, a bad port or peer', async (t) => {
  const dir = await tempFolder(t, 'cli');
  await writeFile(join(dir, 'a file'), 'x');
  await Promise.all([
    refused(['join'], /^mesh: missing required argument 'dir'/),
    refused(['join', join(dir, 'nowhere')], /no such folder/),
    refused(['join', join(dir, 'a file')], /is a file, not a folder/),
    refused(['join', dir, '--no-mdns', '--key', 'mesh1not-a-key'], /^mesh: invalid mesh key in --key: .*not a hex digit/),
    refused(['join', dir, '--no-mdns', '--port', '70000'], /--port must be at most 65535/),
  ]);
  // Sequential from here: both open the folder.
  await refused(['join', dir, '--no-mdns', '--peer', '/nonsense'], /invalid peer address/);
});

test('join refuses a port in use, and a second join of the same folder', async (t) => {
  const busy = await tempFolder(t, 'cli-port');
  const dir = await tempFolder(t, 'cli');
  const server = createServer();
  server.listen(0, '0.0.0.0');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  await refused(['join', busy, '--no-mdns', '--port', String(port)], new RegExp(`^mesh: port ${port} is already in use`));

  const first = mesh(['join', dir, '--no-mdns']);
  t.after(() => stopChild(first.child));
  await first.waitForOutput(/scanned the folder/, 15_000);
  await refused(['join', dir, '--no-mdns'], /^mesh: this folder is in use by another mesh process/);
  await first.stop();
  assert.equal(await first.exit, 0);
  assert.match(first.stdout, /This is a new mesh\. Its key: mesh1[0-9a-f]{64}\n.*npx mesh join <dir> --key mesh1[0-9a-f]{64}/);
});

test('join and scan refuse a folder they cannot write (a read-only mount) in one line', { skip: process.getuid?.() !== 0 ? 'mounting needs root' : undefined }, async (t) => {
  const dir = await tempFolder(t, 'cli-ro');
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir]);
  assert.equal(mount.status, 0, mount.stderr.toString());
  // Unmounted here, not in an after hook: those run after the folder's removal, which would fail on a mount.
  try {
    await refused(['join', dir, '--no-mdns'], /^mesh: .*\/\.mesh: read-only file system$/);
    await refused(['scan', dir], /^mesh: .*\/\.mesh: read-only file system$/);
  } finally {
    spawnSync('umount', [dir]);
  }
});

test('a SIGTERM while join is still opening the folder stops it cleanly (exit 0), as systemd expects', async (t) => {
  const dir = await tempFolder(t, 'cli-early-stop');
  const run = mesh(['join', dir, '--no-mdns']);
  t.after(() => run.stop());
  // The index appears while the node opens the folder, before it listens.
  while (!existsSync(join(dir, '.mesh', 'index'))) {
    if (run.child.exitCode !== null) assert.fail(`exited early: ${run.describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  run.child.kill('SIGTERM');
  assert.equal(await run.exit, 0, run.describe());
  assert.equal(run.child.signalCode, null);
});
