import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hashFile } from '../src/folder/hasher.js';
import { openLocalFolder } from '../src/folder/local-folder.js';
import { pseudoRandomBytes, tempDir } from './helpers.js';
import { readRaw } from './store-helpers.js';

const CHILD = fileURLToPath(new URL('fixtures/scan-folder.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const ROUNDS = 4;
const DIRECTORIES = 20;
const FILES_PER_DIRECTORY = 100;
/** A first scan is killed at a random moment within this long after it starts (a full scan here: ~300 ms, less on a faster day). */
const FIRST_KILL_WINDOW_MS = 300;
/** Later kills fall within this share of the last scan seen to finish: a faster machine gets a shorter window. */
const KILL_WINDOW_SHARE = 0.9;

/**
 * Runs a full scan in a child and SIGKILLs it at a random moment within `windowMs` of its start
 * (it may also finish first): whether it was killed, and how long the scan took when it was not.
 */
async function scanAndKill(root: string, windowMs: number): Promise<{ killed: boolean; scanMs?: number }> {
  const child = spawn(process.execPath, ['--import', TSX, CHILD, root], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  let timer: NodeJS.Timeout | undefined;
  let started = 0;
  let scanMs: number | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'scanning') {
      started = performance.now();
      timer = setTimeout(() => child.kill('SIGKILL'), Math.random() * windowMs);
    }
    if (line === 'scanned') scanMs = performance.now() - started;
  }
  const [, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return signal === 'SIGKILL' ? { killed: true } : { killed: false, scanMs };
}

/** Every file under root (not .mesh), as folder-relative paths. */
async function filesOnDisk(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .filter((path) => !path.startsWith('.mesh/') && !path.startsWith('.mesh'));
}

it('kill -9 during scans: the index stays consistent and a rescan matches the disk exactly', { timeout: 120_000 }, async (t) => {
  const root = await tempDir(t, 'mesh-scan-crash-');
  for (let d = 0; d < DIRECTORIES; d++) {
    await mkdir(join(root, `dir ${d}`));
    for (let f = 0; f < FILES_PER_DIRECTORY; f++) await writeFile(join(root, `dir ${d}`, `file ${f}`), pseudoRandomBytes(1000 + f * 37, d * 1000 + f));
  }
  await writeFile(join(root, 'large'), pseudoRandomBytes(8 * 1024 * 1024, 42));
  const index = join(root, '.mesh', 'index');

  let killed = 0;
  let windowMs = FIRST_KILL_WINDOW_MS;
  for (let round = 1; round <= ROUNDS; round++) {
    const scan = await scanAndKill(root, windowMs);
    if (scan.killed) killed++;
    if (scan.scanMs !== undefined) windowMs = scan.scanMs * KILL_WINDOW_SHARE;
    // Whatever moment the kill hit, every record has its sequence entry and the reverse.
    const raw = await readRaw(index);
    for (const [path, sequence] of raw.records) assert.equal(raw.index.get(sequence), path, `round ${round}: ${path}`);
    for (const [sequence, path] of raw.index) assert.equal(raw.records.get(path), sequence, `round ${round}: sequence ${sequence}`);
    // Change the folder between rounds: edits, deletes and new files for the next scan to find.
    await writeFile(join(root, `dir ${round}`, 'file 1'), `edited in round ${round}`);
    await rm(join(root, `dir ${round}`, 'file 2'));
    await writeFile(join(root, `dir ${round}`, `new in round ${round}`), 'new');
  }

  // The kills must have hit scans in progress, or this test proves nothing.
  assert.ok(killed >= ROUNDS / 2, `only ${killed} of ${ROUNDS} scans were killed`);
  const folder = await openLocalFolder(root);
  t.after(() => folder.close());
  await folder.scanner.scan();
  const onDisk = await filesOnDisk(root);
  for (const path of onDisk) {
    const record = await folder.store.get(path);
    assert.ok(record !== undefined && !record.deleted, `${path} is on disk but not recorded`);
    const { contentHash } = await hashFile(join(root, path));
    assert.deepEqual(Buffer.from(record.contentHash), Buffer.from(contentHash), `${path}: recorded content differs`);
  }
  const live = new Set(onDisk);
  for await (const record of folder.store.records()) {
    if (record.type === 'file' && !record.deleted) assert.ok(live.has(record.path), `${record.path} recorded but not on disk`);
    if (record.deleted) assert.ok(!live.has(record.path), `${record.path} recorded as deleted but on disk`);
  }
});
