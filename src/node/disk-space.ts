import { statfs } from 'node:fs/promises';
import { formatBytes } from '../units.js';
import { InsufficientSpaceError } from './errors.js';

/**
 * Room a pull must leave free on the folder's disk, as Syncthing's minDiskFree does (1% by
 * default): the index, the temp file of the next pull and the machine's other programs need it.
 */
export const MIN_FREE_FRACTION = 0.01;
/** ... and never less than this, so that a small disk keeps room for the index's own writes. */
export const MIN_FREE_BYTES = 1024 * 1024;

/**
 * Throws InsufficientSpaceError unless writing `bytes` more under `absolute` leaves the reserve
 * free. Checked before a pull writes anything, so a full disk costs no half-written temp file.
 */
export async function ensureSpaceFor(absolute: string, bytes: number, path: string): Promise<void> {
  const disk = await statfs(absolute);
  const available = disk.bavail * disk.bsize;
  const reserve = Math.max(MIN_FREE_BYTES, Math.ceil(disk.blocks * disk.bsize * MIN_FREE_FRACTION));
  if (bytes + reserve <= available) return;
  throw new InsufficientSpaceError(
    `not enough space on the disk for ${path}: it needs ${formatBytes(bytes)}, ${formatBytes(Math.max(0, available - reserve))} is free ` +
      `(keeping ${formatBytes(reserve)} in reserve); free some space and it is pulled again`,
  );
}
