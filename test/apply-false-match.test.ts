// A pull whose first attempt falsely matched a block (its truncated strong hashes agreed by chance,
// about once in a thousand large transfers) fails the whole-file check and is tried again with
// full hashes, against what the failed attempt wrote: the new data it already received is not
// sent a second time.
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertConverged, pair, servedSince, sync } from './apply-helpers.js';
import { put } from './folder-helpers.js';
import { pseudoRandomBytes } from './helpers.js';

const MiB = 1024 * 1024;

describe('apply: a false block match', () => {
  it('is caught and retried against the failed attempt, which sends about a block, not the new data again', async (t) => {
    const { a, b } = await pair(t);
    await put(a.root, 'big.bin', pseudoRandomBytes(4 * MiB, 1));
    await sync(a, b);
    const appended = pseudoRandomBytes(2 * MiB, 2);
    await appendFile(join(a.root, 'big.bin'), appended);
    // Inside the appended data, which the old version (B's basis) does not hold.
    a.falseMatchAt = 5 * MiB + 1234;
    const since = a.served.length;

    const report = await sync(a, b);
    assert.deepEqual(report.failed, []);
    const [truncated, full] = a.served.slice(since);
    assert.deepEqual([truncated.attempt, full?.attempt], ['truncated', 'full']);
    assert.ok(truncated.literalBytes >= appended.length, `the failed attempt sent ${truncated.literalBytes} literal bytes`);
    assert.ok(full.literalBytes <= 64 * 1024, `the retry sent ${full.literalBytes} literal bytes (the appended data is ${appended.length})`);
    assert.equal(servedSince(a, since).deltas, 2);
    // What the pull reports received counts both attempts.
    const pull = report.applied.find((o) => o.path === 'big.bin')?.pull;
    assert.deepEqual(pull?.attempts, ['truncated', 'full']);
    assert.equal(pull?.literalBytes, truncated.literalBytes + full.literalBytes);
    await assertConverged(a, b);
  });
});
