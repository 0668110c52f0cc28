// When file data flows in bulk (the node then lets V8's heap grow more between collections): a
// trickle is never a flow, a burst starts one at once, a steady flow is not cut by the windows,
// and only a quiet spell ends it.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { BulkFlow, meterAll } from '../src/node/bulk-flow.js';

const WINDOW_MS = 50;
const BYTES_PER_WINDOW = 1000;
const QUIET_WINDOWS = 3;

function flowWithLog(): { flow: BulkFlow; changes: { flowing: boolean; at: number }[] } {
  const changes: { flowing: boolean; at: number }[] = [];
  const flow = new BulkFlow({
    onChange: (flowing) => changes.push({ flowing, at: Date.now() }),
    windowMs: WINDOW_MS,
    bytesPerWindow: BYTES_PER_WINDOW,
    quietWindows: QUIET_WINDOWS,
  });
  return { flow, changes };
}

test('a trickle below the rate is never a bulk flow', async (t) => {
  const { flow, changes } = flowWithLog();
  t.after(() => flow.stop());
  // 100 bytes every 10 ms: about 500 per window, half the rate.
  for (let i = 0; i < 30; i++) {
    flow.received('peer', 100);
    await sleep(10);
  }
  assert.deepEqual(changes, []);
  assert.equal(flow.flowing, false);
});

test('a burst starts a flow at once, a steady flow keeps it, and a quiet spell ends it', async (t) => {
  const { flow, changes } = flowWithLog();
  t.after(() => flow.stop());
  flow.sent('peer', 2 * BYTES_PER_WINDOW);
  assert.deepEqual(
    changes.map((c) => c.flowing),
    [true],
    'the burst starts it without waiting for a window to end',
  );
  // Well above the rate for eight windows: no end in between.
  const until = Date.now() + 8 * WINDOW_MS;
  while (Date.now() < until) {
    flow.received('peer', BYTES_PER_WINDOW);
    await sleep(5);
  }
  const lastByteAt = Date.now();
  assert.deepEqual(
    changes.map((c) => c.flowing),
    [true],
    'a steady flow is one flow',
  );
  const deadline = Date.now() + 2000;
  while (changes.length < 2 && Date.now() < deadline) await sleep(10);
  assert.deepEqual(
    changes.map((c) => c.flowing),
    [true, false],
  );
  assert.ok(changes[1].at - lastByteAt >= (QUIET_WINDOWS - 1) * WINDOW_MS, 'it ends only after the quiet windows');
  assert.equal(flow.flowing, false);

  // And a later burst is a new flow.
  flow.received('peer', BYTES_PER_WINDOW);
  assert.deepEqual(
    changes.map((c) => c.flowing),
    [true, false, true],
  );
});

test('stop() ends a flow in progress once, and is quiet otherwise', () => {
  const { flow, changes } = flowWithLog();
  flow.stop();
  assert.equal(changes.length, 0, 'no flow, nothing to end');
  flow.received('peer', BYTES_PER_WINDOW);
  flow.stop();
  flow.stop();
  assert.deepEqual(
    changes.map((c) => c.flowing),
    [true, false],
  );
});

test('meterAll reports every byte to each meter', () => {
  const seen: string[] = [];
  const meter = (name: string) => ({
    received: (peer: string, bytes: number) => {
      seen.push(`${name} in ${peer} ${bytes}`);
    },
    sent: (peer: string, bytes: number) => {
      seen.push(`${name} out ${peer} ${bytes}`);
    },
  });
  const both = meterAll(meter('a'), meter('b'));
  both.received('p', 3);
  both.sent('q', 4);
  assert.deepEqual(seen, ['a in p 3', 'b in p 3', 'a out q 4', 'b out q 4']);
});
