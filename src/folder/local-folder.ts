import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openLevelStore } from '../store/level-store.js';
import type { Store } from '../store/types.js';
import { NotAFolderError } from './errors.js';
import { FolderLock } from './folder-lock.js';
import { initFolder, STATE_DIRECTORY } from './folder-root.js';
import { openScanner, type Scanner, type ScannerInit } from './scanner.js';

/** Where the index lives inside a folder's state directory. */
export const INDEX_DIRECTORY = 'index';

/** A folder opened for syncing: its root, its index (LevelDB in `.mesh/index`) and its scanner. */
export interface LocalFolder {
  readonly root: string;
  readonly store: Store;
  readonly scanner: Scanner;
  /** The folder lock its scanner holds for each scan; whatever else changes the folder takes it too. */
  readonly lock: FolderLock;
  close(): Promise<void>;
}

/**
 * Opens the folder at `dir` (which must exist and be a directory), creating its `.mesh` state on
 * first use. The index is locked: a second process on the same folder gets StoreLockedError.
 */
export async function openLocalFolder(
  dir: string,
  options: Pick<ScannerInit, 'onProgress' | 'progressIntervalMs' | 'workerWalkMinEntries'> = {},
): Promise<LocalFolder> {
  const absolute = resolve(dir);
  const info = await stat(absolute).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new NotAFolderError(`${absolute}: no such folder (create it first, or check the path)`);
    throw error;
  });
  if (!info.isDirectory()) throw new NotAFolderError(`${absolute}: is a file, not a folder`);
  const root = await initFolder(absolute);
  const store = await openLevelStore(join(root, STATE_DIRECTORY, INDEX_DIRECTORY));
  try {
    const lock = new FolderLock();
    const scanner = await openScanner({ root, store, lock, ...options });
    return { root, store, scanner, lock, close: () => store.close() };
  } catch (error) {
    await store.close();
    throw error;
  }
}
