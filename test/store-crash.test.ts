import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openLevelStore } from '../src/store/level-store.js';
import { BATCH_SIZE, FRESH_PER_BATCH, freshPath, HOT_PATHS } from './fixtures/commit-batches.js';
import { tempDir } from './helpers.js';
import { readRaw } from './store-helpers.js';

const TSX = import.meta.resolve('tsx');
const CHILD = fileURLToPath(new URL('fixtures/commit-batches.ts', import.meta.url));
const ROUNDS = 5;
/** The child is killed this long (at random) after it has committed its first batch. */
const MAX_RUN_MS = 250;

interface Run {
  /** The last batch the child said was committed before it died. */
  lastReported: number;
}

/** Starts the committing child, lets it run a random while, then SIGKILLs it. */
async function runAndKill(location: string, signal: AbortSignal): Promise<Run> {
  // Its own cwd: the child must find tsx by the resolved URL, not by looking around it.
  const child = spawn(process.execPath, ['--import', TSX, CHILD, location], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.on('error', () => undefined); // The abort on a failed test surfaces as the test's own failure.
  const exited = once(child, 'exit');
  let lastReported = 0;
  let killTimer: NodeJS.Timeout | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    const [word, batch] = line.split(' ');
    if (word !== 'committed') continue;
    lastReported = Number(batch);
    killTimer ??= setTimeout(() => child.kill('SIGKILL'), Math.random() * MAX_RUN_MS);
  }
  clearTimeout(killTimer);
  const [code, killedBy] = (await exited) as [number | null, NodeJS.Signals | null];
  assert.equal(killedBy, 'SIGKILL', `the child ended on its own (code ${code}): ${stderr}`);
  return { lastReported };
}

it('after kill -9 at random moments, every commit is all or nothing and the sequence index matches the records', { timeout: 60_000 }, async (t) => {
  const location = join(await tempDir(t, 'mesh-crash-'), '.mesh', 'index');
  const abort = new AbortController();
  t.after(() => abort.abort()); // Never leave a child running, whatever fails.

  let previous = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const { lastReported } = await runAndKill(location, abort.signal);
    const { records, sizes, index } = await readRaw(location);

    // The sequence index and the records agree, both ways.
    for (const [path, sequence] of records) assert.equal(index.get(sequence), path, `round ${round}: ${path} (${sequence}) has no index entry`);
    for (const [sequence, path] of index) assert.equal(records.get(path), sequence, `round ${round}: entry ${sequence} names ${path}`);

    // Batches are all or nothing, and in order: the hot paths all carry the last one, and every
    // batch up to it is whole. What the child reported committed is there (at most one more is).
    const last = sizes.get(HOT_PATHS[0]) ?? 0;
    for (const hot of HOT_PATHS) assert.equal(sizes.get(hot) ?? 0, last, `round ${round}: ${hot} is from another batch`);
    assert.ok(last >= lastReported && last <= lastReported + 1, `round ${round}: last batch ${last}, child reported ${lastReported}`);
    assert.ok(last > previous, `round ${round}: no batch was committed`);
    for (let batch = 1; batch <= last; batch++) {
      for (let i = 0; i < FRESH_PER_BATCH; i++) assert.equal(sizes.get(freshPath(batch, i)), batch, `round ${round}: batch ${batch} is torn`);
    }
    assert.equal(records.size, HOT_PATHS.length * Math.min(last, 1) + FRESH_PER_BATCH * last, `round ${round}: stray records`);

    // The store reopens where the index ends: each batch took exactly BATCH_SIZE sequences.
    const store = await openLevelStore(location);
    const highest = Math.max(0, ...index.keys());
    assert.equal(store.lastSequence, highest);
    assert.equal(store.lastSequence, last * BATCH_SIZE);
    await store.close();
    previous = last;
  }
});
