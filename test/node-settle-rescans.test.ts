import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { SettleRescans } from '../src/node/settle-rescans.js';

const DELAY_MS = 40;
const MAX_DELAY_MS = 150;

/** A SettleRescans whose scans are recorded with the time they started. */
function recorded(): { settle: SettleRescans; scans: { paths: string[]; at: number }[]; started: number } {
  const scans: { paths: string[]; at: number }[] = [];
  const started = Date.now();
  const settle = new SettleRescans({
    scan: async (paths) => {
      scans.push({ paths: [...paths].sort(), at: Date.now() - started });
    },
    onError: (error) => assert.fail(String(error)),
    delayMs: DELAY_MS,
    maxDelayMs: MAX_DELAY_MS,
  });
  return { settle, scans, started };
}

describe('settle rescans (the second look at what the applier wrote)', () => {
  it('rescans the watcher\'s paths now unless an apply is writing them; those are rescanned once it settles', async () => {
    const { settle, scans } = recorded();
    const apply = settle.begin(['docs/a.txt', 'docs']);
    assert.deepEqual(settle.watched(['docs', 'docs/a.txt', 'notes.txt']), ['notes.txt']);
    apply.end();
    settle.wrote(['docs/a.txt']);
    // Written a moment ago and waiting for the settle rescan: left to it too.
    assert.deepEqual(settle.watched(['docs/a.txt']), []);
    await sleep(DELAY_MS * 3);
    assert.deepEqual(scans.map((s) => s.paths), [['docs', 'docs/a.txt']]);
    // Once rescanned, the path's events are the watcher's again.
    assert.deepEqual(settle.watched(['docs/a.txt']), ['docs/a.txt']);
    await settle.stop();
  });

  it('keeps a path deferred while any apply that holds it goes on', async () => {
    const { settle, scans } = recorded();
    const first = settle.begin(['x.txt']);
    const second = settle.begin(['x.txt']);
    first.end();
    first.end(); // a second end of the same apply changes nothing
    assert.deepEqual(settle.watched(['x.txt']), []);
    second.end();
    await sleep(DELAY_MS * 3);
    assert.deepEqual(scans.map((s) => s.paths), [['x.txt']]);
    assert.deepEqual(settle.watched(['x.txt']), ['x.txt']);
    await settle.stop();
  });

  it('waits for the applies to pause, but no longer than its longest delay after the first path', async () => {
    const { settle, scans, started } = recorded();
    const until = started + MAX_DELAY_MS * 4;
    let n = 0;
    // Applies every 10 ms, each a new path: never a pause of DELAY_MS.
    while (Date.now() < until) {
      settle.wrote([`f${n++}`]);
      await sleep(10);
    }
    const appliesEnded = Date.now() - started;
    assert.ok(scans.length >= 1 && scans[0].at < appliesEnded, `a rescan came while the applies went on (first at ${scans[0]?.at} ms, applies until ${appliesEnded} ms)`);
    assert.ok(scans[0].paths.length > 1, 'the paths waiting were rescanned together');
    await sleep(DELAY_MS * 3);
    assert.equal(new Set(scans.flatMap((s) => s.paths)).size, n, 'every path was rescanned');
    await settle.stop();
  });

  it('after stop, rescans nothing more and has waited for the rescan in progress', async () => {
    let finished = false;
    let calls = 0;
    const settle = new SettleRescans({
      scan: async () => {
        calls++;
        await sleep(50);
        finished = true;
      },
      onError: (error) => assert.fail(String(error)),
      delayMs: 10,
    });
    settle.wrote(['a']);
    await sleep(30);
    settle.wrote(['b']);
    await settle.stop();
    assert.equal(finished, true);
    await sleep(40);
    assert.equal(calls, 1);
  });
});
