// The redialer of lost peers: dials soon, then ever less often up to a cap, stops once the peer is
// back (whoever dialled) or the window is over, and leaves no timer behind after stop().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redialer } from '../src/node/redialer.js';
import { sleep } from './join-helpers.js';

function harness(windowMs = 10_000) {
  const dials: number[] = [];
  const connected = new Set<string>();
  let connectOnDial = Infinity;
  const start = Date.now();
  const redialer = new Redialer({
    dial: async (peer) => {
      dials.push(Date.now() - start);
      if (dials.length >= connectOnDial) connected.add(peer);
      else throw new Error('unreachable');
    },
    isConnected: (peer) => connected.has(peer),
    maxDelayMs: 80,
    windowMs,
  });
  return { dials, connected, redialer, connectOn: (n: number) => (connectOnDial = n) };
}

test('a lost peer is dialled after the first delay, then with a doubling delay capped at the maximum, until it connects', async () => {
  const h = harness();
  h.connectOn(6);
  h.redialer.lost('p', 10);
  await sleep(600);
  assert.equal(h.dials.length, 6, `dials at ${h.dials.join(', ')} ms`);
  const gaps = h.dials.slice(1).map((t, i) => t - h.dials[i]);
  // Timers fire late, never early; a busy machine may add some tens of ms.
  const expected = [20, 40, 80, 80, 80];
  assert.ok(gaps.every((g, i) => g >= expected[i] - 2 && g < expected[i] + 60), `gaps ${gaps.join(', ')} ms, expected about ${expected.join(', ')}`);
});

test('a peer that connects by itself is not dialled again; stop() cancels every redial', async () => {
  const h = harness();
  h.redialer.lost('back', 30);
  h.redialer.lost('gone', 30);
  h.redialer.found('back');
  h.redialer.stop();
  await sleep(150);
  assert.deepEqual(h.dials, []);
});

test('a peer still unreachable when the window is over is left to mDNS and the static backoff', async () => {
  const h = harness(150);
  h.redialer.lost('p', 10);
  await sleep(500);
  const count = h.dials.length;
  assert.ok(count >= 2 && count <= 5, `dials at ${h.dials.join(', ')} ms`);
  await sleep(200);
  assert.equal(h.dials.length, count, 'dialled after the window');
});
