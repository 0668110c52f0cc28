// A change made while a node starts (during its first scan, or just after it) is announced at once,
// not left to the hourly full rescan: the folder is watched before the first scan reads it.
import assert from 'node:assert/strict';
import { readdir, readlink, truncate, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { generateMeshKey } from '../src/node/keys.js';
import { MeshNode, type MeshNodeEvent } from '../src/node/mesh-node.js';
import { sandbox } from './hostile-peer.js';
import { eventually } from './protocol-helpers.js';

/** Far less than the hourly full rescan, far more than a watched change takes on a loaded machine. */
const ANNOUNCE_TIMEOUT_MS = 20_000;
/** A sparse file of zeros: the first scan hashes it for ~0.7 s here (no disk read), longer on a slower machine. */
const SPARSE_BYTES = 1024 ** 3;

/** A node on loopback (no mDNS, no peers), its events kept; `onEvent` also sees each one as it is emitted. */
async function startNode(t: TestContext, dir: string, onEvent?: (event: MeshNodeEvent) => void): Promise<{ events: MeshNodeEvent[]; started: Promise<void> }> {
  const events: MeshNodeEvent[] = [];
  const node = await MeshNode.open({
    dir,
    key: generateMeshKey(),
    env: {},
    host: '127.0.0.1',
    port: 0,
    mdns: false,
    control: false,
    onEvent: (event) => {
      events.push(event);
      onEvent?.(event);
    },
  });
  t.after(() => node.stop());
  return { events, started: node.start() };
}

function announcedNew(events: readonly MeshNodeEvent[], path: string): boolean {
  return events.some((e) => e.kind === 'scanned' && e.report.added.includes(path));
}

/** Whether this process has `path` open (the scanner hashing it). */
async function holdsOpen(path: string): Promise<boolean> {
  const fds = await readdir('/proc/self/fd').catch(() => []);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.includes(path);
}

describe('changes made while a node starts', () => {
  it('a file made while the first scan runs, in a folder it has already listed, is announced once the scan ends', { timeout: 120_000, skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
    const { folder } = await sandbox(t);
    const zeros = join(folder, 'zeros.bin');
    await writeFile(zeros, '');
    await truncate(zeros, SPARSE_BYTES);
    const { events, started } = await startNode(t, folder);
    // The scan has listed the folder and is hashing zeros.bin: a new name there is not in its list.
    await eventually(() => holdsOpen(zeros), 60_000, 'the first scan to hash zeros.bin');
    await writeFile(join(folder, 'made during the scan.txt'), 'new\n');
    await started;
    const first = events.find((e) => e.kind === 'initial-scan');
    assert.ok(first?.kind === 'initial-scan' && !first.report.added.includes('made during the scan.txt'), 'the case under test: the first scan did not see the file');
    await eventually(() => announcedNew(events, 'made during the scan.txt'), ANNOUNCE_TIMEOUT_MS, 'the file to be announced');
  });

  it('a file made as the first scan reports its end is announced', { timeout: 60_000 }, async (t) => {
    const { folder } = await sandbox(t);
    const { events, started } = await startNode(t, folder, (event) => {
      // Synchronously, before the node goes on with its start.
      if (event.kind === 'initial-scan') writeFileSync(join(folder, 'made at the end of the scan.txt'), 'new\n');
    });
    await started;
    await eventually(() => announcedNew(events, 'made at the end of the scan.txt'), ANNOUNCE_TIMEOUT_MS, 'the file to be announced');
  });
});
