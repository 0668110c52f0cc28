import { release } from 'node:os';
import { loadLibc } from '../os/libc.js';

/**
 * syncfs(2): writes every dirty file of one file system to the disk in one call, where an fsync
 * writes one file. A batch of many small pulled files is then made durable by one flush instead
 * of an fsync each (each fsync waits on the disk by itself, and on a journalled ext4 commits the
 * journal). It flushes what other programs wrote to that file system too, so it is for batches
 * only. Linux only, and only from 5.8, the first kernel where it reports write-back errors (before,
 * it returned 0 whatever happened: an error would go unseen).
 */

/** Flushes the file system holding `fd`: true once done, false if the call failed or could not be made. */
export type SyncFs = (fd: number) => Promise<boolean>;

/** The first Linux release whose syncfs reports write-back errors. */
export const SYNCFS_ERRORS_SINCE: readonly [number, number] = [5, 8];

/** Whether a Linux release string (os.release()) is SYNCFS_ERRORS_SINCE or later. */
export function syncFsReportsErrors(kernelRelease: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (match === null) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  const [sinceMajor, sinceMinor] = SYNCFS_ERRORS_SINCE;
  return major > sinceMajor || (major === sinceMajor && minor >= sinceMinor);
}

let loaded: Promise<SyncFs | undefined> | undefined;

/** syncfs through koffi (run off the main thread), or undefined where it cannot be had or trusted. Loaded once. */
export function loadSyncFs(): Promise<SyncFs | undefined> {
  loaded ??= (async () => {
    if (process.platform !== 'linux' || !syncFsReportsErrors(release())) return undefined;
    const libc = await loadLibc();
    if (libc === undefined) return undefined;
    try {
      const syncfs = libc.func('int syncfs(int fd)') as unknown as { async(fd: number, done: (error: unknown, result: number) => void): void };
      return (fd) =>
        new Promise<boolean>((resolve) => {
          syncfs.async(fd, (error, result) => resolve(error === null || error === undefined ? result === 0 : false));
        });
    } catch {
      return undefined;
    }
  })();
  return loaded;
}
