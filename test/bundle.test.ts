// The built `mesh` command, dist/bundle/mesh.js (npm run build; npm ci and npm install run it):
// what `npx mesh` and the systemd unit start. The rest of the suite runs the sources through tsx,
// so these tests are what shows the one-file build does the same.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WORKER_WALK_MIN_ENTRIES } from '../src/folder/scan-run.js';
import { tempDir } from './helpers.js';
import { BUILT_CLI, JoinProcess, sleep } from './join-helpers.js';

const PACKAGE = JSON.parse(await readFile(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string; bin: { mesh: string } };
const TIMEOUT_MS = 30_000;

function mesh(args: string[], env: NodeJS.ProcessEnv = process.env): JoinProcess {
  return new JoinProcess(spawn(process.execPath, [...BUILT_CLI, ...args], { stdio: 'pipe', env }));
}

async function finished(run: JoinProcess): Promise<JoinProcess> {
  const code = await run.exit;
  assert.equal(code, 0, run.describe());
  return run;
}

describe('the built command (dist/bundle/mesh.js)', () => {
  it('is what package.json installs as `mesh`, built', () => {
    assert.equal(fileURLToPath(new URL(`../${PACKAGE.bin.mesh}`, import.meta.url)), BUILT_CLI[0]);
    assert.ok(existsSync(BUILT_CLI[0]), `${BUILT_CLI[0]} is missing: run npm run build`);
  });

  it('prints its version', async () => {
    const run = await finished(mesh(['--version']));
    assert.equal(run.stdout.trim(), PACKAGE.version);
  });

  it('rescans a large folder on its walk worker (a file beside the bundle) and finds the change', async (t) => {
    const root = await tempDir(t);
    const folders = Math.ceil(WORKER_WALK_MIN_ENTRIES / 1000);
    for (let f = 0; f < folders; f++) {
      await mkdir(join(root, `d${f}`));
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(root, `d${f}`, `f${i}`), `${f}/${i}`)));
    }
    await finished(mesh(['scan', root]));
    await writeFile(join(root, 'd3', 'f7'), 'changed');
    const rescan = await finished(mesh(['scan', root, '--json']));
    const report = JSON.parse(rescan.stdout) as { modified: string[]; counts: { unchanged: number } };
    assert.deepEqual(report.modified, ['d3/f7']);
    assert.ok(report.counts.unchanged >= WORKER_WALK_MIN_ENTRIES, `${report.counts.unchanged} unchanged`);
  });

  it('keeps two folders in sync over loopback', async (t) => {
    const [a, b] = [await tempDir(t), await tempDir(t)];
    await writeFile(join(a, 'hello.txt'), 'from a');
    const env = { ...process.env, MESH_KEY: `mesh1${'5a'.repeat(32)}` };
    const nodeA = mesh(['join', a, '--no-mdns', '--port', '0'], env);
    t.after(() => nodeA.stop());
    await nodeA.waitForOutput(/scanned the folder/, TIMEOUT_MS);
    const port = /\/tcp\/(\d+)\//.exec(nodeA.stdout)?.[1];
    assert.ok(port !== undefined && nodeA.peerId !== undefined, nodeA.describe());
    const nodeB = mesh(['join', b, '--no-mdns', '--port', '0', '--peer', `/ip4/127.0.0.1/tcp/${port}/p2p/${nodeA.peerId}`], env);
    t.after(() => nodeB.stop());
    const deadline = Date.now() + TIMEOUT_MS;
    while ((await readFile(join(b, 'hello.txt'), 'utf8').catch(() => undefined)) !== 'from a') {
      assert.ok(Date.now() < deadline, `hello.txt did not reach b\n${nodeB.describe()}`);
      await sleep(50);
    }
  });
});
