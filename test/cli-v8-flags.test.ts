// `mesh join` sets V8 flags at run time: it tiers functions up later (src/cli/tier-up.ts) where V8
// takes that flag, and favours memory (src/cli/memory-mode.ts). On every Node it runs on, it must
// leave V8 alone where a flag does not exist: an unknown flag costs a line of noise on stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

/** Runs a module script under tsx; it must exit 0. */
function runScript(script: string): { stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return run;
}

function stderrOf(script: string): string {
  return runScript(script).stderr;
}

/** What a script that must say nothing on stderr printed on stdout, parsed as JSON. */
function quietResultOf<T>(script: string): T {
  const { stdout, stderr } = runScript(script);
  assert.equal(stderr, '');
  return JSON.parse(stdout) as T;
}

test('tiering up later says nothing on stderr, on the V8 of this Node and on any other', () => {
  const tierUp = (call: string) => stderrOf(`import { tierUpLater } from './src/cli/tier-up.ts'; ${call};`);
  assert.equal(tierUp('tierUpLater()'), '');
  assert.equal(tierUp("tierUpLater('12.4.254.21')"), '');
  assert.equal(tierUp("tierUpLater('13.6.233.17')"), '');
});

test('favouring memory and a bulk flow starting and ending say nothing on stderr on this Node', () => {
  const script = "import { bulkFlowing, favourMemory } from './src/cli/memory-mode.ts'; favourMemory(); bulkFlowing(true); bulkFlowing(false);";
  assert.equal(stderrOf(script), '');
  // The check can fail: a flag this V8 does not know is reported on stderr.
  assert.match(stderrOf("import { setFlagsFromString } from 'node:v8'; setFlagsFromString('--no-such-flag-in-any-v8');"), /no-such-flag/);
});

test("a node's young generation stops growing at its cap, except while file data flows in bulk", async (t) => {
  const { YOUNG_GENERATION_CAPPED } = await import('../src/cli/memory-mode.js');
  if (!YOUNG_GENERATION_CAPPED) {
    t.skip(`V8 ${process.versions.v8} sizes its young generation itself: no cap is set`);
    return;
  }
  // Objects that live a while (a window of them, replaced in turn) survive scavenges, and V8
  // doubles its young generation for them: to 32 MiB unless capped.
  const script = `
    import { bulkFlowing, favourMemory, YOUNG_GENERATION_CAP_BYTES } from './src/cli/memory-mode.ts';
    import { getHeapSpaceStatistics } from 'node:v8';
    const young = () => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size;
    const window = new Array(50_000);
    let i = 0;
    async function largestWhileChurning(ms, enough = Infinity) {
      let largest = 0;
      for (const end = performance.now() + ms; performance.now() < end && largest < enough; ) {
        for (let k = 0; k < 20_000; k++) window[i++ % window.length] = { a: i, b: [i, i + 1], c: 's' + i };
        largest = Math.max(largest, young());
        await new Promise((resolve) => setImmediate(resolve));
      }
      return largest;
    }
    favourMemory();
    const capped = await largestWhileChurning(1_500);
    bulkFlowing(true);
    const bulk = await largestWhileChurning(10_000, YOUNG_GENERATION_CAP_BYTES + 1);
    console.log(JSON.stringify({ cap: YOUNG_GENERATION_CAP_BYTES, capped, bulk }));
  `;
  const { cap, capped, bulk } = quietResultOf<{ cap: number; capped: number; bulk: number }>(script);
  assert.ok(capped <= cap, `young generation ${capped} bytes outside a bulk flow, cap ${cap}`);
  assert.ok(bulk > cap, `young generation only ${bulk} bytes during a bulk flow: the same churn should grow it past ${cap}`);
});

test('a node at rest collects the Buffers its work left behind, but not during a bulk flow, and shows no global gc', () => {
  // 32 MiB of Buffers let go after they lived through scavenges, as a node's data in flight does:
  // in the old generation, which only a full collection sweeps.
  const script = `
    import { bulkFlowing, collectAtRest, favourMemory, REST_BUFFERS_COLLECTED_BYTES } from './src/cli/memory-mode.ts';
    const buffers = () => process.memoryUsage().arrayBuffers;
    favourMemory();
    let held = Array.from({ length: 512 }, (_, i) => Buffer.alloc(64 * 1024, i));
    for (let round = 0; round < 20; round++) Array.from({ length: 100_000 }, (_, k) => ({ k }));
    held = undefined;
    bulkFlowing(true);
    const duringFlow = collectAtRest();
    const leftDuringFlow = buffers();
    bulkFlowing(false);
    const atRest = collectAtRest();
    const leftAtRest = buffers();
    const again = collectAtRest();
    console.log(JSON.stringify({ limit: REST_BUFFERS_COLLECTED_BYTES, duringFlow, leftDuringFlow, atRest, leftAtRest, again, gc: typeof globalThis.gc }));
  `;
  const result = quietResultOf<{ limit: number; duringFlow: boolean; leftDuringFlow: number; atRest: boolean; leftAtRest: number; again: boolean; gc: string }>(script);
  assert.equal(result.duringFlow, false, 'collected during a bulk flow');
  assert.ok(result.leftDuringFlow >= 32 * 1024 * 1024, `only ${result.leftDuringFlow} bytes of Buffers before the collection: the test needs garbage`);
  assert.equal(result.atRest, true, 'no collection at rest');
  assert.ok(result.leftAtRest < result.limit, `${result.leftAtRest} bytes of Buffers still held after the collection`);
  assert.equal(result.again, false, 'collected again with nothing to collect');
  assert.equal(result.gc, 'undefined', 'a global gc is visible');
});
