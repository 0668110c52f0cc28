import { setImmediate as nextTurn } from 'node:timers/promises';

/** Longest stretch of scanning work between two turns of the event loop. */
export const EVENT_LOOP_SLICE_MS = 10;

/**
 * Lets timers and network I/O run during a long scan. Awaiting a promise that is already settled
 * (as most of the real file system's are, see nodeFolderFs) never yields to the event loop, so a
 * walk of 100,000 entries would otherwise hold it for seconds.
 */
export class EventLoopYielder {
  private sliceStart = performance.now();

  /** Yields to the event loop if the current slice is used up. */
  async yieldIfDue(): Promise<void> {
    if (performance.now() - this.sliceStart < EVENT_LOOP_SLICE_MS) return;
    await nextTurn();
    this.sliceStart = performance.now();
  }
}
