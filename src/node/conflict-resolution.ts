import { link, lstat, readdir, rename, unlink } from 'node:fs/promises';
import { baseName, childPath, parentPath, toAbsolute } from '../folder/paths.js';
import { CONFLICT_DEVICE_DIGITS, CONFLICT_MARKER, parseConflictName, splitExtension } from './conflict-name.js';
import { NodeError } from './errors.js';

/**
 * Which version of a conflict to keep: this device's, the other device's, or both (the copy
 * then gets an ordinary name and is no longer a conflict copy).
 */
export type KeepChoice = 'mine' | 'theirs' | 'both';
export const KEEP_CHOICES: readonly KeepChoice[] = ['mine', 'theirs', 'both'];

/** What resolving did, in the folder's terms (folder-relative paths). */
export type ConflictOutcome =
  /** The copy's version replaced the file (the copy's name is gone). */
  | { readonly action: 'replaced'; readonly copy: string; readonly original: string }
  /** The copy was deleted; the file stays as it is. */
  | { readonly action: 'removed-copy'; readonly copy: string; readonly original: string }
  /** Both kept: the copy now has an ordinary name. */
  | { readonly action: 'renamed-copy'; readonly copy: string; readonly original: string; readonly renamedTo: string };

/** A conflict that cannot be resolved as asked: one line for the user. */
export class ConflictResolutionError extends NodeError {
  override name = 'ConflictResolutionError';
}

async function regularFile(root: string, path: string): Promise<boolean> {
  const stats = await lstat(toAbsolute(root, path)).catch(() => undefined);
  return stats?.isFile() === true;
}

/** The conflict copies of `original` in its folder, sorted. */
async function copiesOf(root: string, original: string): Promise<string[]> {
  const parent = parentPath(original);
  const names = await readdir(parent === '' ? root : toAbsolute(root, parent)).catch(() => [] as string[]);
  return names
    .filter((name) => name.includes(CONFLICT_MARKER))
    .map((name) => childPath(parent, name))
    .filter((path) => parseConflictName(path)?.original === original)
    .sort();
}

/** `NAME (conflict DEVICE7).EXT` beside the original: the name a copy kept with "both" gets. */
function keptName(original: string, device: string): string {
  const [stem, extension] = splitExtension(baseName(original));
  return childPath(parentPath(original), `${stem} (conflict ${device})${extension}`);
}

/**
 * Resolves a conflict on disk, as a user would by hand, so the running node (or the next scan)
 * records and syncs the result like any edit: `path` is a conflict copy, or a file with exactly
 * one. "mine" keeps the version this device (`device`, 16 hex digits) made, "theirs" the other:
 * the copy replaces the file (a rename) or is deleted. "both" gives the copy an ordinary name.
 * Never follows a symlink and never overwrites anything but the file itself.
 */
export async function resolveConflict(root: string, path: string, keep: KeepChoice, device: string): Promise<ConflictOutcome> {
  let copy = path;
  let parsed = parseConflictName(path);
  if (parsed === undefined) {
    const copies = await copiesOf(root, path);
    if (copies.length === 0) throw new ConflictResolutionError(`${path} has no conflict copy`);
    if (copies.length > 1) throw new ConflictResolutionError(`${path} has ${copies.length} conflict copies (${copies.join(', ')}): name the one to resolve`);
    copy = copies[0];
    parsed = parseConflictName(copy)!;
  }
  const { original } = parsed;
  if (!(await regularFile(root, copy))) throw new ConflictResolutionError(`${copy} is not a file in the folder`);
  const copyIsMine = parsed.device === device.slice(0, CONFLICT_DEVICE_DIGITS);
  const absoluteCopy = toAbsolute(root, copy);
  if (keep === 'both') {
    const renamedTo = keptName(original, parsed.device);
    try {
      // link + unlink: never replaces a file that has the new name already.
      await link(absoluteCopy, toAbsolute(root, renamedTo));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new ConflictResolutionError(`${renamedTo} exists already: rename ${copy} by hand`);
      throw error;
    }
    await unlink(absoluteCopy);
    return { action: 'renamed-copy', copy, original, renamedTo };
  }
  if ((keep === 'mine') === copyIsMine) {
    const target = await lstat(toAbsolute(root, original)).catch(() => undefined);
    if (target !== undefined && !target.isFile()) throw new ConflictResolutionError(`${original} is not a file: resolve ${copy} by hand`);
    await rename(absoluteCopy, toAbsolute(root, original));
    return { action: 'replaced', copy, original };
  }
  await unlink(absoluteCopy);
  return { action: 'removed-copy', copy, original };
}
