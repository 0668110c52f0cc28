import type { Batch } from './messages-codec.js';

/** A batch as read off the stream, with the size of its message. */
export interface ReadBatch {
  readonly batch: Batch;
  readonly bytes: number;
}

/** How much one group of batches (one apply) holds: another is joined while it holds fewer records and bytes. */
export interface GroupLimits {
  readonly records: number;
  readonly bytes: number;
}

/**
 * Hands a peer's index batches on in groups, one group per apply, reading and decoding the next
 * group while the last one is applied: the apply that follows starts at once instead of after
 * its batches are decoded (14-29 ms for 1,000 records here), and batches are read as they come.
 *
 * A group is a batch, then each one that came with it or while the previous group was applied,
 * while the group holds fewer than `limits` records and bytes. Reading stops while a group is
 * full, so what waits decoded is at most one group, and the stream's backpressure holds the rest.
 */
export class BatchReadAhead {
  private group: Batch[] = [];
  private records = 0;
  private bytes = 0;
  /** The read in flight: at most one, as the stream's messages come in order. */
  private reading: Promise<void> | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  /**
   * @param read the next batch off the stream, or undefined at its end
   * @param queued whether a whole message is waiting in the stream already (reading it will not wait)
   */
  constructor(
    private readonly read: () => Promise<ReadBatch | undefined>,
    private readonly queued: () => boolean,
    private readonly limits: GroupLimits,
  ) {}

  /**
   * The next group, or undefined once the stream has ended and every batch was handed on; throws
   * what a read threw. Waits only while no batch has come: a batch still on its way when one has
   * starts the group after. Reading goes on meanwhile, for the group after this one.
   */
  async next(): Promise<Batch[] | undefined> {
    for (;;) {
      this.readOn();
      if (this.failure !== undefined) throw this.failure.error;
      const complete = this.full() || this.ended || (this.reading !== undefined && !this.queued());
      if (this.group.length > 0 && complete) return this.take();
      if (this.group.length === 0 && this.ended) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private full(): boolean {
    return this.records >= this.limits.records || this.bytes >= this.limits.bytes;
  }

  private take(): Batch[] {
    const group = this.group;
    this.group = [];
    this.records = 0;
    this.bytes = 0;
    this.readOn();
    return group;
  }

  /** Starts the next read unless one is in flight, the group is full or the stream is done. */
  private readOn(): void {
    if (this.reading !== undefined || this.ended || this.failure !== undefined || this.full()) return;
    this.reading = this.read().then(
      (read) => {
        if (read === undefined) {
          this.ended = true;
          return;
        }
        this.group.push(read.batch);
        this.records += read.batch.records.length;
        this.bytes += read.bytes;
      },
      (error: unknown) => {
        this.failure = { error };
      },
    );
    void this.reading.then(() => {
      this.reading = undefined;
      this.readOn();
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    });
  }
}
