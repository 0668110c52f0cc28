import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Level } from 'level';
import { StoreCorruptError, StoreLockedError } from '../src/store/errors.js';
import { fileKey, metaKey, scanKey, TABLE, tableRange } from '../src/store/level-keys.js';
import { CONTENT_TABLE_META_KEY, openLevelStore, SCAN_TABLE_META_KEY } from '../src/store/level-store.js';
import { openMemoryStore } from '../src/store/memory-store.js';
import { DEVICE_ID_META_KEY } from '../src/store/store-input.js';
import type { Store } from '../src/store/types.js';
import { tempDir } from './helpers.js';
import { runStoreAcceptance } from './store-acceptance.js';
import { allRecords, expectedScanEntry, sampleChange, scanEntries, since, tombstone } from './store-helpers.js';

const run = promisify(execFile);
const TSX = import.meta.resolve('tsx');
const OPEN_STORE = fileURLToPath(new URL('fixtures/open-store.ts', import.meta.url));

runStoreAcceptance('memory', async () => {
  const store = await openMemoryStore();
  return { store, cleanup: () => store.close() };
});

runStoreAcceptance('LevelDB', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mesh-store-'));
  // Where mesh puts it: the directory and its parent do not exist yet.
  const location = join(dir, '.mesh', 'index');
  const opened: Store[] = [];
  const open = async () => {
    const store = await openLevelStore(location);
    opened.push(store);
    return store;
  };
  return {
    store: await open(),
    reopen: open,
    cleanup: async () => {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** Edits the database under the store's feet, as damage on disk would. */
async function tamper(location: string, edit: (db: Level<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    await edit(db);
  } finally {
    await db.close();
  }
}

describe('LevelDB store', () => {
  it('creates the index directory and its parents', async (t) => {
    const location = join(await tempDir(t, 'mesh-store-'), 'folder', '.mesh', 'index');
    const store = await openLevelStore(location);
    t.after(() => store.close());
    assert.ok((await stat(location)).isDirectory());
  });

  it('a second open while the first is open fails with StoreLockedError, and works once it is closed', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    const first = await openLevelStore(location);
    t.after(() => first.close());
    await assert.rejects(openLevelStore(location), (error: Error) => {
      assert.ok(error instanceof StoreLockedError, `${error.name}: ${error.message}`);
      assert.match(error.message, /in use by another mesh process/);
      return true;
    });
    await first.commit([sampleChange('still usable')]);
    await first.close();
    const second = await openLevelStore(location);
    t.after(() => second.close());
    assert.equal(second.deviceId, first.deviceId);
  });

  it('another process cannot open an index that is open here', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    const store = await openLevelStore(location);
    t.after(() => store.close());
    const { stdout } = await run(process.execPath, ['--import', TSX, OPEN_STORE, location]);
    assert.match(stdout, /^StoreLockedError: the folder's index is in use by another mesh process/);
  });

  it('a damaged record is StoreCorruptError from get, since and records; other records still read', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    const store = await openLevelStore(location);
    await store.commit([sampleChange('a'), sampleChange('b'), sampleChange('c')]);
    await store.close();
    await tamper(location, (db) => db.put(fileKey('b'), Uint8Array.of(0x0a, 0xff, 0x01)));
    const damaged = await openLevelStore(location);
    t.after(() => damaged.close());
    assert.equal((await damaged.get('a'))?.sequence, 1);
    await assert.rejects(damaged.get('b'), StoreCorruptError);
    await assert.rejects(since(damaged, 0), StoreCorruptError);
    await assert.rejects(allRecords(damaged), StoreCorruptError);
    assert.deepEqual((await since(damaged, 2)).map((r) => r.path), ['c']);
  });

  it('a record filed under another path, or a sequence entry without its record, is StoreCorruptError', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    const store = await openLevelStore(location);
    await store.commit([sampleChange('a'), sampleChange('b')]);
    await store.close();
    await tamper(location, async (db) => {
      const a = await db.get(fileKey('a'));
      await db.put(fileKey('elsewhere'), a);
      await db.del(fileKey('b'));
    });
    const damaged = await openLevelStore(location);
    t.after(() => damaged.close());
    await assert.rejects(damaged.get('elsewhere'), StoreCorruptError);
    await assert.rejects(since(damaged, 1), StoreCorruptError);
  });

  it('an index written before the scan table gets it built on open, once, and kept up to date', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    const store = await openLevelStore(location);
    const names = Array.from({ length: 2500 }, (_, k) => `dir${k % 7}/file ${k}`);
    await store.commit(names.map((p, k) => sampleChange(p, { size: k, inode: BigInt(k) })));
    await store.commit([tombstone('dir0/file 0'), sampleChange('link', { type: 'symlink', size: 0 })]);
    await store.close();
    // As an index made by an older mesh: records, no scan table, no marker.
    await tamper(location, async (db) => {
      const keys = await db.keys(tableRange(TABLE.scan)).all();
      assert.equal(keys.length, 2501);
      await db.batch(keys.map((key) => ({ type: 'del' as const, key })));
      await db.del(metaKey(SCAN_TABLE_META_KEY));
    });
    const migrated = await openLevelStore(location);
    t.after(() => migrated.close());
    const records = await allRecords(migrated);
    assert.equal(records.length, 2501);
    assert.deepEqual(await scanEntries(migrated), records.map(expectedScanEntry));
    assert.deepEqual(await migrated.getMeta(SCAN_TABLE_META_KEY), Uint8Array.of(1));
    await migrated.commit([sampleChange('dir1/file 1', { size: 77 })]);
    assert.equal((await scanEntries(migrated, 'dir1/file 1'))[0].size, 77);
  });

  it('an index written before the content table gets it built on open, once, and kept up to date', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    const store = await openLevelStore(location);
    const same = new Uint8Array(32).fill(5);
    await store.commit(Array.from({ length: 2500 }, (_, k) => sampleChange(`dir${k % 7}/file ${k}`, k % 1000 === 0 ? { contentHash: same } : {})));
    await store.commit([tombstone('dir0/file 0'), sampleChange('link', { type: 'symlink', size: 0, contentHash: same }), sampleChange('empty', { size: 0, contentHash: same })]);
    await store.close();
    // As an index made by an older mesh: no content table, no marker.
    await tamper(location, async (db) => {
      const keys = await db.keys(tableRange(TABLE.content)).all();
      assert.equal(keys.length, 2499, 'every non-empty file but the deleted one');
      await db.batch(keys.map((key) => ({ type: 'del' as const, key })));
      await db.del(metaKey(CONTENT_TABLE_META_KEY));
    });
    const migrated = await openLevelStore(location);
    t.after(() => migrated.close());
    assert.deepEqual(await migrated.pathsWithContent(same, 10), ['dir5/file 2000', 'dir6/file 1000']);
    assert.deepEqual(await migrated.getMeta(CONTENT_TABLE_META_KEY), Uint8Array.of(1));
    await migrated.commit([sampleChange('dir1/file 1', { contentHash: same }), sampleChange('dir6/file 1000', { contentHash: new Uint8Array(32).fill(6) })]);
    assert.deepEqual(await migrated.pathsWithContent(same, 10), ['dir1/file 1', 'dir5/file 2000']);
  });

  it('a damaged scan entry is StoreCorruptError from scanEntries', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    const store = await openLevelStore(location);
    await store.commit([sampleChange('a'), sampleChange('b')]);
    await store.close();
    await tamper(location, (db) => db.put(scanKey('b'), Uint8Array.of(9, 0, 0)));
    const damaged = await openLevelStore(location);
    t.after(() => damaged.close());
    assert.equal((await scanEntries(damaged, 'a')).length, 1);
    await assert.rejects(scanEntries(damaged), StoreCorruptError);
  });

  it('a damaged device id or database refuses to open with StoreCorruptError', async (t) => {
    const location = await tempDir(t, 'mesh-store-');
    await (await openLevelStore(location)).close();
    await tamper(location, (db) => db.put(metaKey(DEVICE_ID_META_KEY), Uint8Array.of(1, 2, 3)));
    await assert.rejects(openLevelStore(location), StoreCorruptError);
    await writeFile(join(location, 'CURRENT'), 'not a manifest name');
    await assert.rejects(openLevelStore(location), StoreCorruptError);
  });
});
