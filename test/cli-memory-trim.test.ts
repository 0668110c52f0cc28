// Memory a node freed goes back to the system: glibc keeps freed buffers that sit between live
// ones until malloc_trim, which `mesh join` calls when its RSS has grown; pages of LevelDB's mapped
// tables are paged out when the node is at rest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import {
  ACTIVE_CHECK_INTERVAL_MS,
  ACTIVE_FOR_MS,
  levelTablesIn,
  loadPageOut,
  MappedTableWatch,
  PAGE_OUT_GROWTH_BYTES,
  parseFileMappings,
  RESTING_CHECK_INTERVAL_MS,
} from '../src/cli/mapped-pages.js';
import { anonymousBytes, limitMallocArenas, loadMallocTrim, MemoryTrimmer } from '../src/cli/memory-trim.js';
import { isGlibcLinux, tempDir } from './helpers.js';

const MIB = 1024 * 1024;

/** 256 MiB in 64 KiB buffers (the size of a network read), all held at once, then every other one let go. */
function fragmentedHeap(): Buffer[] {
  const all: Buffer[] = [];
  for (let i = 0; i < 4096; i++) all.push(Buffer.alloc(64 * 1024, i));
  return all.filter((_, i) => i % 2 === 0);
}

// First, before other tests leave freed memory for the allocator to reuse.
test('on Linux, the trimmer watches the anonymous memory: it grows with buffers, and leaves out the file pages', (t) => {
  if (process.platform !== 'linux') {
    t.skip('RssAnon is Linux\'s');
    return;
  }
  const before = anonymousBytes();
  const held = Buffer.alloc(128 * MIB, 1);
  const after = anonymousBytes();
  assert.ok(after - before >= 96 * MIB, `the anonymous RSS grew by ${Math.round((after - before) / MIB)} MiB only`);
  // The binary's code and data are in the RSS, not in its anonymous part.
  assert.ok(process.memoryUsage.rss() - after > 4 * MIB);
  assert.equal(held[held.length - 1], 1);
});

test('on glibc Linux, a trim gives back freed buffers that lie between live ones', async (t) => {
  const trim = await loadMallocTrim();
  if (!isGlibcLinux()) {
    t.skip('malloc_trim is glibc-only');
    return;
  }
  assert.ok(trim !== undefined, 'glibc Linux, yet malloc_trim could not be loaded');
  // Half the heap is then free, in holes between live buffers: glibc cannot give it back by
  // shrinking the heap from its top.
  const kept = fragmentedHeap();
  // V8 collects the others: their memory is freed with their wrappers.
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const before = process.memoryUsage.rss();
  trim();
  const after = process.memoryUsage.rss();
  assert.ok(before - after > 64 * MIB, `the RSS went from ${Math.round(before / MIB)} to ${Math.round(after / MIB)} MiB only`);
  assert.equal(kept.length, 2048);
});

test('the trimmer trims once the RSS has grown enough, or a little and then settled, counting from its lowest point', () => {
  let rss = 100 * MIB;
  let trims = 0;
  const trimmer = new MemoryTrimmer(
    () => {
      trims++;
      rss -= 20 * MIB; // what the trim gave back
      return true;
    },
    () => rss,
    8 * MIB,
  );
  rss += 7 * MIB;
  trimmer.check();
  assert.equal(trims, 0, 'below the growth: nothing');
  rss = 90 * MIB; // fell below the start: the new baseline
  trimmer.check();
  rss = 99 * MIB;
  trimmer.check();
  assert.equal(trims, 1, '9 MiB above the lowest point: a trim');
  assert.equal(trimmer.trims, 1);
  trimmer.check();
  assert.equal(trims, 1, 'right after a trim, the baseline is what it left');

  // Smaller growth is given back once the RSS stops changing (the node went quiet).
  rss += 3 * MIB;
  trimmer.check();
  assert.equal(trims, 1, 'still growing: not yet');
  rss += MIB / 2;
  trimmer.check();
  assert.equal(trims, 2, '3.5 MiB above the baseline and settled: a trim');
});

test('the trimmer does its at-rest work once each time the RSS settles after it moved', () => {
  let rss = 100 * MIB;
  let rests = 0;
  const trimmer = new MemoryTrimmer(() => true, () => rss, 8 * MIB, () => rests++);
  rss += 4 * MIB;
  trimmer.check();
  assert.equal(rests, 0, 'moving: not at rest');
  trimmer.check();
  assert.equal(rests, 1, 'settled: at rest');
  trimmer.check();
  trimmer.check();
  assert.equal(rests, 1, 'still at rest: nothing more to do');
  rss += 2 * MIB;
  trimmer.check();
  trimmer.check();
  assert.equal(rests, 2, 'moved and settled again');
});

test("the table watch pages out once the file-backed RSS grew enough, and looks often only while it moves", () => {
  let fileRss = 60 * MIB;
  let clock = 0;
  let pageOuts = 0;
  const watch = new MappedTableWatch(
    () => {
      pageOuts++;
      fileRss = 50 * MIB; // what the page-out gave back
    },
    () => fileRss,
    () => clock,
  );
  assert.equal(watch.check(), RESTING_CHECK_INTERVAL_MS, 'nothing moved: at rest');
  fileRss = 55 * MIB; // fell below the start: the new baseline
  assert.equal(watch.check(), ACTIVE_CHECK_INTERVAL_MS, 'it moved: looked at often');
  fileRss = 55 * MIB + PAGE_OUT_GROWTH_BYTES - 1;
  watch.check();
  assert.equal(pageOuts, 0, 'below the growth (from the lowest point): nothing');
  fileRss += 1;
  watch.check();
  assert.equal(pageOuts, 1, 'grown enough: paged out');
  assert.equal(watch.pageOuts, 1);
  watch.check();
  assert.equal(pageOuts, 1, 'right after a page-out, the baseline is what it left');
  clock += ACTIVE_FOR_MS;
  assert.equal(watch.check(), RESTING_CHECK_INTERVAL_MS, 'still for a while: back to resting looks');
});

test('on glibc Linux, the malloc arenas can be capped (mallopt)', async (t) => {
  if (!isGlibcLinux()) {
    t.skip('mallopt is glibc-only');
    return;
  }
  assert.equal(await limitMallocArenas(), true);
});

test('/proc/self/maps lines give file mappings; LevelDB tables are picked inside the state folder only', () => {
  const maps = [
    '00400000-00b6f000 r--p 00000000 fe:00 260689                             /usr/bin/node',
    '7f1c2a000000-7f1c2a200000 r--s 00000000 fe:00 1234                       /home/me/Sync/.mesh/index/000012.ldb',
    '7f1c2b000000-7f1c2b100000 r--s 00000000 fe:00 1235                       /home/me/Sync/.mesh/index/000013.ldb (deleted)',
    '7f1c2c000000-7f1c2c100000 r--s 00000000 fe:00 1236                       /home/me/Sync/photos/x.ldb',
    '7f1c2d000000-7f1c2d021000 rw-p 00000000 00:00 0 ',
    '7ffd5a000000-7ffd5a021000 rw-p 00000000 00:00 0                          [stack]',
  ].join('\n');
  const mappings = parseFileMappings(maps);
  assert.deepEqual(
    mappings.map((m) => m.path),
    ['/usr/bin/node', '/home/me/Sync/.mesh/index/000012.ldb', '/home/me/Sync/.mesh/index/000013.ldb (deleted)', '/home/me/Sync/photos/x.ldb'],
  );
  assert.equal(mappings[1].end - mappings[1].start, 0x200000n);
  const tables = levelTablesIn('/home/me/Sync/.mesh');
  assert.deepEqual(
    mappings.filter((m) => tables(m.path)).map((m) => m.path),
    ['/home/me/Sync/.mesh/index/000012.ldb'],
  );
});

/** Resident bytes of the mappings of files `wanted` picks, from /proc/self/smaps. */
function residentOf(wanted: (path: string) => boolean): number {
  let resident = 0;
  let counting = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header !== null) counting = wanted(header[1]);
    else if (counting && line.startsWith('Rss:')) resident += Number(/(\d+) kB/.exec(line)![1]) * 1024;
  }
  return resident;
}

test("on Linux, LevelDB's mapped tables are paged out at rest, and the store still reads every record", async (t) => {
  const pageOut = await loadPageOut();
  if (process.platform !== 'linux' || pageOut === undefined) {
    t.skip('madvise through koffi is Linux-only');
    return;
  }
  const dir = await tempDir(t);
  const location = path.join(dir, 'index');
  // 1 KiB of hex digits that do not repeat: LevelDB's compression cannot shrink them much.
  const value = (i: number) => Array.from({ length: 16 }, (_, j) => createHash('sha256').update(`${i}:${j}`).digest('hex')).join('');
  let db = new Level<string, string>(location);
  const RECORDS = 16 * 1024;
  for (let i = 0; i < RECORDS; i += 1024) {
    await db.batch(Array.from({ length: 1024 }, (_, j) => ({ type: 'put' as const, key: `k${i + j}`, value: value(i + j) })));
  }
  await db.close();
  // Reopened, the log is written into a table, which LevelDB maps when it reads it.
  db = new Level<string, string>(location);
  await db.open();
  t.after(() => db.close());
  let read = 0;
  for await (const [key, stored] of db.iterator()) {
    assert.equal(stored, value(Number(key.slice(1))));
    read++;
  }
  assert.equal(read, RECORDS);
  const tables = levelTablesIn(await realpath(dir));
  const before = residentOf(tables);
  if (before < 4 * MIB) {
    t.skip(`LevelDB kept only ${before} bytes of its tables mapped here (it maps them only on 64-bit systems)`);
    return;
  }
  assert.ok(pageOut(tables) >= before, 'every mapped table was advised');
  const after = residentOf(tables);
  assert.ok(after < before / 4, `resident table pages ${Math.round(before / 1024)} KiB before, ${Math.round(after / 1024)} KiB after`);
  // Paged-out pages are read again from the files when needed.
  for (const i of [0, RECORDS / 2, RECORDS - 1]) assert.equal(await db.get(`k${i}`), value(i));
});
