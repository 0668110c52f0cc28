import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { AsyncSubscription, Event, SubscribeCallback } from '@parcel/watcher';
import { TEMP_PREFIX } from '../fs/atomic-write.js';
import { STATE_DIRECTORY } from './folder-root.js';

/**
 * A recursive watch made of one non-recursive fs.watch per folder (inotify on Linux: libuv keeps
 * one inotify descriptor for all of them). @parcel/watcher holds its own tree of every path under
 * the root in native memory: 22 MiB of RSS for 100,000 files in 1,000 folders here, a seventh of
 * a Raspberry Pi node's budget (bench:pi); this holds one watch per folder, 2.8 MiB for the same
 * tree. Node's own recursive fs.watch on Linux keeps every file too. The events say which path
 * changed, nothing more: the scan finds out what happened.
 */

/** The error of inotify_add_watch once the system's limit of watches (max_user_watches) is reached. */
const LIMIT_ERRORS = new Set(['ENOSPC']);

export class WatchLimitError extends Error {
  constructor(folder: string, code: string) {
    super(
      `cannot watch ${folder} (${code}): the system's limit of inotify watches is reached, so changes in folders not watched are found by the hourly full rescan. Raise it, e.g. sudo sysctl fs.inotify.max_user_watches=524288`,
    );
    this.name = 'WatchLimitError';
  }
}

/** Watches `root` and every folder under it, as @parcel/watcher's subscribe (without its options). */
export async function watchDirectories(root: string, callback: SubscribeCallback): Promise<AsyncSubscription> {
  const watches = new FolderWatches(root, callback);
  await watches.addTree(root);
  return { unsubscribe: () => Promise.resolve(watches.close()) };
}

class FolderWatches {
  private readonly watches = new Map<string, FSWatcher>();
  /** Per path, the latest follow of a name that came or went (see followInOrder). */
  private readonly following = new Map<string, Promise<void>>();
  private readonly stateFolder: string;
  private queued: Event[] = [];
  private closed = false;
  private limitReported = false;

  constructor(
    private readonly root: string,
    private readonly callback: SubscribeCallback,
  ) {
    // The node's own state (`<root>/.mesh`) is never watched.
    this.stateFolder = join(root, STATE_DIRECTORY);
  }

  /** Watches `top` and the folders under it (symlinks are not followed). */
  async addTree(top: string): Promise<void> {
    const folders = [top];
    for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
      if (this.closed || folder === this.stateFolder || !(await this.add(folder))) continue;
      const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) if (entry.isDirectory()) folders.push(join(folder, entry.name));
    }
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.watches.values()) watcher.close();
    this.watches.clear();
  }

  /** Starts watching one folder; false if it is gone, not a folder, or cannot be watched. */
  private async add(folder: string): Promise<boolean> {
    if (this.watches.has(folder)) return true;
    try {
      const info = await lstat(folder);
      if (!info.isDirectory() || this.closed || this.watches.has(folder)) return info.isDirectory();
      const watcher = watch(folder, { persistent: false }, (type, name) => this.onChange(folder, type, name));
      watcher.on('error', (error) => this.onWatcherError(folder, error));
      this.watches.set(folder, watcher);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (LIMIT_ERRORS.has(code)) {
        if (!this.limitReported) this.callback(new WatchLimitError(folder, code), []);
        this.limitReported = true;
      } else if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        this.callback(error instanceof Error ? error : new Error(String(error)), []);
      }
      return false;
    }
  }

  private onChange(folder: string, type: string, name: string | null): void {
    // mesh's own temp files (a pull writes one per file) and state folder go unreported, no lstat.
    if (this.closed || name?.startsWith(TEMP_PREFIX) === true) return;
    const path = name === null ? folder : join(folder, name);
    if (path === this.stateFolder) return;
    this.report({ type: type === 'rename' ? 'create' : 'update', path });
    // A name that came or went: a new folder is watched, a gone one (and all under it) no longer.
    if (type === 'rename') this.followInOrder(path);
  }

  /**
   * Follows `path` after any follow of it still under way: lstat runs on the thread pool, and
   * results can come back out of order. A folder deleted and made again at once gives two events;
   * the first one's "gone", come back last, would drop the new folder's watch.
   */
  private followInOrder(path: string): void {
    const next = (this.following.get(path) ?? Promise.resolve()).then(() => this.follow(path)).catch(() => undefined);
    this.following.set(path, next);
    void next.then(() => {
      if (this.following.get(path) === next) this.following.delete(path);
    });
  }

  private async follow(path: string): Promise<void> {
    const info = await lstat(path).catch(() => undefined);
    if (this.closed) return;
    if (info === undefined) {
      // Only a watched folder can have watched folders under it (a mass delete: no walk of the map per file).
      if (this.watches.has(path)) this.removeTree(path);
      // The root itself moved or was deleted (its watch then names the root as its own child):
      // reported as itself, for a full rescan.
      if (dirname(path) === this.root && !(await lstat(this.root).then((root) => root.isDirectory()).catch(() => false))) {
        this.report({ type: 'delete', path: this.root });
      }
      return;
    }
    if (!info.isDirectory()) return;
    // A folder whose name came or went is watched anew, even where the inode is the one watched:
    // a folder deleted and made again at once can get its inode number back (ext4), and the
    // watch of the deleted one is dead.
    if (this.watches.has(path)) this.removeTree(path);
    await this.addTree(path);
    // Once it is watched, its path again: what was made in it before the watches were in place is
    // then rescanned after them, not before.
    this.report({ type: 'create', path });
  }

  private removeTree(path: string): void {
    const under = path + sep;
    for (const [folder, watcher] of this.watches) {
      if (folder !== path && !folder.startsWith(under)) continue;
      watcher.close();
      this.watches.delete(folder);
    }
  }

  private onWatcherError(folder: string, error: Error): void {
    this.watches.get(folder)?.close();
    this.watches.delete(folder);
    if (!this.closed) this.callback(error, []);
  }

  /** Events go out together once per turn of the event loop. */
  private report(event: Event): void {
    this.queued.push(event);
    if (this.queued.length > 1) return;
    setImmediate(() => {
      const events = this.queued;
      this.queued = [];
      if (!this.closed) this.callback(null, events);
    });
  }
}
