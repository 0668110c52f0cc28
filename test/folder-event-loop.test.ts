import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { EVENT_LOOP_SLICE_MS, EventLoopYielder } from '../src/folder/event-loop.js';
import { HASH_CONCURRENCY } from '../src/folder/scan-run.js';

describe('event loop yielder', () => {
  it("lets the event loop turn after about one slice of all workers' work, not one slice each", async () => {
    // A clock that moves 1 ms per piece of work: the slice is EVENT_LOOP_SLICE_MS pieces.
    let clock = 0;
    const yielder = new EventLoopYielder(() => clock);
    let running = true;
    const worker = async () => {
      while (running) {
        clock++;
        await yielder.yieldIfDue();
      }
    };
    const workers = Array.from({ length: HASH_CONCURRENCY }, worker);
    // What waits for a turn (a store read, an index batch) sees this much work done before it runs.
    const waits: number[] = [];
    for (let k = 0; k < 20; k++) {
      const before = clock;
      await nextTurn();
      waits.push(clock - before);
    }
    running = false;
    await Promise.all(workers);
    assert.ok(Math.max(...waits) > 0, 'the workers must have worked');
    // At most the slice and, past it, up to two pieces by each worker: those already on their way.
    assert.ok(Math.max(...waits) <= EVENT_LOOP_SLICE_MS + 2 * HASH_CONCURRENCY, `waited through ${Math.max(...waits)} ms of work (${waits.join(', ')})`);
  });
});
