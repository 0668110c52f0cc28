import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { BatchReadAhead, type ReadBatch } from '../src/protocol/batch-read-ahead.js';
import type { Batch } from '../src/protocol/messages-codec.js';
import { ProtocolError } from '../src/protocol/errors.js';
import type { RemoteRecord } from '../src/protocol/wire-record.js';

/** A stream of batches the test delivers one by one; counts the reads begun. */
class FakeStream {
  private readonly arrived: (ReadBatch | Error | undefined)[] = [];
  private waiting: (() => void) | undefined;
  private sequence = 0;
  reads = 0;

  /** A batch of `count` records arrives (each message 100 bytes a record). */
  arrive(count: number): void {
    const records = Array.from({ length: count }, () => ({ sequence: ++this.sequence }) as RemoteRecord);
    const batch: Batch = { records, lastSequence: this.sequence, head: this.sequence };
    this.push({ batch, bytes: 100 * count });
  }

  end(): void {
    this.push(undefined);
  }

  fail(error: Error): void {
    this.push(error);
  }

  private push(item: ReadBatch | Error | undefined): void {
    this.arrived.push(item);
    this.waiting?.();
  }

  readonly read = async (): Promise<ReadBatch | undefined> => {
    this.reads++;
    while (this.arrived.length === 0) await new Promise<void>((resolve) => (this.waiting = resolve));
    const item = this.arrived.shift();
    if (item instanceof Error) throw item;
    return item;
  };

  readonly queued = (): boolean => this.arrived.length > 0;
}

const sizes = (group: Batch[] | undefined) => group?.map((batch) => batch.records.length);

describe('index batches read ahead', () => {
  it('reads the batches that come while a group is applied, and hands them on at once as the next group', async () => {
    const stream = new FakeStream();
    const groups = new BatchReadAhead(stream.read, stream.queued, { records: 1000, bytes: Infinity });
    stream.arrive(250);
    assert.deepEqual(sizes(await groups.next()), [250]);
    // The first group is being applied: three more batches come, one at a time.
    for (let k = 0; k < 3; k++) {
      stream.arrive(250);
      await turn();
    }
    assert.equal(stream.reads, 1 + 3 + 1, 'the first, the three, and a read waiting for the next');
    assert.deepEqual(sizes(await groups.next()), [250, 250, 250], 'all three, read meanwhile');
    assert.equal(stream.reads, 5, 'handed on without another read');
  });

  it('holds at most one group read ahead: reading stops while it is full', async () => {
    const stream = new FakeStream();
    const groups = new BatchReadAhead(stream.read, stream.queued, { records: 1000, bytes: Infinity });
    stream.arrive(1000);
    assert.deepEqual(sizes(await groups.next()), [1000]);
    for (let k = 0; k < 4; k++) stream.arrive(1000);
    await turn();
    await turn();
    assert.equal(stream.reads, 2, 'the first and the one read ahead, none past it: the rest wait in the stream');
    assert.deepEqual(sizes(await groups.next()), [1000]);
    assert.deepEqual(sizes(await groups.next()), [1000]);
  });

  it('cuts a group at the byte limit too', async () => {
    const stream = new FakeStream();
    const groups = new BatchReadAhead(stream.read, stream.queued, { records: 1000, bytes: 30_000 });
    for (let k = 0; k < 4; k++) stream.arrive(200); // 20,000 bytes each
    assert.deepEqual(sizes(await groups.next()), [200, 200]);
    assert.deepEqual(sizes(await groups.next()), [200, 200]);
  });

  it('does not wait for a batch still on its way once one has come: it starts the group after', async () => {
    const stream = new FakeStream();
    const groups = new BatchReadAhead(stream.read, stream.queued, { records: 1000, bytes: Infinity });
    stream.arrive(10);
    assert.deepEqual(sizes(await groups.next()), [10]);
    stream.arrive(20);
    await turn();
    assert.deepEqual(sizes(await groups.next()), [20], 'handed on while the next read still waits');
    const later = groups.next();
    stream.arrive(30);
    stream.arrive(40);
    assert.deepEqual(sizes(await later), [30, 40], 'a group waits for its first batch, then takes what came with it');
  });

  it('hands on what came before the stream ended, then ends', async () => {
    const stream = new FakeStream();
    const groups = new BatchReadAhead(stream.read, stream.queued, { records: 1000, bytes: Infinity });
    stream.arrive(5);
    stream.arrive(6);
    stream.end();
    assert.deepEqual(sizes(await groups.next()), [5, 6]);
    assert.equal(await groups.next(), undefined);
    assert.equal(await groups.next(), undefined);
  });

  it('throws what a read threw, read ahead or not', async () => {
    const stream = new FakeStream();
    const groups = new BatchReadAhead(stream.read, stream.queued, { records: 1000, bytes: Infinity });
    stream.arrive(5);
    assert.deepEqual(sizes(await groups.next()), [5]);
    stream.fail(new ProtocolError('batch goes back'));
    await turn();
    await assert.rejects(groups.next(), ProtocolError);
  });
});
