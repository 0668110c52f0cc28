// The test LAN itself (test/netns.ts): hosts reach each other over the bridge; partition and
// isolate cut traffic and heal and rejoin restore it; byte counters move; and every namespace is
// gone when the test ends, with the root namespace's interfaces untouched.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createLan, netnsUnavailable, type Lan } from './netns.js';

const run = promisify(execFile);
const skip = await netnsUnavailable();
const PORT = 7000;

/** Plain node (no tsx): starts in about 0.1 s. */
const SERVER = `require('net').createServer((s) => s.end('pong')).listen(${PORT}, () => console.log('ready'))`;
const CLIENT = `const s = require('net').connect(${PORT}, process.argv[1]); s.setTimeout(500, () => process.exit(1));
s.on('data', () => process.exit(0)); s.on('error', () => process.exit(1));`;

async function reaches(lan: Lan, from: number, to: number): Promise<boolean> {
  try {
    await lan.exec(from, process.execPath, ['-e', CLIENT, lan.hosts[to].address]);
    return true;
  } catch {
    return false;
  }
}

/** Names of the root namespace's interfaces. */
async function rootLinks(): Promise<Set<string>> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  return new Set(stdout.split('\n').flatMap((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? []));
}

async function namespaces(): Promise<string> {
  return (await run('ip', ['netns', 'list'])).stdout;
}

test('a LAN of network namespaces: reach, partition, heal, isolate, rejoin, byte counters, cleanup', { skip }, async (t) => {
  const linksBefore = await rootLinks();
  let names: string[] = [];
  await t.test('on the LAN', async (t) => {
    const lan = await createLan(t, 3);
    names = [lan.switchNamespace, ...lan.hosts.map((h) => h.namespace)];
    assert.ok(names.every((n) => n.startsWith('mesh-')));
    assert.match(lan.hosts[1].address, /^10\.77\.\d{1,3}\.2$/);
    assert.match(await lan.exec(0, 'ip', ['route', 'show', '224.0.0.0/4']), /dev eth0/);

    const server = lan.spawn(1, process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => server.stdout!.once('data', resolve));
    const before = await lan.bytes(0);
    assert.equal(await reaches(lan, 0, 1), true, 'host 1 reaches host 2');
    const after = await lan.bytes(0);
    assert.ok(after.tx > before.tx && after.rx > before.rx, `eth0 counted the exchange: ${JSON.stringify({ before, after })}`);

    await lan.partition(0, 1);
    assert.equal(await reaches(lan, 0, 1), false, 'partitioned pair');
    assert.equal(await reaches(lan, 2, 1), true, 'the third host still reaches host 2');
    await lan.heal(0, 1);
    assert.equal(await reaches(lan, 0, 1), true, 'healed');

    await lan.isolate(1);
    assert.equal(await reaches(lan, 0, 1), false, 'host 2 unplugged');
    await lan.rejoin(1);
    assert.equal(await reaches(lan, 0, 1), true, 'host 2 plugged back');
  });
  const left = await namespaces();
  assert.ok(names.length === 4 && names.every((n) => !left.includes(n)), `namespaces removed: ${left}`);
  // Compared by name, ignoring what other processes may add meanwhile: none of ours ever appears.
  const added = [...(await rootLinks())].filter((name) => !linksBefore.has(name));
  assert.ok(!added.some((name) => name === 'br0' || name === 'eth0' || /^v\d+$/.test(name)), `new interfaces in the root namespace: ${added.join(' ')}`);
});
