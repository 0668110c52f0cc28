import { setImmediate as nextTurn } from 'node:timers/promises';

/** Longest stretch of scanning work between two turns of the event loop. */
export const EVENT_LOOP_SLICE_MS = 10;

/**
 * Lets timers and network I/O run during a long scan. Awaiting a promise that is already settled
 * (as most of the real file system's are, see nodeFolderFs) never yields to the event loop, so a
 * walk of 100,000 entries would otherwise hold it for seconds.
 *
 * One yielder serves all of a scan's concurrent workers: the slice is theirs together, and when
 * it is used up they all wait for the same turn. (A turn per caller gave each of the 16 hash
 * workers a fresh slice on waking: 160 ms of hashing between two turns, and a store read or an
 * index batch waited that long.)
 */
export class EventLoopYielder {
  private sliceStart: number;
  private turn: Promise<void> | undefined;

  /** `now`: milliseconds on a monotonic clock (a test's own clock). */
  constructor(private readonly now: () => number = () => performance.now()) {
    this.sliceStart = now();
  }

  /** Yields to the event loop if the current slice is used up. */
  async yieldIfDue(): Promise<void> {
    if (this.turn === undefined && this.now() - this.sliceStart < EVENT_LOOP_SLICE_MS) return;
    this.turn ??= nextTurn().then(() => {
      this.turn = undefined;
      this.sliceStart = this.now();
    });
    await this.turn;
  }
}
