/** Quiet time after the last event before the touched paths are rescanned. */
export const DEFAULT_WATCH_DELAY_MS = 50;
/**
 * Longest a rescan waits while events keep coming (a long copy into the folder, say), unless the
 * quiet time set is longer still: then that.
 */
export const MAX_WATCH_DELAY_MS = 500;
