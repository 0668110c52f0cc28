// A node at rest lets go of the pages of Node's binary it no longer uses: they leave its RSS, and
// the process goes on running (a page used again is mapped back from the page cache). Pages the
// process wrote itself (the loader's relocations, writable data) are never dropped: that would
// lose them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { deflateSync, inflateSync } from 'node:zlib';
import {
  droppableMappings,
  loadProgramPagesRelease,
  ProgramPagesAtRest,
  RELEASE_INTERVAL_MS,
} from '../src/cli/program-pages.js';
import { fileBackedBytes } from '../src/cli/mapped-pages.js';
import { parseMappings } from '../src/os/proc-maps.js';
import { isGlibcLinux } from './helpers.js';


const SMAPS = `00400000-00b6f000 r--p 00000000 fe:00 260689                             /usr/bin/node
Size:               7612 kB
Rss:                6100 kB
Anonymous:             0 kB
00b72000-025fe000 r-xp 00772000 fe:00 260689                             /usr/bin/node
Size:              27184 kB
Anonymous:             0 kB
0563a000-0563e000 r--p 05239000 fe:00 260689                             /usr/bin/node
Size:                 16 kB
Anonymous:             8 kB
0563e000-0565d000 rw-p 0523d000 fe:00 260689                             /usr/bin/node
Size:                124 kB
Anonymous:            92 kB
0565d000-0568a000 rw-p 00000000 00:00 0
Anonymous:           180 kB
7fa175200000-7fa175273000 r-xp 00000000 fe:00 5326075                    /opt/lib/classic-level.node
Anonymous:             0 kB
7fa197580000-7fa197712000 r-xp 014c4000 fe:00 260689                     /usr/bin/node
Anonymous:             0 kB
7ffd1c5a1000-7ffd1c5c2000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           132 kB
`;

test('only read-only mappings of the program without pages of the process\'s own are chosen', () => {
  const mappings = parseMappings(SMAPS);
  assert.equal(mappings.length, 8);
  assert.deepEqual(mappings[2], { start: 0x563a000n, end: 0x563e000n, permissions: 'r--p', path: '/usr/bin/node', anonymousKiB: 8 });
  const chosen = droppableMappings(mappings, '/usr/bin/node').map((m) => m.start.toString(16));
  // Not the relocated read-only data (anonymous pages), the writable data, anonymous memory,
  // another file or the stack.
  assert.deepEqual(chosen, ['400000', 'b72000', '7fa197580000']);
});

const fileBackedMiB = (): number => fileBackedBytes() / (1024 * 1024);

test('on glibc Linux, the binary\'s pages leave the RSS and the process goes on running', async (t) => {
  const release = await loadProgramPagesRelease();
  if (!isGlibcLinux()) {
    t.skip('needs glibc Linux (madvise through koffi)');
    return;
  }
  assert.ok(release !== undefined, 'glibc Linux, yet madvise could not be loaded');
  const program = realpathSync(process.execPath);
  const mapped = droppableMappings(parseMappings(readFileSync('/proc/self/smaps', 'utf8')), program);
  assert.ok(mapped.length > 0, `no clean mapping of ${program}`);

  const before = fileBackedMiB();
  const advised = release();
  const after = fileBackedMiB();
  assert.ok(advised > 0);
  // A test process maps tens of MiB of the binary; what stays is what the two reads of /proc used.
  assert.ok(before - after > 5, `the file-backed RSS went from ${before.toFixed(1)} to ${after.toFixed(1)} MiB only`);

  // Code, builtins and data of the binary work again as before.
  const text = 'mesh '.repeat(10_000);
  assert.equal(inflateSync(deflateSync(text)).toString(), text);
  assert.equal(createHash('sha256').update('abc').digest('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(new Intl.NumberFormat('en-US').format(1234567.5), '1,234,567.5');
  assert.deepEqual(JSON.parse(JSON.stringify({ a: [1, 2, 3] })), { a: [1, 2, 3] });
  assert.ok(/^m(e)sh$/.test('mesh'));
});

test('released at a rest, and not again within the interval: the refill of a resting node does not start a release cycle', () => {
  let now = 1_000_000;
  const pages = new ProgramPagesAtRest(() => 0, () => now);
  pages.atRest();
  assert.equal(pages.releases, 1);
  // The rest that follows the refill.
  now += 4_000;
  pages.atRest();
  now += RELEASE_INTERVAL_MS - 4_000 - 1;
  pages.atRest();
  assert.equal(pages.releases, 1);
  // The rest after work, later.
  now += 1;
  pages.atRest();
  assert.equal(pages.releases, 2);
});
