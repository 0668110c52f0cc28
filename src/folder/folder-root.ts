import { resolve } from 'node:path';
import { FolderMissingError } from './errors.js';
import { errorCode, nodeFolderFs, type FolderFs } from './folder-fs.js';

/** The directory at the folder root that holds mesh's state (the store); never synced. */
export const STATE_DIRECTORY = '.mesh';

/** Which directory a folder root is: a disk unmounted under it leaves a different one. */
export interface FolderIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
}

/** Permissions of a new `.mesh`: the state is this user's alone. */
const STATE_DIRECTORY_MODE = 0o700;

/**
 * The canonical path of a folder root: a root given as a symlink (~/Sync -> /mnt/disk/Sync) is
 * resolved once, so a later change of the link cannot point the scanner at another tree.
 */
export async function resolveRoot(root: string, fs: FolderFs = nodeFolderFs): Promise<string> {
  const absolute = resolve(root);
  try {
    return await fs.realpath(absolute);
  } catch (error) {
    throw new FolderMissingError(absolute, describeRootError(error));
  }
}

/**
 * Prepares `root` to be synced: creates `<root>/.mesh` if it is missing, and returns the root's
 * canonical path. The root itself must exist (creating it is the command's decision, not a side
 * effect of a scan).
 */
export async function initFolder(root: string, fs: FolderFs = nodeFolderFs): Promise<string> {
  const absolute = await resolveRoot(root, fs);
  await rootIdentity(absolute, fs);
  try {
    await fs.mkdir(`${absolute}/${STATE_DIRECTORY}`, STATE_DIRECTORY_MODE);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
  }
  await readFolderIdentity(absolute, fs);
  return absolute;
}

/** The identity of a folder ready to scan: the root and its `.mesh` are real directories. */
export async function readFolderIdentity(root: string, fs: FolderFs = nodeFolderFs): Promise<FolderIdentity> {
  const identity = await rootIdentity(root, fs);
  let isDirectory: boolean;
  try {
    isDirectory = (await fs.lstat(`${root}/${STATE_DIRECTORY}`)).isDirectory();
  } catch (error) {
    throw new FolderMissingError(root, `its ${STATE_DIRECTORY} directory cannot be read: ${errorCode(error) ?? String(error)}`);
  }
  if (!isDirectory) throw new FolderMissingError(root, `its ${STATE_DIRECTORY} is not a directory`);
  return identity;
}

/** Throws FolderMissingError unless `root` is still the directory `expected` identified. */
export async function checkFolder(root: string, expected: FolderIdentity, fs: FolderFs = nodeFolderFs): Promise<void> {
  const now = await readFolderIdentity(root, fs);
  if (now.dev !== expected.dev || now.ino !== expected.ino) {
    throw new FolderMissingError(root, 'it was replaced by another directory, as when a disk is unmounted');
  }
}

async function rootIdentity(root: string, fs: FolderFs): Promise<FolderIdentity> {
  try {
    const stats = await fs.lstat(root);
    if (!stats.isDirectory()) throw new FolderMissingError(root, 'it is not a directory');
    return { dev: stats.dev, ino: stats.ino };
  } catch (error) {
    if (error instanceof FolderMissingError) throw error;
    throw new FolderMissingError(root, describeRootError(error));
  }
}

function describeRootError(error: unknown): string {
  const code = errorCode(error);
  return code === 'ENOENT' ? 'it does not exist' : `it cannot be read: ${code ?? String(error)}`;
}
