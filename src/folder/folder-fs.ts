import { closeSync, constants, fstatSync, lstatSync, opendirSync, openSync, read, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { link, mkdir, realpath, rename, unlink } from 'node:fs/promises';

/**
 * The file-system operations the folder layer uses, as a small interface in the spirit of
 * Syncthing's fs package: the real one below, and in tests a wrapper that injects failures
 * (EACCES, EIO, a file that changes while it is read) where running as root or racing a real
 * writer could not produce them reliably. Nothing here follows a symlink.
 */
export interface FolderFs {
  lstat(path: string): Promise<BigIntStats>;
  /** The names in a directory, streamed (a directory of a million entries is never one array). */
  listDirectory(path: string): AsyncIterable<string>;
  readlink(path: string): Promise<string>;
  /** The canonical absolute path (symlinks resolved): used once, for the folder root itself. */
  realpath(path: string): Promise<string>;
  /** Opens a regular file for reading; fails (ELOOP) on a symlink, never blocks on a FIFO. */
  openForReading(path: string): Promise<ReadableFile>;
  link(existing: string, newPath: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, mode: number): Promise<void>;
}

export interface ReadableFile {
  stat(): Promise<BigIntStats>;
  /** Reads into `buffer` from `position`; returns the bytes read (fewer only at the end). */
  read(buffer: Uint8Array, position: number): Promise<number>;
  close(): Promise<void>;
}

/** Entries the real listing buffers from the kernel at a time. */
const DIRECTORY_BUFFER_ENTRIES = 128;
/**
 * Reads at least this long go to the thread pool (the disk works while the hasher hashes the
 * previous chunk); shorter ones, the whole of most files, are made in place.
 */
export const ASYNC_READ_MIN_LENGTH = 64 * 1024;

// O_NOFOLLOW: a path swapped for a symlink after it was scanned is refused, not followed.
// O_NONBLOCK: a path swapped for a FIFO cannot hang the scan (no effect on regular files).
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

function readAt(fd: number, buffer: Uint8Array, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, buffer.length, position, (error, bytesRead) => (error === null ? resolve(bytesRead) : reject(error)));
  });
}

/** Runs a synchronous fs call as a promise: its error becomes a rejection, as the async call's would. */
function settle<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * The real file system. Metadata calls (lstat, open, fstat, close) and small reads are synchronous:
 * measured here, a thread-pool round trip costs 25-70 us against a few for the system call, so a
 * first scan of 20,000 small files took 6 s with the promise API and under 1 s this way. Each such
 * call blocks the event loop only for itself (microseconds from the page cache, a seek from a cold
 * disk), and the scanner yields to the event loop between entries (see EventLoopYielder). Listing
 * and large reads stay asynchronous.
 */
export const nodeFolderFs: FolderFs = {
  lstat: (path) => settle(() => lstatSync(path, { bigint: true })),
  // Synchronous reads, DIRECTORY_BUFFER_ENTRIES names each, as lstat is: a thread-pool round trip
  // per read cost more than the read itself (the scanner yields to the event loop regularly).
  async *listDirectory(path) {
    const directory = opendirSync(path, { bufferSize: DIRECTORY_BUFFER_ENTRIES });
    try {
      for (let entry = directory.readSync(); entry !== null; entry = directory.readSync()) yield entry.name;
    } finally {
      directory.closeSync();
    }
  },
  readlink: (path) => settle(() => readlinkSync(path)),
  realpath: (path) => realpath(path),
  openForReading: (path) =>
    settle(() => {
      const fd = openSync(path, READ_FLAGS);
      let closed = false;
      return {
        stat: () => settle(() => fstatSync(fd, { bigint: true })),
        read: (buffer, position) =>
          buffer.length >= ASYNC_READ_MIN_LENGTH ? readAt(fd, buffer, position) : settle(() => readSync(fd, buffer, 0, buffer.length, position)),
        close: () =>
          settle(() => {
            if (closed) return;
            closed = true;
            closeSync(fd);
          }),
      };
    }),
  link: (existing, newPath) => link(existing, newPath),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  mkdir: async (path, mode) => {
    await mkdir(path, { mode });
  },
};

/** The errno code of a failed fs call, if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The path (or a part of it) is not there: ENOENT, or a parent is no longer a directory. */
export function isNotFound(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** A failed call's message ("EACCES: permission denied, open '/x/y'"), without the stack. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
