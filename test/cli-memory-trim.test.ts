// Memory a node freed goes back to the system: glibc keeps freed buffers that sit between live
// ones until malloc_trim, which `mesh join` calls when its RSS has grown.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadMallocTrim, MemoryTrimmer } from '../src/cli/memory-trim.js';

const MIB = 1024 * 1024;

/** 256 MiB in 64 KiB buffers (the size of a network read), all held at once, then every other one let go. */
function fragmentedHeap(): Buffer[] {
  const all: Buffer[] = [];
  for (let i = 0; i < 4096; i++) all.push(Buffer.alloc(64 * 1024, i));
  return all.filter((_, i) => i % 2 === 0);
}

test('on glibc Linux, a trim gives back freed buffers that lie between live ones', async (t) => {
  const trim = await loadMallocTrim();
  const report = process.report.getReport() as { header: { glibcVersionRuntime?: string } };
  if (process.platform !== 'linux' || report.header.glibcVersionRuntime === undefined) {
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
