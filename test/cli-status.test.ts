// `mesh status`, `mesh peers`, `mesh conflicts` and `mesh key` ask the node running on a folder
// through its control socket. Two real `mesh join` processes on loopback (static peers, no mDNS:
// the host network is no place for it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { ConflictStatus, NodeStatus, PeerStatus } from '../src/control/status.js';
import { controlSocketPath } from '../src/control/socket-path.js';
import { syncState } from '../src/cli/status.js';
import { StatusTracker } from '../src/node/status-tracker.js';
import type { IndexProgress } from '../src/protocol/index-exchange.js';
import { openLevelStore } from '../src/store/level-store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { FileChange } from '../src/store/types.js';
import { JoinProcess, sleep, SOURCE_CLI, tempFolder } from './join-helpers.js';

const KEY = `mesh1${'ab'.repeat(32)}`;

function fileChangeOf(store: MemoryStore, path: string): FileChange {
  return { path, type: 'file', size: 1, mtimeNs: 1n, mode: 0o644, inode: 1n, blockHashes: new Uint8Array(32), contentHash: new Uint8Array(32), symlinkTarget: '', version: [{ device: store.deviceId, value: 1 }], deleted: false, modifiedBy: store.deviceId };
}

function mesh(t: TestContext, args: readonly string[]): JoinProcess {
  const env = { ...process.env };
  delete env.MESH_KEY;
  const run = new JoinProcess(spawn(process.execPath, [...SOURCE_CLI, ...args], { stdio: 'pipe', env }));
  t.after(() => run.stop());
  return run;
}

async function output(t: TestContext, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = mesh(t, args);
  const code = await run.exit;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

async function json<T>(t: TestContext, args: readonly string[]): Promise<T> {
  const result = await output(t, [...args, '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as T;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Two nodes joined on loopback, B dialing A. */
async function twoNodes(t: TestContext) {
  const a = await tempFolder(t, 'status-a');
  const b = await tempFolder(t, 'status-b');
  await writeFile(join(a, 'hello.txt'), 'hello from a');
  const nodeA = mesh(t, ['join', a, '--no-mdns', '--port', '0', '--key', KEY]);
  await nodeA.waitForOutput(/scanned the folder/, 30_000);
  const port = /\/ip4\/[\d.]+\/tcp\/(\d+)/.exec(nodeA.stdout)?.[1];
  assert.ok(port !== undefined && nodeA.peerId !== undefined, nodeA.describe());
  const nodeB = mesh(t, ['join', b, '--no-mdns', '--port', '0', '--key', KEY, '--peer', `/ip4/127.0.0.1/tcp/${port}/p2p/${nodeA.peerId}`]);
  await nodeB.waitForOutput(/scanned the folder/, 30_000);
  return { a, b, nodeA, nodeB };
}

describe('the sync state', () => {
  it('is not in sync while a connected peer\'s index is still being read, though nothing is missing yet', async () => {
    let progress: IndexProgress | undefined = { received: 0, head: undefined };
    const tracker = new StatusTracker('/sync', new MemoryStore(), () => progress);
    assert.equal((await tracker.folder()).inSync, true, 'no peer: nothing to wait for');
    tracker.peerConnected('12D3KooWpeer', '/ip4/10.0.0.2/tcp/4001');
    const waiting = await tracker.folder();
    assert.deepEqual([waiting.inSync, waiting.receivingIndexes, syncState(waiting)], [false, 1, 'reading the index of 1 peer']);
    progress = { received: 400, head: 1000 };
    assert.equal((await tracker.folder()).inSync, false);
    assert.deepEqual(tracker.peerList()[0].index, { received: 400, head: 1000 });
    progress = { received: 1000, head: 1000 };
    const read = await tracker.folder();
    assert.deepEqual([read.inSync, read.receivingIndexes, syncState(read)], [true, 0, 'in sync']);
    tracker.announced([{ path: 'a.txt', type: 'file', deleted: false, size: 2048 } as never]);
    assert.equal(syncState(await tracker.folder()), 'needs 1 change (2.0 KiB)');
  });
});

describe('the folder counts', () => {
  it('are read again after a change, but a slow pass over a large index is not repeated at every change', async () => {
    const store = new MemoryStore();
    let passes = 0;
    let slow = false;
    const counted = Object.create(store) as MemoryStore;
    counted.scanEntries = async function* (subtree?: string) {
      passes++;
      if (slow) await sleep(100); // as 20,000 records might take
      yield* store.scanEntries(subtree);
    };
    const tracker = new StatusTracker('/sync', counted);
    /** Asks until the counts show `files` (a pass runs once the last is old enough), within `ms`. */
    const counts = async (files: number, ms: number) => {
      const deadline = Date.now() + ms;
      while ((await tracker.folder()).files !== files) {
        if (Date.now() > deadline) assert.fail(`the counts did not show ${files} files within ${ms} ms`);
        await sleep(10);
      }
    };
    assert.equal((await tracker.folder()).files, 0);
    await store.commit([fileChangeOf(store, 'a.txt')]);
    tracker.committed();
    // Well within the 2 s for which unchanged counts are reused: it is the change that counts.
    await counts(1, 1000);

    slow = true;
    await store.commit([fileChangeOf(store, 'b.txt')]);
    tracker.committed();
    await counts(2, 1000);
    const before = passes;
    // 100 ms a pass: at most 2% of the time, so none again within 5 s, however often asked.
    for (let k = 0; k < 10; k++) {
      await store.commit([fileChangeOf(store, `c${k}.txt`)]);
      tracker.committed();
      await tracker.folder();
      await sleep(50);
    }
    assert.equal(passes, before);
  });
});

describe('mesh status and friends', () => {
  it('status shows the peer, the folder in sync, and a conflict copy; peers and conflicts list them', async (t) => {
    const { a, b, nodeA, nodeB } = await twoNodes(t);
    const status = await until('B in sync with the file from A', async () => {
      const s = await json<NodeStatus>(t, ['status', b]);
      return s.folder.inSync && s.folder.files === 1 && s.peers.length === 1 ? s : undefined;
    });
    assert.equal(status.node.id, nodeB.peerId);
    assert.equal(status.peers[0].id, nodeA.peerId);
    assert.equal(status.folder.bytes, 'hello from a'.length);
    assert.deepEqual(status.conflicts, []);
    // In sync means A's index is read to its head, not only that nothing is missing yet.
    assert.equal(status.folder.receivingIndexes, 0);
    assert.ok(status.peers[0].index.head !== null && status.peers[0].index.received >= status.peers[0].index.head, JSON.stringify(status.peers[0]));

    const peersOfA = await json<PeerStatus[]>(t, ['peers', a]);
    assert.deepEqual(
      peersOfA.map((p) => p.id),
      [nodeB.peerId],
    );
    // A sent B its index and the file (more than the file itself), and got B's requests.
    assert.ok(peersOfA[0].bytesOut > 'hello from a'.length && peersOfA[0].bytesIn > 0, JSON.stringify(peersOfA[0]));
    assert.ok(status.peers[0].bytesIn > 'hello from a'.length, `B counted what it received: ${JSON.stringify(status.peers[0])}`);

    // A conflict copy, as a conflict leaves one (the name says whose version of which file it keeps).
    const copy = 'hello.sync-conflict-20261121-101500-abcdef0.txt';
    await writeFile(join(a, copy), 'the losing version');
    const conflicts = await until('the conflict copy listed on B', async () => {
      const list = await json<ConflictStatus[]>(t, ['conflicts', b]);
      return list.length === 1 ? list : undefined;
    });
    assert.equal(conflicts[0].path, copy);
    assert.equal(conflicts[0].original, 'hello.txt');
    const human = await output(t, ['status', b]);
    assert.match(human.stdout, /folder: 2 files, .*in sync/);
    assert.match(human.stdout, /conflicts: 1 /);
    assert.match(human.stdout, new RegExp(`peers: 1 connected\\n  ${nodeA.peerId} .*, index read\\n`));

    // Stopped, a node takes its socket with it: status says so in one line.
    await nodeB.stop();
    await assert.rejects(stat(controlSocketPath(b)), /ENOENT/);
    const stopped = await output(t, ['status', b]);
    assert.equal(stopped.code, 1);
    assert.equal(stopped.stderr, `mesh: no mesh node is running on ${b} (start one with: mesh join ${b})\n`);
  });

  it('key prints the stored key and the command for another machine; bad folders get one line', async (t) => {
    const dir = await tempFolder(t, 'status-key');
    const plain = await tempFolder(t, 'status-plain');
    const none = await output(t, ['key', dir]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /is not a mesh folder/);

    const node = mesh(t, ['join', dir, '--no-mdns', '--port', '0', '--key', KEY]);
    await node.waitForOutput(/scanned the folder/, 30_000);
    const key = await output(t, ['key', dir]);
    assert.equal(key.code, 0, key.stderr);
    assert.match(key.stdout, new RegExp(`^mesh key: ${KEY}\\nOn each other machine, run:  npx mesh join <dir> --key ${KEY}\\n`));

    for (const [args, pattern] of [
      [['status', join(plain, 'missing')], /missing: no such folder/],
      [['status', plain], /is not a mesh folder \(it has no \.mesh; start one with: mesh join /],
      [['peers', plain], /is not a mesh folder/],
    ] as const) {
      const result = await output(t, args);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, pattern);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
  });

  it('conflicts resolve keeps mine, theirs or both, and refuses what is ambiguous, with no node running', async (t) => {
    const dir = await tempFolder(t, 'resolve');
    await writeFile(join(dir, 'notes.txt'), 'the winner');
    assert.equal((await output(t, ['scan', dir])).code, 0);
    const store = await openLevelStore(join(dir, '.mesh', 'index'));
    const mine = store.deviceId.slice(0, 7);
    await store.close();
    const theirs = mine === 'abcdef0' ? '1234567' : 'abcdef0';
    const copy = (device: string) => `notes.sync-conflict-20261121-101500-${device}.txt`;
    const files = async () => (await readdir(dir)).filter((name) => name !== '.mesh').sort();

    // The copy is this device's version: "mine" puts it in place of the winner.
    await writeFile(join(dir, copy(mine)), 'my version');
    const kept = await output(t, ['conflicts', 'resolve', join(dir, 'notes.txt'), '--keep', 'mine']);
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.stdout, `kept ${copy(mine)} as notes.txt\n`);
    assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'my version');
    assert.deepEqual(await files(), ['notes.txt']);

    // The copy is another device's: "mine" keeps the file and drops the copy (named by its own path here).
    await writeFile(join(dir, copy(theirs)), 'their version');
    const dropped = await output(t, ['conflicts', 'resolve', join(dir, copy(theirs)), '--keep', 'mine']);
    assert.equal(dropped.stdout, `kept notes.txt, removed ${copy(theirs)}\n`);
    assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'my version');

    // Two copies: the file alone is ambiguous; "both" gives the named copy an ordinary name.
    await writeFile(join(dir, copy(theirs)), 'their version');
    await writeFile(join(dir, copy(mine)), 'another of mine');
    const ambiguous = await output(t, ['conflicts', 'resolve', join(dir, 'notes.txt'), '--keep', 'theirs']);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /^mesh: notes\.txt has 2 conflict copies \(.*\): name the one to resolve\n$/);
    const both = await output(t, ['conflicts', 'resolve', join(dir, copy(theirs)), '--keep', 'both']);
    assert.equal(both.code, 0, both.stderr);
    assert.equal(await readFile(join(dir, `notes (conflict ${theirs}).txt`), 'utf8'), 'their version');
    assert.deepEqual(await files(), [copy(mine), `notes (conflict ${theirs}).txt`, 'notes.txt'].sort());

    const bad = await output(t, ['conflicts', 'resolve', join(dir, 'notes.txt'), '--keep', 'newest']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--keep takes mine, theirs or both, not 'newest'/);
  });
});

describe('mesh join on a terminal', () => {
  it('keeps a status line under its log (peers, in sync or what is left); without a terminal, log lines only', async (t) => {
    const a = await tempFolder(t, 'tty-a');
    const c = await tempFolder(t, 'tty-c');
    await writeFile(join(a, 'hello.txt'), 'hello from a');
    const nodeA = mesh(t, ['join', a, '--no-mdns', '--port', '0', '--key', KEY]);
    await nodeA.waitForOutput(/scanned the folder/, 30_000);
    const port = /\/ip4\/[\d.]+\/tcp\/(\d+)/.exec(nodeA.stdout)?.[1];
    // `script` gives the node a pseudo-terminal, as a user's shell would.
    const command = [process.execPath, ...SOURCE_CLI, 'join', c, '--no-mdns', '--port', '0', '--key', KEY, '--peer', `/ip4/127.0.0.1/tcp/${port}/p2p/${nodeA.peerId}`]
      .map((arg) => `'${arg}'`)
      .join(' ');
    const tty = new JoinProcess(spawn('script', ['-qfc', command, '/dev/null'], { stdio: 'pipe' }));
    t.after(() => tty.stop());
    await tty.waitForOutput(/peers: 1 \| in sync \(1 files, 12 B\)/, 60_000);
    assert.match(tty.stdout, /\d{4}-\d\d-\d\dT[\d:.]+Z peer connected: /);
    assert.match(tty.stdout, /pulled hello\.txt/);
    assert.doesNotMatch(nodeA.stdout, /peers: \d+ \|/);
  });
});
