// Versions of content a folder already holds (the same files made apart on two machines) are
// recorded in batches, one synced commit for many: each batch is all or nothing, also under kill -9,
// and a path that changed since it was scanned is left out of its batch.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { initFolder } from '../src/folder/index.js';
import { openLocalFolder } from '../src/folder/local-folder.js';
import { RECORD_ONLY_BATCH } from '../src/node/record-only.js';
import { openLevelStore } from '../src/store/level-store.js';
import type { FileRecord } from '../src/store/types.js';
import { announced, outcomeOf, pair, type Side } from './apply-helpers.js';
import { put, recordOf } from './folder-helpers.js';
import { tempDir } from './helpers.js';
import { readRaw } from './store-helpers.js';

const TSX = import.meta.resolve('tsx');
const CHILD = fileURLToPath(new URL('fixtures/merge-same-files.ts', import.meta.url));
/** Three batches and a part: a kill can fall between any two of them. */
const FILES = 3 * RECORD_ONLY_BATCH + 100;
const FILES_PER_FOLDER = 100;
const ROUNDS = 5;
/** The child is killed this long (at random) after it starts applying. */
const MAX_RUN_MS = 600;

async function allRecords(location: string): Promise<FileRecord[]> {
  const store = await openLevelStore(location);
  try {
    const records: FileRecord[] = [];
    for await (const record of store.records()) records.push(record);
    return records;
  } finally {
    await store.close();
  }
}

/** Runs the applying child; kills it `killAfterMs` after it starts applying, unless it finishes first. */
async function runChild(folder: string, peerFolder: string, killAfterMs: number | undefined, signal: AbortSignal): Promise<'killed' | 'done'> {
  const child = spawn(process.execPath, ['--import', TSX, CHILD, folder, peerFolder], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.on('error', () => undefined); // The abort on a failed test surfaces as the test's own failure.
  const exited = once(child, 'exit');
  let killTimer: NodeJS.Timeout | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'applying' && killAfterMs !== undefined) killTimer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  }
  clearTimeout(killTimer);
  const [code, killedBy] = (await exited) as [number | null, NodeJS.Signals | null];
  if (killedBy === 'SIGKILL') return 'killed';
  assert.equal(code, 0, `the child failed: ${stderr}`);
  return 'done';
}

/** The same files (content, mtime) made on each side on its own and scanned: each holds its own version of them. */
async function sameFilesMadeApart(sides: readonly Side[], paths: readonly string[]): Promise<void> {
  const when = new Date('2024-03-05T07:08:09Z');
  for (const side of sides) {
    for (const path of paths) {
      await put(side.root, path, `same ${path}`);
      await utimes(join(side.root, path), when, when);
    }
    await side.scanner.scan();
  }
}

describe('apply: record-only versions, committed in batches', () => {
  it('kill -9 while merging the records of the same files made apart: each batch is recorded whole or not at all, and the files are untouched', { timeout: 180_000 }, async (t) => {
    const base = await tempDir(t, 'mesh-record-only-');
    const folder = join(base, 'b');
    for (let i = 0; i < FILES; i++) await put(folder, `d${Math.floor(i / FILES_PER_FOLDER)}/f${i}.txt`, `file ${i}\n`.repeat(1 + (i % 7)));
    // The peer's copy: same bytes, times and modes, recorded apart (its own version of each).
    assert.equal(spawnSync('cp', ['-a', folder, join(base, 'a')]).status, 0);
    const peerFolder = await initFolder(join(base, 'a'));
    const local = await openLocalFolder(folder);
    await local.scanner.scan();
    await local.close();
    const location = join(folder, '.mesh', 'index');
    const total = (await allRecords(location)).length;
    assert.ok(total > FILES, 'files and folders are recorded');

    const abort = new AbortController();
    t.after(() => abort.abort()); // Never leave a child running, whatever fails.
    let previous = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const outcome = await runChild(folder, peerFolder, Math.random() * MAX_RUN_MS, abort.signal);
      const records = await allRecords(location);
      assert.equal(records.length, total, `round ${round}: records appeared or vanished`);
      const merged = records.filter((record) => record.version.length === 2).length;
      for (const record of records) assert.ok(record.version.length <= 2, `round ${round}: ${record.path} has ${record.version.length} counters`);
      t.diagnostic(`round ${round} (${outcome}): ${merged} of ${total} merged`);
      // Batches are cut from what is left to merge, RECORD_ONLY_BATCH each: none is torn.
      assert.ok(merged === total || (merged - previous) % RECORD_ONLY_BATCH === 0, `round ${round}: ${merged - previous} more merged, not whole batches`);
      assert.ok(merged >= previous, `round ${round}: merged versions were lost`);
      previous = merged;
      if (outcome === 'done') break;
    }

    // The next start goes on from there and merges the rest; the index is whole.
    assert.equal(await runChild(folder, peerFolder, undefined, abort.signal), 'done');
    const records = await allRecords(location);
    assert.deepEqual(
      records.filter((record) => record.version.length !== 2).map((record) => record.path),
      [],
    );
    const raw = await readRaw(location);
    for (const [path, sequence] of raw.records) assert.equal(raw.index.get(sequence), path, `${path} (${sequence}) has no index entry`);
    assert.equal(raw.index.size, raw.records.size);
    for (let i = 0; i < FILES; i += 97) {
      const path = `d${Math.floor(i / FILES_PER_FOLDER)}/f${i}.txt`;
      assert.equal(await readFile(join(folder, path), 'utf8'), `file ${i}\n`.repeat(1 + (i % 7)));
    }
  });

  it('a file edited after its scan is left out of the batch (changed locally); the rest of the batch is merged', async (t) => {
    const { a, b } = await pair(t);
    const paths = Array.from({ length: 20 }, (_, i) => `f${i}.txt`);
    await sameFilesMadeApart([a, b], paths);
    await writeFile(join(b.root, 'f7.txt'), 'edited on B after its scan');
    const report = await b.applier.apply(await announced(a));
    assert.equal(outcomeOf(report, 'f7.txt'), 'skipped changed-locally');
    for (const path of paths.filter((p) => p !== 'f7.txt')) {
      assert.equal(outcomeOf(report, path), 'applied merged', path);
      assert.equal((await recordOf(b.store, path)).version.length, 2, `${path} holds both versions`);
    }
    assert.equal((await recordOf(b.store, 'f7.txt')).version.length, 1, 'the edited file keeps its own version');
    assert.equal(await readFile(join(b.root, 'f7.txt'), 'utf8'), 'edited on B after its scan');
    assert.equal(a.served.length, 0, 'nothing transferred');
  });

  it('a batch whose commit fails records none of its paths, reports each, and is merged when applied again', async (t) => {
    const { a, b } = await pair(t);
    const paths = Array.from({ length: 12 }, (_, i) => `docs/f${i}.txt`);
    await sameFilesMadeApart([a, b], paths);
    const commit = b.store.commit.bind(b.store);
    b.store.commit = () => Promise.reject(new Error('disk full'));
    const failed = await b.applier.apply(await announced(a));
    b.store.commit = commit;
    for (const path of paths) {
      assert.equal(outcomeOf(failed, path), 'failed Error', path);
      assert.equal((await recordOf(b.store, path)).version.length, 1, `${path} is not recorded`);
    }
    const again = await b.applier.apply(await announced(a));
    assert.deepEqual(again.failed, []);
    for (const path of paths) assert.equal(outcomeOf(again, path), 'applied merged', path);
  });
});
