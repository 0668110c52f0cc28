import { lstat, lutimes, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { initFolder, nodeFolderFs, openScanner, type FolderFs, type Scanner, type ScannerInit } from '../src/folder/index.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { FileRecord } from '../src/store/types.js';
import { tempDir } from './helpers.js';

export interface TestFolder {
  readonly root: string;
  readonly store: MemoryStore;
  readonly scanner: Scanner;
}

/** A temp folder with .mesh, an in-memory store and a scanner on it; removed when the test ends. */
export async function testFolder(t: TestContext, init: Partial<ScannerInit> = {}): Promise<TestFolder> {
  const root = await initFolder(await tempDir(t, 'mesh-scan-'));
  const store = new MemoryStore();
  const scanner = await openScanner({ root, store, ...init });
  return { root, store, scanner };
}

/** Writes a file (and its parent directories) under `root`. */
export async function put(root: string, path: string, data: string | Uint8Array = path): Promise<void> {
  const absolute = join(root, path);
  await mkdir(dirname(absolute), { recursive: true });
  await writeFile(absolute, data);
}

/** Every record of the store by path, tombstones included. */
export async function recordsOf(store: MemoryStore): Promise<Map<string, FileRecord>> {
  const out = new Map<string, FileRecord>();
  for await (const record of store.records()) out.set(record.path, record);
  return out;
}

export async function recordOf(store: MemoryStore, path: string): Promise<FileRecord> {
  const record = await store.get(path);
  if (record === undefined) throw new Error(`no record for ${path}`);
  return record;
}

/** The live (not deleted) paths of the store, sorted. */
export async function livePaths(store: MemoryStore): Promise<string[]> {
  return [...(await recordsOf(store)).values()].filter((r) => !r.deleted).map((r) => r.path);
}

/**
 * Moves every mtime under `root` an hour back, as if the files were written long before the scan:
 * files modified within RACY_WINDOW_MS of their hashing are (rightly) hashed again by the next scan,
 * which a test of "nothing is read" must rule out.
 */
export async function ageTree(root: string, seconds = 3600): Promise<void> {
  const time = new Date(Date.now() - seconds * 1000);
  const pending = [root];
  while (pending.length > 0) {
    const directory = pending.pop()!;
    for (const name of await readdir(directory)) {
      if (directory === root && name === '.mesh') continue;
      const path = join(directory, name);
      await lutimes(path, time, time);
      if ((await lstat(path)).isDirectory()) pending.push(path);
    }
  }
}

/** An error as a failed fs call throws it. */
export function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected failure, ${syscall} '${path}'`), { code, syscall, path });
}

/** The real file system with some operations replaced (failures, hooks). */
export function faultyFs(overrides: Partial<FolderFs>): FolderFs {
  return { ...nodeFolderFs, ...overrides };
}
