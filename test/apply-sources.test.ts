// A pull that its peer cannot finish goes on with another peer that announced the same version,
// in the same apply, from the partial file (no byte sent twice); the availability map that names
// those peers forgets a peer that left, a version superseded, and stays bounded.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Availability, MAX_AVAILABLE_PATHS, MAX_SOURCES_PER_VERSION } from '../src/node/availability.js';
import { tempPathOf } from '../src/node/index.js';
import { announced, assertConverged, makeSide, servedSince, sync, type Mesh } from './apply-helpers.js';
import { put, recordOf } from './folder-helpers.js';
import { pseudoRandomBytes } from './helpers.js';

const MiB = 1024 * 1024;

describe('apply: pulls from whichever peer has the version', () => {
  it('a transfer the announcing peer breaks off is finished by another peer with the same version', async (t) => {
    const mesh: Mesh = new Map();
    const sources = ['A', 'B'];
    const a = await makeSide(t, mesh, 'A', 'aaaaaaaaaaaaaaaa');
    const b = await makeSide(t, mesh, 'B', 'bbbbbbbbbbbbbbbb');
    const c = await makeSide(t, mesh, 'C', 'cccccccccccccccc', { sources: () => sources });
    const data = pseudoRandomBytes(8 * MiB, 3);
    await put(a.root, 'big.bin', data);
    await sync(a, b);
    await b.scanner.scan();
    assert.deepEqual((await recordOf(b.store, 'big.bin')).version, (await recordOf(a.store, 'big.bin')).version);

    a.interruptAfter = 3 * MiB;
    const report = await c.applier.apply(await announced(a));
    assert.deepEqual(report.failed, []);
    const pulled = report.applied.find((p) => p.path === 'big.bin')?.pull;
    assert.equal(pulled?.peer, 'B');
    assert.equal(pulled?.basis, 'partial');
    const fromB = servedSince(b).literalBytes;
    assert.ok(fromB <= data.length - 3 * MiB + 64 * 1024, `B sent ${fromB} literal bytes after A sent 3 MiB`);
    await assertConverged(a, c);
  });

  it('when every source fails the path fails, naming the last peer asked, and keeps its partial file', async (t) => {
    const mesh: Mesh = new Map();
    const a = await makeSide(t, mesh, 'A', 'aaaaaaaaaaaaaaaa');
    const b = await makeSide(t, mesh, 'B', 'bbbbbbbbbbbbbbbb');
    const c = await makeSide(t, mesh, 'C', 'cccccccccccccccc', { sources: () => ['A', 'B'] });
    await put(a.root, 'big.bin', pseudoRandomBytes(4 * MiB, 4));
    await sync(a, b);
    await b.scanner.scan();
    a.interruptAfter = MiB;
    b.interruptAfter = 0;
    const report = await c.applier.apply(await announced(a));
    assert.equal(report.failed.length, 1);
    assert.equal(report.failed[0].peer, 'B');
    assert.equal(report.failed[0].peerAtFault, false);
    const temp = tempPathOf('big.bin', (await recordOf(a.store, 'big.bin')).contentHash);
    assert.ok((await stat(join(c.root, temp + '.basis')).catch(() => stat(join(c.root, temp)))).size > MiB / 2);
  });
});

describe('availability: which peers announced which version', () => {
  const file = (path: string, counter: number, hash = counter) => ({
    path,
    type: 'file',
    deleted: false,
    version: [{ device: 'aaaaaaaaaaaaaaaa', value: counter }],
    contentHash: new Uint8Array(32).fill(hash),
  });

  it('names the peers of exactly one version, in the order they announced it', () => {
    const map = new Availability();
    map.announced('B', file('f', 1));
    map.announced('A', file('f', 1));
    map.announced('C', file('f', 1, 9));
    assert.deepEqual(map.sources(file('f', 1)), ['B', 'A']);
    assert.deepEqual(map.sources(file('f', 1, 9)), ['C']);
    assert.deepEqual(map.sources(file('g', 1)), []);
  });

  it('forgets a peer that disconnected, a peer that announced another version, and versions superseded', () => {
    const map = new Availability();
    map.announced('A', file('f', 1));
    map.announced('B', file('f', 1));
    map.announced('C', file('f', 1));
    map.peerGone('A');
    assert.deepEqual(map.sources(file('f', 1)), ['B', 'C']);
    map.announced('B', { ...file('f', 2), deleted: true, type: 'file' });
    assert.deepEqual(map.sources(file('f', 1)), [], 'a newer version (here a delete) supersedes the old one for everyone');
    map.announced('C', file('f', 3));
    map.settled('f');
    assert.equal(map.size, 0);
  });

  it('keeps its own copy of a content hash, never a view of the batch it came in', () => {
    const map = new Availability();
    const batch = new Uint8Array(1024 * 1024).fill(7); // a decoded batch: the record's hash is a view of it
    map.announced('A', { ...file('f', 1), contentHash: batch.subarray(64, 96) });
    batch.fill(0);
    assert.deepEqual(map.sources({ ...file('f', 1), contentHash: new Uint8Array(32).fill(7) }), ['A']);
  });

  it('is bounded: paths (oldest announced dropped) and peers per version', () => {
    const map = new Availability();
    for (let i = 0; i <= MAX_AVAILABLE_PATHS; i++) map.announced('A', file(`p${i}`, 1));
    assert.equal(map.size, MAX_AVAILABLE_PATHS);
    assert.deepEqual(map.sources(file('p0', 1)), []);
    for (let i = 0; i < MAX_SOURCES_PER_VERSION + 5; i++) map.announced(`peer${i}`, file('q', 1));
    assert.equal(map.sources(file('q', 1)).length, MAX_SOURCES_PER_VERSION);
  });
});
