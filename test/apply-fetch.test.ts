// New and small files are fetched whole, many per batch (the fetch protocol, in process here),
// and placed in groups: one hold of the folder lock, one fsync per folder, one commit. A target
// changed locally during the batch is left alone while the others are placed; a source that dies
// part way leaves the rest to another source, or to a later apply.
import assert from 'node:assert/strict';
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_FETCH_FILES } from '../src/protocol/constants.js';
import { announced, assertConverged, fetchFrom, makeSide, outcomeOf, servedSince, sync, tempFiles, type Mesh } from './apply-helpers.js';
import { put, recordOf } from './folder-helpers.js';
import { pseudoRandomBytes } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A mesh whose sides pull new and small files by fetch batches. */
async function fetchingSides(t: Parameters<typeof makeSide>[0], names: string[], sources?: string[]) {
  const mesh: Mesh = new Map();
  const sides = [];
  for (const name of names) {
    sides.push(
      await makeSide(t, mesh, name, name.toLowerCase().repeat(16), {
        fetchFiles: fetchFrom(mesh),
        ...(sources === undefined ? {} : { sources: () => sources }),
      }),
    );
  }
  return { mesh, sides };
}

async function smallFiles(root: string, count: number, seed: number, prefix = 'tree'): Promise<string[]> {
  const paths: string[] = [];
  for (let k = 0; k < count; k++) {
    const path = `${prefix}/d${k % 4}/f${k}.bin`;
    await put(root, path, pseudoRandomBytes(KiB + ((k * 37) % (3 * KiB)), seed + k));
    paths.push(path);
  }
  return paths;
}

describe('apply: whole-file fetch batches', () => {
  it('new small files arrive by fetch (more than one batch), a large one by delta, a local copy by copy', async (t) => {
    const {
      sides: [a, b],
    } = await fetchingSides(t, ['A', 'B']);
    await put(a.root, 'existing.txt', 'the same content');
    await sync(a, b);
    const served = a.served.length;

    const paths = await smallFiles(a.root, MAX_FETCH_FILES + 100, 1);
    await put(a.root, 'big.bin', pseudoRandomBytes(2 * MiB, 2));
    await put(a.root, 'copy.txt', 'the same content');
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    const sourceOf = (path: string) => report.applied.find((o) => o.path === path)?.pull?.source;
    for (const path of paths) assert.equal(sourceOf(path), 'fetch', path);
    assert.equal(sourceOf('big.bin'), 'transfer');
    assert.equal(sourceOf('copy.txt'), 'copy');
    const fetched = a.served.slice(served).filter((s) => s.attempt === 'fetch');
    assert.equal(fetched.length, paths.length, 'each small file fetched once, whole');
    await assertConverged(a, b);
  });

  it('an edit of a small file is fetched whole; an edit of a larger one still goes by delta', async (t) => {
    const {
      sides: [a, b],
    } = await fetchingSides(t, ['A', 'B']);
    const large = pseudoRandomBytes(600 * KiB, 3);
    await put(a.root, 'small.txt', 'version 1');
    await put(a.root, 'large.bin', large);
    await sync(a, b);
    const before = a.served.length;
    await put(a.root, 'small.txt', 'version 2');
    const edited = Buffer.from(large);
    edited.fill(1, 1000, 2000);
    await writeFile(join(a.root, 'large.bin'), edited);
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    assert.equal(report.applied.find((o) => o.path === 'small.txt')?.pull?.source, 'fetch');
    const largePull = report.applied.find((o) => o.path === 'large.bin')?.pull;
    assert.equal(largePull?.source, 'transfer');
    assert.equal(largePull?.basis, 'local');
    assert.ok(servedSince(a, before).literalBytes < 100 * KiB);
    await assertConverged(a, b);
  });

  it('an edit of a small file is pulled without a pass over every record of the folder (its latency must not grow with the folder)', async (t) => {
    const {
      sides: [a, b],
    } = await fetchingSides(t, ['A', 'B']);
    await smallFiles(a.root, 50, 5);
    await put(a.root, 'notes.txt', 'version 1');
    await sync(a, b);
    let passes = 0;
    const records = b.store.records.bind(b.store);
    b.store.records = (subtree?: string) => {
      passes++;
      return records(subtree);
    };
    await put(a.root, 'notes.txt', 'version 2');
    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    assert.equal(report.applied.find((o) => o.path === 'notes.txt')?.pull?.source, 'fetch');
    assert.equal(passes, 0, 'the apply read every record');
    await assertConverged(a, b);
  });

  it('a local edit of one target during the batch is not overwritten; the others are placed', async (t) => {
    const {
      sides: [a, b],
    } = await fetchingSides(t, ['A', 'B']);
    for (let k = 0; k < 10; k++) await put(a.root, `f${k}.txt`, `version 1 of ${k}`);
    await sync(a, b);
    for (let k = 0; k < 10; k++) await put(a.root, `f${k}.txt`, `version 2 of ${k}`);
    await put(a.root, 'new.txt', 'from A');
    // While A serves the batch, B's user edits f3.txt and makes a file of their own at new.txt.
    a.afterServe = async (remote) => {
      if (remote.path === 'f3.txt') await appendFile(join(b.root, 'f3.txt'), ', edited on B');
      if (remote.path === 'f5.txt') await writeFile(join(b.root, 'new.txt'), 'made on B');
    };
    const report = await sync(a, b);
    a.afterServe = undefined;
    assert.deepEqual(report.failed, []);
    assert.deepEqual([...report.changedLocally].sort(), ['f3.txt', 'new.txt']);
    assert.equal(await readFile(join(b.root, 'f3.txt'), 'utf8'), 'version 1 of 3, edited on B');
    assert.equal(await readFile(join(b.root, 'new.txt'), 'utf8'), 'made on B');
    for (const k of [0, 1, 2, 4, 5, 6, 7, 8, 9]) {
      assert.equal(outcomeOf(report, `f${k}.txt`), 'applied file');
      assert.equal(await readFile(join(b.root, `f${k}.txt`), 'utf8'), `version 2 of ${k}`);
    }
    assert.deepEqual(await tempFiles(b.root), []);
    // B's edit is a version of its own now: a conflict, decided alike on both sides, nothing lost.
    await b.scanner.scan();
    const again = await b.applier.apply((await announced(a)).filter((r) => r.path === 'f3.txt'));
    assert.equal(again.applied.length + again.skipped.length, 1);
  });

  it('a source that dies part way through a batch: the rest comes from another source with the same version', async (t) => {
    const {
      sides: [a, c, b],
    } = await fetchingSides(t, ['A', 'C', 'B'], ['A', 'C']);
    const paths = await smallFiles(a.root, 40, 4);
    await sync(a, c);
    await c.scanner.scan();
    a.fetchDiesAfter = 5;
    const report = await b.applier.apply(await announced(a));
    assert.deepEqual(report.failed, []);
    const peers = paths.map((path) => report.applied.find((o) => o.path === path)?.pull?.peer);
    assert.equal(peers.filter((p) => p === 'A').length, 5);
    assert.equal(peers.filter((p) => p === 'C').length, paths.length - 5);
    await assertConverged(a, b);
  });

  it('a source that dies part way with no other source: what arrived is placed, the rest fails (not its fault) and a later apply brings it', async (t) => {
    const {
      sides: [a, b],
    } = await fetchingSides(t, ['A', 'B']);
    const paths = await smallFiles(a.root, 20, 5);
    await a.scanner.scan();
    a.fetchDiesAfter = 7;
    const report = await b.applier.apply(await announced(a));
    const fetched = paths.filter((path) => outcomeOf(report, path) === 'applied file');
    assert.equal(fetched.length, 7);
    assert.equal(report.failed.length, paths.length - 7);
    assert.ok(report.failed.every((f) => f.peer === 'A' && !f.peerAtFault && /connection lost/.test(f.error.message)));
    assert.deepEqual(await tempFiles(b.root), []);
    const again = await b.applier.apply(await announced(a));
    assert.deepEqual(again.failed, []);
    await assertConverged(a, b);
  });

  it('bytes that do not hash to the announced content are never placed, and the peer is blamed', async (t) => {
    const {
      sides: [a, b],
    } = await fetchingSides(t, ['A', 'B']);
    await put(a.root, 'other.txt', 'something else');
    await put(a.root, 'docs/one.txt', 'one');
    await put(a.root, 'docs/two.txt', 'two');
    await a.scanner.scan();
    a.serveInstead = 'other.txt';
    const report = await b.applier.apply((await announced(a)).filter((r) => r.path.startsWith('docs/')));
    assert.equal(outcomeOf(report, 'docs/one.txt'), 'failed ContentMismatchError');
    assert.equal(outcomeOf(report, 'docs/two.txt'), 'failed ContentMismatchError');
    assert.ok(report.failed.every((f) => f.peerAtFault && f.peer === 'A'));
    assert.equal(await b.store.get('docs/one.txt'), undefined);
    assert.deepEqual(await tempFiles(b.root), []);
    await assert.rejects(readFile(join(b.root, 'docs/one.txt')), { code: 'ENOENT' });
    a.serveInstead = undefined;
    assert.deepEqual((await b.applier.apply(await announced(a))).failed, []);
    assert.equal((await recordOf(b.store, 'docs/one.txt')).size, 3);
  });

  it('files and folders put in place but not recorded (a crash before the commit) are found by the next scan and merge, with no copy and no loss', async (t) => {
    const {
      sides: [a, b],
    } = await fetchingSides(t, ['A', 'B']);
    const paths = await smallFiles(a.root, 12, 6);
    const folders = ['tree', 'tree/d0', 'tree/d1', 'tree/d2', 'tree/d3'];
    await a.scanner.scan();
    const commit = b.store.commit.bind(b.store);
    b.store.commit = async (changes) => {
      if (changes.length > 1) throw new Error('power cut');
      return commit(changes);
    };
    const report = await b.applier.apply(await announced(a));
    b.store.commit = commit;
    assert.equal(report.failed.length, folders.length + paths.length);
    for (const folder of folders) {
      assert.equal(await b.store.get(folder), undefined, `${folder} is not recorded`);
      assert.ok((await stat(join(b.root, folder))).isDirectory(), `${folder} is made`);
    }
    for (const path of paths) {
      assert.equal(await b.store.get(path), undefined, `${path} is not recorded`);
      assert.ok((await readFile(join(b.root, path))).equals(await readFile(join(a.root, path))), `${path} is in place, whole`);
    }
    // What the next start does: a scan, then the peer's records again.
    await b.scanner.scan();
    const again = await b.applier.apply(await announced(a));
    assert.deepEqual(again.failed, []);
    assert.deepEqual(again.conflictCopies, []);
    for (const path of [...folders, ...paths]) assert.equal(outcomeOf(again, path), 'applied merged');
    assert.equal(servedSince(a).deltas, paths.length, 'nothing fetched twice');
    // B's merged versions dominate A's with the same content: A takes them without a transfer.
    const back = await a.applier.apply(await announced(b));
    assert.deepEqual(back.failed, []);
    assert.equal(servedSince(b).deltas, 0);
    await assertConverged(b, a);
  });
});
