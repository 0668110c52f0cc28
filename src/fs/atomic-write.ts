import { randomBytes } from 'node:crypto';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Prefix of every temp file mesh writes; the scanner never records such names. */
export const TEMP_PREFIX = '.mesh-tmp.';

export function tempPathFor(target: string): string {
  return join(dirname(target), `${TEMP_PREFIX}${basename(target)}.${randomBytes(4).toString('hex')}`);
}

/** fsync a directory so a rename inside it survives a crash. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `chunks` to `target` so that a crash or error at any moment leaves either the old file or
 * the complete new one under the real name: write a temp file beside it, fsync, rename, fsync the
 * directory. If `chunks` throws (a failed verification, say), the temp file is removed and the
 * target is untouched. `exclusive` fails instead of replacing an existing target.
 */
export async function writeFileAtomic(
  target: string,
  chunks: AsyncIterable<Uint8Array>,
  options: { exclusive?: boolean; mode?: number } = {},
): Promise<void> {
  const temp = tempPathFor(target);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  let renamed = false;
  try {
    // Keep one write in flight while the next chunk is produced.
    let inFlight: Promise<unknown> = Promise.resolve();
    for await (const chunk of chunks) {
      await inFlight;
      inFlight = handle.write(chunk);
    }
    await inFlight;
    await handle.sync();
    await handle.close();
    if (options.exclusive === true) {
      // link(2) fails if the target exists, so two writers cannot both win.
      await link(temp, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST') error.path = target;
        throw error;
      });
      await unlink(temp);
    } else {
      await rename(temp, target);
    }
    renamed = true;
    await syncDirectory(dirname(target));
  } finally {
    if (!renamed) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
    }
  }
}
