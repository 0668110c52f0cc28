/**
 * Three machines on a LAN, as network namespaces on a bridge (needs root and iproute2): each runs
 * `mesh join` with nothing but the key, and they find each other by mDNS. A file made on each one
 * reaches the two others. Run:
 *
 *   npm run example:mdns-lan        (as root)
 *
 * It prints each step and what it saw; the namespaces, processes and folders are removed at the end.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchScope } from '../bench/scope.js';
import { BUILT_CLI, sleep, startJoin, type JoinProcess } from '../test/join-helpers.js';
import { createLan, netnsUnavailable } from '../test/netns.js';

const TIMEOUT_MS = 60_000;
const NAMES = ['laptop', 'desktop', 'raspberry-pi'];

function say(text: string): void {
  console.log(`[mdns-lan] ${text}`);
}

async function appears(path: string, expected: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    if ((await readFile(path, 'utf8').catch(() => undefined)) === expected) return performance.now() - started;
    if (performance.now() - started > TIMEOUT_MS) throw new Error(`${path} did not arrive within ${TIMEOUT_MS} ms`);
    await sleep(10);
  }
}

const unavailable = await netnsUnavailable();
if (unavailable !== undefined) {
  console.error(`mdns-lan: ${unavailable} (this demo needs root and network namespaces)`);
  process.exit(1);
}
const scope = new BenchScope();
try {
  const lan = await createLan(scope, NAMES.length);
  const base = await mkdtemp(join(tmpdir(), 'mesh-example-'));
  scope.after(() => rm(base, { recursive: true, force: true }));
  const key = `mesh1${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}`;
  const dirs = NAMES.map((name) => join(base, name));
  const nodes: JoinProcess[] = [];
  for (const [index, dir] of dirs.entries()) {
    await mkdir(dir);
    nodes.push(startJoin(scope, lan, index, dir, key, [], { cli: BUILT_CLI }));
    say(`${NAMES[index]} at ${lan.hosts[index].address}: mesh join ${dir} (mDNS on, no --peer)`);
  }
  const started = performance.now();
  await Promise.all(nodes.map((node) => node.waitForOutput(/peer connected[\s\S]*peer connected/, TIMEOUT_MS)));
  say(`every machine found the two others by mDNS within ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (const [index, node] of nodes.entries()) {
    const peers = [...node.stdout.matchAll(/peer connected: (\S+) at (\S+)/g)].map((m) => m[2].split('/')[2]);
    say(`  ${NAMES[index]} connected to ${[...new Set(peers)].join(' and ')}`);
  }
  for (const [index, dir] of dirs.entries()) {
    const name = `made-on-${NAMES[index]}.txt`;
    await writeFile(join(dir, name), `hello from ${NAMES[index]}`);
    const others = dirs.filter((_, i) => i !== index);
    const times = await Promise.all(others.map((other) => appears(join(other, name), `hello from ${NAMES[index]}`)));
    say(`${name} reached the two others in ${times.map((t) => `${t.toFixed(0)} ms`).join(' and ')}`);
  }
  for (const [index, dir] of dirs.entries()) say(`${NAMES[index]} holds: ${(await readdir(dir)).filter((n) => n !== '.mesh').sort().join(', ')}`);
} finally {
  await scope.close();
}
