import { constants, lstatSync, openSync, type BigIntStats } from 'node:fs';
import { lstat, mkdir, open, readdir, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_PREFIX } from '../fs/atomic-write.js';
import { errorCode, isNotFound } from '../folder/folder-fs.js';
import { MAX_NAME_BYTES, baseName, childPath, parentPath, toAbsolute } from '../folder/paths.js';
import { entryTypeOf, isUnchanged, knownEntryOf, type KnownEntry } from '../folder/records.js';
import type { FileRecord } from '../store/types.js';
import { UnsafePathError } from './errors.js';

/**
 * What the applier needs of the disk, never following a symlink: the state at a path, whether it
 * still is what a record says, real parent folders, temp names, exclusive creation.
 */

/** Permissions of a folder created only to hold a pulled file (its own record sets them later). */
export const PARENT_DIRECTORY_MODE = 0o755;
/** Permissions of a temp file while it is written (the final mode is set before the rename). */
export const TEMP_FILE_MODE = 0o600;
/** Hex digits of the content hash in a temp file's name. */
export const TEMP_HASH_DIGITS = 8;
/** Suffix of a partial temp file kept aside as the basis of the next attempt. */
export const PARTIAL_BASIS_SUFFIX = '.basis';

const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/** Create a new file, failing if anything (a symlink included) is at the name. */
const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW;
/** Open what must be a regular file (a symlink fails with ELOOP). */
const OPEN_NO_FOLLOW = constants.O_RDONLY | O_NOFOLLOW | (constants.O_NONBLOCK ?? 0);

/** lstat, or undefined when nothing is there (or a parent is not a folder). */
export async function lstatOrUndefined(absolute: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(absolute, { bigint: true });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** lstatOrUndefined made in place: for the many small calls of a batch, where a thread-pool round trip costs more than the call. */
export function lstatSyncOrUndefined(absolute: string): BigIntStats | undefined {
  try {
    return lstatSync(absolute, { bigint: true });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Checks every parent of `path`, from the root down, with lstat: each must be a real folder, never
 * a symlink (CVE-2017-1000420: a folder replaced by a symlink, then written through). With
 * `create`, a missing one is made; without, the answer is 'missing'. Throws UnsafePathError.
 */
export async function ensureRealParents(root: string, path: string, create: boolean): Promise<'present' | 'missing'> {
  const parent = parentPath(path);
  if (parent === '') return 'present';
  let current = '';
  for (const name of parent.split('/')) {
    current = childPath(current, name);
    const absolute = toAbsolute(root, current);
    let stats = await lstatOrUndefined(absolute);
    if (stats === undefined) {
      if (!create) return 'missing';
      try {
        await mkdir(absolute, { mode: PARENT_DIRECTORY_MODE });
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      stats = await lstatOrUndefined(absolute);
    }
    if (stats === undefined || !stats.isDirectory()) {
      const what = stats?.isSymbolicLink() === true ? 'a symlink' : 'not a folder';
      throw new UnsafePathError(`${JSON.stringify(current)} is ${what}: nothing is written or deleted through it`);
    }
  }
  return 'present';
}

/**
 * Whether the disk still holds what `record` says (judged as the scanner judges: type, inode,
 * permissions, and for files and symlinks size and mtime): nothing at all for no record or a
 * tombstone.
 */
export function diskMatches(record: FileRecord | KnownEntry | undefined, stats: BigIntStats | undefined): boolean {
  if (record === undefined || record.deleted) return stats === undefined;
  if (stats === undefined || entryTypeOf(stats) !== record.type) return false;
  return isUnchanged('path' in record ? knownEntryOf(record) : record, record.type, stats);
}

/**
 * The deterministic temp name of `path` for the content `contentHash`, beside it:
 * `.mesh-tmp.NAME.HASH8`, so an interrupted pull of that content leaves a basis the next one finds.
 * NAME is shortened (between characters) to keep the name, with PARTIAL_BASIS_SUFFIX, under NAME_MAX.
 */
export function tempPathOf(path: string, contentHash: Uint8Array): string {
  const hash = Buffer.from(contentHash).toString('hex').slice(0, TEMP_HASH_DIGITS);
  const room = MAX_NAME_BYTES - Buffer.byteLength(TEMP_PREFIX) - 1 - TEMP_HASH_DIGITS - PARTIAL_BASIS_SUFFIX.length;
  let name = '';
  let used = 0;
  for (const character of baseName(path)) {
    used += Buffer.byteLength(character);
    if (used > room) break;
    name += character;
  }
  return childPath(parentPath(path), `${TEMP_PREFIX}${name}.${hash}`);
}

/**
 * Removes whatever is at `absolute` without following it (unlink removes a symlink, not its
 * target). A folder there is not ours to remove: UnsafePathError.
 */
export async function removePlanted(absolute: string): Promise<void> {
  const stats = await lstatOrUndefined(absolute);
  if (stats === undefined) return;
  if (stats.isDirectory()) throw new UnsafePathError(`a folder sits at the temp name ${JSON.stringify(absolute)}`);
  try {
    await unlink(absolute);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** Creates a new file at `absolute` for writing: O_CREAT | O_EXCL | O_NOFOLLOW, never through a planted name. */
export function createExclusive(absolute: string, mode = TEMP_FILE_MODE): Promise<FileHandle> {
  return open(absolute, CREATE_EXCLUSIVE, mode);
}

/** createExclusive made in place: a file descriptor. */
export function createExclusiveSync(absolute: string, mode = TEMP_FILE_MODE): number {
  return openSync(absolute, CREATE_EXCLUSIVE, mode);
}

/** Opens what must be a regular file for reading (ELOOP on a symlink, no hang on a FIFO). */
export function openNoFollow(absolute: string): Promise<FileHandle> {
  return open(absolute, OPEN_NO_FOLLOW);
}


/** unlink that does not mind the file being gone already. */
export async function unlinkIfPresent(absolute: string): Promise<void> {
  try {
    await unlink(absolute);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/**
 * Sets a file's permissions and mtime through a handle opened without following a symlink, then
 * fsyncs it: a pulled file gets its final metadata before it is renamed into place.
 */
export async function finishFile(absolute: string, mode: number, mtimeNs: bigint): Promise<BigIntStats> {
  const handle = await openNoFollow(absolute);
  try {
    await handle.chmod(mode);
    // Seconds as a double: about 0.2 us of precision; the record keeps what lstat reports after.
    const seconds = Number(mtimeNs) / 1e9;
    await handle.utimes(seconds, seconds);
    await handle.sync();
    return await handle.stat({ bigint: true });
  } finally {
    await handle.close();
  }
}

/**
 * Removes a folder if it is empty, or holds only mesh's own temp files (left by interrupted pulls,
 * removed with it). A folder holding anything else (unknown, or ignored, files) is kept: false.
 */
export async function removeEmptyFolder(absolute: string): Promise<boolean> {
  const notEmpty = (error: unknown) => errorCode(error) === 'ENOTEMPTY' || errorCode(error) === 'EEXIST';
  try {
    await rmdir(absolute);
    return true;
  } catch (error) {
    if (!notEmpty(error)) throw error;
  }
  const names = await readdir(absolute);
  for (const name of names) {
    const stats = name.startsWith(TEMP_PREFIX) ? await lstatOrUndefined(join(absolute, name)) : undefined;
    if (!name.startsWith(TEMP_PREFIX) || stats?.isDirectory() === true) return false;
  }
  for (const name of names) await unlinkIfPresent(join(absolute, name));
  try {
    await rmdir(absolute);
    return true;
  } catch (error) {
    if (notEmpty(error)) return false;
    throw error;
  }
}
