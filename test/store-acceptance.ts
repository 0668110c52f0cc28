import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { StoreClosedError, StoreInputError } from '../src/store/errors.js';
import { DEVICE_ID_META_KEY } from '../src/store/store-input.js';
import type { FileChange, FileRecord, Store } from '../src/store/types.js';
import { isDeviceId } from '../src/store/version-vector.js';
import { allRecords, changeArbitrary, DEVICE_B, expectedScanEntry, sampleChange, scanEntries, since, tombstone } from './store-helpers.js';

/**
 * What every Store must do, as a list of behaviours (in the manner of automerge-repo's
 * runStorageAdapterTests). Each implementation passes a factory; each test gets a fresh store.
 */
export interface StoreUnderTest {
  store: Store;
  /**
   * Opens the same storage again, for stores that outlive their process. The test closes `store`
   * before calling it; stores opened by it are closed by `cleanup`.
   */
  reopen?: () => Promise<Store>;
  /** Closes whatever is still open and removes the storage. */
  cleanup: () => Promise<void>;
}

const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const paths = (records: FileRecord[]) => records.map((r) => r.path);
const sequences = (records: FileRecord[]) => records.map((r) => r.sequence);

export function runStoreAcceptance(name: string, open: () => Promise<StoreUnderTest>): void {
  async function fresh(t: TestContext): Promise<StoreUnderTest> {
    const opened = await open();
    t.after(opened.cleanup);
    return opened;
  }

  describe(`${name} store: acceptance`, () => {
    it('starts empty: lastSequence 0, no records, get of any path is undefined', async (t) => {
      const { store } = await fresh(t);
      assert.equal(store.lastSequence, 0);
      assert.deepEqual(await allRecords(store), []);
      assert.deepEqual(await since(store, 0), []);
      assert.equal(await store.get('missing.txt'), undefined);
      assert.ok(isDeviceId(store.deviceId), `device id ${store.deviceId}`);
    });

    it('get of a path never committed is undefined, beside committed ones', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('a'), sampleChange('a/b')]);
      assert.equal(await store.get('b'), undefined);
      assert.equal(await store.get('a/'), undefined);
      assert.equal(await store.get('A'), undefined);
    });

    it('getMany reads many paths at once, in their order, undefined where none (even for a path no store could hold)', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('a'), sampleChange('a/b'), sampleChange('文档/c')]);
      const paths = ['a/b', 'missing', '文档/c', 'a', 'a/b', '\uD800', ''];
      const many = await store.getMany(paths);
      assert.equal(many.length, paths.length);
      for (const [k, path] of paths.entries()) assert.deepEqual(many[k], await store.get(path), path);
      assert.deepEqual(
        many.map((r) => r?.path),
        ['a/b', undefined, '文档/c', 'a', 'a/b', undefined, undefined],
      );
      assert.deepEqual(await store.getMany([]), []);
    });

    it("sequencesOf gives each path's sequence, in their order, undefined where none", async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('a'), sampleChange('a/b'), sampleChange('文档/c')]);
      await store.commit([sampleChange('a')]);
      const paths = ['a/b', 'missing', '文档/c', 'a', 'a/b', '\uD800', ''];
      const records = await store.getMany(paths);
      assert.deepEqual(await store.sequencesOf(paths), records.map((record) => record?.sequence));
      assert.deepEqual(await store.sequencesOf(['a', 'a/b', '文档/c']), [4, 2, 3]);
      assert.deepEqual(await store.sequencesOf([]), []);
    });

    it('commit assigns consecutive sequences, starting after lastSequence', async (t) => {
      const { store } = await fresh(t);
      const first = await store.commit([sampleChange('one'), sampleChange('two'), sampleChange('three')]);
      assert.deepEqual(sequences(first), [1, 2, 3]);
      assert.equal(store.lastSequence, 3);
      const second = await store.commit([sampleChange('four'), sampleChange('one')]);
      assert.deepEqual(sequences(second), [4, 5]);
      assert.equal(store.lastSequence, 5);
    });

    it('any record reads back exactly as committed (bigints, bytes, vectors) from commit, get, since and records', async (t) => {
      const { store } = await fresh(t);
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(changeArbitrary, { selector: (c) => c.path, minLength: 1, maxLength: 6 }), async (changes) => {
          const before = store.lastSequence;
          const stored = await store.commit(changes);
          assert.deepEqual(stored, changes.map((change, k) => ({ ...change, sequence: before + k + 1 })));
          for (const record of stored) assert.deepEqual(await store.get(record.path), record);
          assert.deepEqual(await since(store, before), stored);
          const listed = new Map((await allRecords(store)).map((r) => [r.path, r]));
          for (const record of stored) assert.deepEqual(listed.get(record.path), record);
        }),
        { numRuns: 25 },
      );
    });

    it('keeps the extremes of every field, and a 3 GiB file', async (t) => {
      const { store } = await fresh(t);
      const extreme = sampleChange('extreme', {
        type: 'symlink',
        size: Number.MAX_SAFE_INTEGER,
        mtimeNs: -(2n ** 63n),
        mode: 0o7777,
        inode: 2n ** 64n - 1n,
        blockHashes: new Uint8Array(0),
        contentHash: new Uint8Array(32).fill(0xff),
        symlinkTarget: '../目标 target/😀',
        version: [
          { device: '0000000000000000', value: Number.MAX_SAFE_INTEGER },
          { device: 'ffffffffffffffff', value: 1 },
        ],
        modifiedBy: 'ffffffffffffffff',
      });
      // A 3 GiB file: sizes, times and counters between 2^31 and 2^32 are where 32-bit code breaks.
      const large = sampleChange('large', {
        size: 3 * 2 ** 30,
        mtimeNs: 2n ** 31n + 1n,
        inode: 2n ** 32n - 1n,
        version: [{ device: DEVICE_B, value: 2 ** 31 }],
      });
      const stored = await store.commit([extreme, large]);
      assert.deepEqual(stored, [
        { ...extreme, sequence: 1 },
        { ...large, sequence: 2 },
      ]);
      assert.deepEqual(await store.get('extreme'), stored[0]);
      assert.deepEqual(await store.get('large'), stored[1]);
    });

    it('re-committing a path moves it to the end of since() and leaves no duplicate', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('a'), sampleChange('b'), sampleChange('c')]);
      const [updated] = await store.commit([sampleChange('a', { size: 1, version: [{ device: DEVICE_B, value: 1 }] })]);
      assert.equal(updated.sequence, 4);
      const all = await since(store, 0);
      assert.deepEqual(paths(all), ['b', 'c', 'a']);
      assert.deepEqual(sequences(all), [2, 3, 4]);
      assert.deepEqual(all[2], updated);
      assert.deepEqual(await store.get('a'), updated);
      assert.equal((await allRecords(store)).length, 3);
    });

    it('since(n) returns exactly the records above n, in sequence order, for every n', async (t) => {
      const { store } = await fresh(t);
      await store.commit(['p', 'q', 'r', 's'].map((p) => sampleChange(p)));
      await store.commit([sampleChange('q'), sampleChange('t')]);
      // Live sequences: p1 r3 s4 q5 t6 (q's 2 is gone).
      const expected: [string, number][] = [
        ['p', 1],
        ['r', 3],
        ['s', 4],
        ['q', 5],
        ['t', 6],
      ];
      for (let n = 0; n <= 7; n++) {
        const got = (await since(store, n)).map((r): [string, number] => [r.path, r.sequence]);
        assert.deepEqual(got, expected.filter(([, s]) => s > n), `since(${n})`);
      }
    });

    it('records() lists every path once, in UTF-8 byte order, whatever the script', async (t) => {
      const { store } = await fresh(t);
      const names = [
        'zeta.txt',
        'Zeta.txt',
        'a b/c d.txt',
        'a/b',
        'a.b',
        'a',
        ' leading space',
        'trailing space ',
        'café',
        '中文/文件.txt',
        '中文件',
        '😀 emoji',
        '\uFFFD replacement',
        '\uFEFFbom',
        'ﬀ ligature',
      ];
      await store.commit(names.map((p) => sampleChange(p)));
      const listed = paths(await allRecords(store));
      assert.deepEqual(listed, [...names].sort(byUtf8));
      // UTF-16 order (JavaScript's default sort) would put the emoji first; UTF-8 puts U+FFFD first.
      assert.ok(listed.indexOf('\uFFFD replacement') < listed.indexOf('😀 emoji'));
      for (const name of names) assert.equal((await store.get(name))?.path, name);
    });

    it('records(subtree) lists the path and what is under it, not its look-alike siblings', async (t) => {
      const { store } = await fresh(t);
      const names = ['a', 'a b', 'a.txt', 'a/b', 'a/b/c', 'a/b c', 'a/b0', 'a/b/c/d', 'a/b!', 'a/bb', 'ab', 'b'];
      await store.commit(names.map((p) => sampleChange(p)));
      const under = async (subtree: string) => {
        const out: string[] = [];
        for await (const record of store.records(subtree)) out.push(record.path);
        return out;
      };
      assert.deepEqual(await under('a/b'), ['a/b', 'a/b/c', 'a/b/c/d']);
      assert.deepEqual(await under('a'), ['a', 'a/b', 'a/b c', 'a/b!', 'a/b/c', 'a/b/c/d', 'a/b0', 'a/bb'].sort(byUtf8));
      assert.deepEqual(await under('a/b/c/d'), ['a/b/c/d']);
      assert.deepEqual(await under('missing'), []);
    });

    it('scanEntries() says of every record what records() does, in the same order, after any commits', async (t) => {
      const { store } = await fresh(t);
      await fc.assert(
        fc.asyncProperty(fc.array(changeArbitrary, { minLength: 1, maxLength: 6 }), async (changes) => {
          await store.commit(changes);
          const records = await allRecords(store);
          assert.deepEqual(await scanEntries(store), records.map(expectedScanEntry));
        }),
        { numRuns: 25 },
      );
    });

    // Three contents shared among a few paths, so lookups find several paths and lose them again
    // (not in byte order: a listing by content hash must sort them).
    const pool = [3, 1, 2].map((n) => new Uint8Array(32).fill(n));
    const sharedPicks = fc.array(fc.record({ change: changeArbitrary, content: fc.integer({ min: 0, max: 2 }), path: fc.constantFrom('a', 'b', 'c/d', 'é', 'c') }), { minLength: 1, maxLength: 6 });
    const commitShared = (store: Store, picks: { change: FileChange; content: number; path: string }[]) =>
      store.commit(picks.map(({ change, content, path }) => ({ ...change, path, contentHash: change.contentHash.length === 0 ? change.contentHash : pool[content] })));

    it('pathsWithContent(h) lists, in path order, exactly the non-empty files recorded with h, after any commits', async (t) => {
      const { store } = await fresh(t);
      await fc.assert(
        fc.asyncProperty(sharedPicks, async (picks) => {
          await commitShared(store, picks);
          const records = await allRecords(store);
          for (const hash of pool) {
            const expected = records.filter((r) => r.type === 'file' && !r.deleted && r.size > 0 && Buffer.from(r.contentHash).equals(hash));
            assert.deepEqual(await store.pathsWithContent(hash, 10), paths(expected));
            assert.deepEqual(await store.pathsWithContent(hash, 1), paths(expected).slice(0, 1));
          }
        }),
        { numRuns: 40 },
      );
      assert.deepEqual(await store.pathsWithContent(new Uint8Array(32).fill(4), 10), []);
      assert.deepEqual(await store.pathsWithContent(new Uint8Array(5).fill(1), 10), [], 'no record holds a hash of another length');
      await assert.rejects(store.pathsWithContent(pool[0], 0), StoreInputError);
    });

    it('contents() lists every non-empty file by content hash then path, as pathsWithContent finds them, after any commits', async (t) => {
      const { store } = await fresh(t);
      await fc.assert(
        fc.asyncProperty(sharedPicks, async (picks) => {
          await commitShared(store, picks);
          const expected = (await allRecords(store))
            .filter((r) => r.type === 'file' && !r.deleted && r.size > 0 && r.contentHash.length === 32)
            .map((r) => `${Buffer.from(r.contentHash).toString('hex')} ${r.path}`)
            .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
          const listed: string[] = [];
          for await (const batch of store.contents()) for (const entry of batch) listed.push(`${Buffer.from(entry.contentHash).toString('hex')} ${entry.path}`);
          assert.deepEqual(listed, expected);
        }),
        { numRuns: 40 },
      );
    });

    it('scanEntries() keeps the extremes of every scan field, and tombstones', async (t) => {
      const { store } = await fresh(t);
      await store.commit([
        sampleChange('extreme', { type: 'symlink', size: Number.MAX_SAFE_INTEGER, mtimeNs: -(2n ** 63n), mode: 0o7777, inode: 2n ** 64n - 1n }),
        sampleChange('high', { type: 'directory', size: 0, mtimeNs: 2n ** 63n - 1n, mode: 0, inode: 0n, contentHash: new Uint8Array(0) }),
        tombstone('gone'),
      ]);
      const records = await allRecords(store);
      assert.deepEqual(await scanEntries(store), records.map(expectedScanEntry));
      assert.equal((await scanEntries(store)).find((e) => e.path === 'gone')?.deleted, true);
    });

    it('scanEntries(subtree) lists the path and what is under it, not its look-alike siblings', async (t) => {
      const { store } = await fresh(t);
      const names = ['a', 'a b', 'a.txt', 'a/b', 'a/b/c', 'a/b c', 'a/b0', 'a/b/c/d', 'a/b!', 'a/bb', 'ab', 'b'];
      await store.commit(names.map((p) => sampleChange(p, { size: p.length })));
      const under = async (subtree: string) => (await scanEntries(store, subtree)).map((e) => `${e.path}:${e.size}`);
      assert.deepEqual(await under('a/b'), ['a/b:3', 'a/b/c:5', 'a/b/c/d:7']);
      assert.deepEqual(
        await under('a'),
        ['a', 'a/b', 'a/b c', 'a/b!', 'a/b/c', 'a/b/c/d', 'a/b0', 'a/bb'].sort(byUtf8).map((p) => `${p}:${p.length}`),
      );
      assert.deepEqual(await under('missing'), []);
      assert.deepEqual(await under('\ud800'), [], 'a path with no UTF-8 form has no entries');
    });

    it('keeps tombstones: get, since and records return them', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('gone.txt'), sampleChange('kept.txt')]);
      const [dead] = await store.commit([tombstone('gone.txt')]);
      assert.equal(dead.deleted, true);
      assert.deepEqual(await store.get('gone.txt'), dead);
      assert.deepEqual(await since(store, 2), [dead]);
      assert.deepEqual(paths(await allRecords(store)), ['gone.txt', 'kept.txt']);
    });

    it('several changes to one path in one commit: each gets a sequence, the last wins, since() has it once', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('x')]);
      const stored = await store.commit([sampleChange('x', { size: 1 }), sampleChange('y'), sampleChange('x', { size: 2 })]);
      assert.deepEqual(sequences(stored), [2, 3, 4]);
      assert.equal(store.lastSequence, 4);
      assert.equal((await store.get('x'))?.size, 2);
      assert.deepEqual(
        (await since(store, 0)).map((r) => [r.path, r.sequence, r.size]),
        [
          ['y', 3, 300_000],
          ['x', 4, 2],
        ],
      );
    });

    it('an empty commit is a no-op', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('a')]);
      assert.deepEqual(await store.commit([]), []);
      assert.equal(store.lastSequence, 1);
      assert.deepEqual(sequences(await since(store, 0)), [1]);
    });

    it('commits made at once get distinct sequences and leave one entry per path', async (t) => {
      const { store } = await fresh(t);
      const batches = Array.from({ length: 8 }, (_, b) => [sampleChange(`shared-${b % 3}`, { size: b }), sampleChange(`own-${b}`, { size: b })]);
      const results = await Promise.all(batches.map((batch) => store.commit(batch)));
      const assigned = results.flat().map((r) => r.sequence);
      assert.deepEqual([...assigned].sort((a, b) => a - b), Array.from({ length: 16 }, (_, k) => k + 1));
      assert.equal(store.lastSequence, 16);
      const live = await since(store, 0);
      assert.equal(live.length, 3 + 8);
      assert.equal(new Set(paths(live)).size, live.length);
      for (const record of live) assert.deepEqual(await store.get(record.path), record);
    });

    it('a commit with one invalid change stores none of it', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('before')]);
      const invalid: FileChange[] = [
        sampleChange('too big', { size: 2 ** 53 }),
        sampleChange('bad vector', { version: [{ device: DEVICE_B, value: 0 }] }),
        sampleChange('bad hash', { contentHash: new Uint8Array(20) }),
        sampleChange('bad\uDC00name'),
        sampleChange(''),
      ];
      for (const bad of invalid) {
        await assert.rejects(store.commit([sampleChange('good'), bad]), StoreInputError, bad.path);
      }
      assert.equal(store.lastSequence, 1);
      assert.equal(await store.get('good'), undefined);
      assert.deepEqual(paths(await allRecords(store)), ['before']);
    });

    it('records are copies: editing what was committed or returned does not change the store', async (t) => {
      const { store } = await fresh(t);
      const counter = { device: DEVICE_B, value: 1 };
      const change = sampleChange('a', { version: [counter] });
      const [stored] = await store.commit([change]);
      change.blockHashes.fill(0);
      counter.value = 99;
      stored.contentHash.fill(0);
      const read = await store.get('a');
      assert.deepEqual(read?.blockHashes, new Uint8Array(96).fill(7));
      assert.deepEqual(read?.contentHash, new Uint8Array(32).fill(9));
      assert.equal(read?.version[0].value, 1);
    });

    it('peer progress is zero for an unknown peer and round-trips per peer', async (t) => {
      const { store } = await fresh(t);
      assert.deepEqual(await store.getPeer('12D3KooWpeer'), { received: 0, acknowledged: 0 });
      await store.setPeer('12D3KooWpeer', { received: 10, acknowledged: 7 });
      await store.setPeer('其他 peer', { received: Number.MAX_SAFE_INTEGER, acknowledged: 0 });
      await store.setPeer('12D3KooWpeer', { received: 12, acknowledged: 9 });
      assert.deepEqual(await store.getPeer('12D3KooWpeer'), { received: 12, acknowledged: 9 });
      assert.deepEqual(await store.getPeer('其他 peer'), { received: Number.MAX_SAFE_INTEGER, acknowledged: 0 });
      await assert.rejects(store.setPeer('x', { received: -1, acknowledged: 0 }), StoreInputError);
      await assert.rejects(store.setPeer('x', { received: 1, acknowledged: 0.5 }), StoreInputError);
    });

    it('meta round-trips bytes per key; a missing key is undefined', async (t) => {
      const { store } = await fresh(t);
      assert.equal(await store.getMeta('folder-id'), undefined);
      await store.setMeta('folder-id', Uint8Array.of(1, 2, 3));
      await store.setMeta('empty', new Uint8Array(0));
      const value = Buffer.from('shared buffer');
      await store.setMeta('buffer', value);
      value.fill(0);
      assert.deepEqual(await store.getMeta('folder-id'), Uint8Array.of(1, 2, 3));
      assert.deepEqual(await store.getMeta('empty'), new Uint8Array(0));
      assert.deepEqual(await store.getMeta('buffer'), new Uint8Array(Buffer.from('shared buffer')));
    });

    it('keeps its device id in meta, where setMeta cannot overwrite it', async (t) => {
      const { store } = await fresh(t);
      assert.deepEqual(await store.getMeta(DEVICE_ID_META_KEY), new Uint8Array(Buffer.from(store.deviceId, 'hex')));
      await assert.rejects(store.setMeta(DEVICE_ID_META_KEY, new Uint8Array(8)), StoreInputError);
    });

    it('keeps deviceId, lastSequence, records, peers and meta across a reopen', async (t) => {
      const { store, reopen } = await fresh(t);
      if (reopen === undefined) return t.skip('this store does not outlive its process');
      await store.commit([sampleChange('a'), sampleChange('b'), tombstone('c')]);
      await store.commit([sampleChange('a', { size: 5 })]);
      await store.setPeer('peer', { received: 3, acknowledged: 2 });
      await store.setMeta('folder-id', Uint8Array.of(42));
      const before = { records: await allRecords(store), since: await since(store, 0) };
      await store.close();
      const again = await reopen();
      assert.equal(again.deviceId, store.deviceId);
      assert.equal(again.lastSequence, 4);
      assert.deepEqual(await allRecords(again), before.records);
      assert.deepEqual(await since(again, 0), before.since);
      assert.deepEqual(await scanEntries(again), before.records.map(expectedScanEntry));
      assert.deepEqual(await again.getPeer('peer'), { received: 3, acknowledged: 2 });
      assert.deepEqual(await again.getMeta('folder-id'), Uint8Array.of(42));
      const [next] = await again.commit([sampleChange('d')]);
      assert.equal(next.sequence, 5);
    });

    it('finishes a commit started before close()', async (t) => {
      const { store, reopen } = await fresh(t);
      const pending = store.commit([sampleChange('late')]);
      await store.close();
      assert.equal((await pending)[0].sequence, 1);
      if (reopen === undefined) return;
      const again = await reopen();
      assert.equal((await again.get('late'))?.sequence, 1);
    });

    it('a closed store rejects every call with StoreClosedError; closing again is fine', async (t) => {
      const { store } = await fresh(t);
      await store.commit([sampleChange('a')]);
      await store.close();
      await store.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['get', () => store.get('a')],
        ['commit', () => store.commit([sampleChange('b')])],
        ['since', () => since(store, 0)],
        ['records', () => allRecords(store)],
        ['scanEntries', () => scanEntries(store)],
        ['getPeer', () => store.getPeer('p')],
        ['setPeer', () => store.setPeer('p', { received: 1, acknowledged: 1 })],
        ['getMeta', () => store.getMeta('k')],
        ['setMeta', () => store.setMeta('k', Uint8Array.of(1))],
      ];
      for (const [call, run] of calls) await assert.rejects(run(), StoreClosedError, call);
    });
  });
}
