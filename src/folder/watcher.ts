import { relative, sep } from 'node:path';
import type { AsyncSubscription, Event, SubscribeCallback } from '@parcel/watcher';
import { TEMP_PREFIX } from '../fs/atomic-write.js';
import { watchDirectories } from './directory-watch.js';
import { STATE_DIRECTORY } from './folder-root.js';
import { isRootOrOutside } from './paths.js';

import { DEFAULT_WATCH_DELAY_MS, MAX_WATCH_DELAY_MS } from './watch-timing.js';

export { DEFAULT_WATCH_DELAY_MS, MAX_WATCH_DELAY_MS };
/** The safety net: a full rescan this often, whatever the watcher said (Syncthing's default too). */
export const DEFAULT_FULL_RESCAN_MS = 60 * 60 * 1000;
/** Past this many distinct touched paths, one full rescan is cheaper than a scoped one. */
export const MAX_PENDING_PATHS = 10_000;

export interface WatcherInit {
  /** The folder root (absolute). */
  root: string;
  /**
   * Rescans these folder-relative paths ('/'-separated), or the whole folder when undefined.
   * Called one at a time: the next waits for the previous to settle.
   */
  rescan(paths: string[] | undefined): Promise<void>;
  /** Default DEFAULT_WATCH_DELAY_MS. */
  delayMs?: number;
  /** Default DEFAULT_FULL_RESCAN_MS. */
  fullRescanMs?: number;
  /** Told about watcher failures (a full rescan is queued for each) and failed rescans. */
  onError?(error: Error): void;
  /** The event source; defaultSubscribe() unless a test brings its own. */
  subscribe?: Subscribe;
}

/**
 * A source of file-system events for a folder tree, as @parcel/watcher's subscribe; it leaves out
 * the node's own state folder and temp files.
 */
export type Subscribe = (root: string, callback: SubscribeCallback) => Promise<AsyncSubscription>;

/** The node's state folder and temp files: their events never call for a rescan. */
const IGNORED_GLOBS = [STATE_DIRECTORY, `**/${TEMP_PREFIX}*`];

/**
 * On Linux one inotify watch per folder (directory-watch.ts: no tree of every file in memory);
 * elsewhere @parcel/watcher (FSEvents on macOS, ReadDirectoryChangesW on Windows), loaded only
 * there.
 */
export function defaultSubscribe(platform: NodeJS.Platform = process.platform): Subscribe {
  if (platform === 'linux') return watchDirectories;
  return async (root, callback) => {
    const { default: watcher } = await import('@parcel/watcher');
    return watcher.subscribe(root, callback, { ignore: IGNORED_GLOBS });
  };
}

/**
 * Turns file-system events into a few rescans: a recursive watch (inotify on Linux, FSEvents on
 * macOS; see defaultSubscribe), touched paths gathered until DEFAULT_WATCH_DELAY_MS
 * pass without new events, then one scoped rescan. Lost events (an overflowing queue, a watcher
 * error) become a full rescan, and a slow periodic full rescan catches anything else.
 */
export class FolderWatcher {
  private subscription: AsyncSubscription | undefined;
  private readonly pending = new Set<string>();
  private fullPending = false;
  private firstEventAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private periodic: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly delayMs: number;

  constructor(private readonly init: WatcherInit) {
    this.delayMs = init.delayMs ?? DEFAULT_WATCH_DELAY_MS;
  }

  async start(): Promise<void> {
    const subscribe = this.init.subscribe ?? defaultSubscribe();
    this.subscription = await subscribe(this.init.root, (error, events) => this.onEvents(error, events));
    this.periodic = setInterval(() => this.requestFull(), this.init.fullRescanMs ?? DEFAULT_FULL_RESCAN_MS);
    this.periodic.unref();
  }

  /** Stops watching and waits for a rescan in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.periodic);
    // A folder removed or unmounted first has taken its inotify watches with it: removing them
    // then fails (EINVAL), and there is nothing left to stop.
    await this.subscription?.unsubscribe().catch(() => undefined);
    this.subscription = undefined;
    await this.running;
  }

  /** Queues a full rescan (at start, after lost events, periodically). */
  requestFull(): void {
    this.fullPending = true;
    this.pending.clear();
    this.schedule();
  }

  private onEvents(error: Error | null, events: Event[]): void {
    if (this.stopped) return;
    if (error !== null) {
      this.init.onError?.(error);
      this.requestFull();
      return;
    }
    if (!this.fullPending) {
      for (const event of events) {
        const back = relative(this.init.root, event.path);
        if (isRootOrOutside(back)) {
          // The root itself changed (moved, deleted): the rescan will find out what happened.
          this.requestFull();
          return;
        }
        this.pending.add(back.split(sep).join('/'));
      }
      if (this.pending.size > MAX_PENDING_PATHS) {
        this.requestFull();
        return;
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.running !== undefined) return; // the run in progress reschedules when done
    const now = Date.now();
    if (this.timer === undefined) this.firstEventAt = now;
    clearTimeout(this.timer);
    const waited = now - this.firstEventAt;
    const longest = Math.max(MAX_WATCH_DELAY_MS, this.delayMs);
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(this.delayMs, longest - waited)));
  }

  private fire(): void {
    this.timer = undefined;
    if (this.stopped || (!this.fullPending && this.pending.size === 0)) return;
    const paths = this.fullPending ? undefined : [...this.pending];
    this.fullPending = false;
    this.pending.clear();
    // Started from a microtask, so `running` is set before the rescan runs: events that arrive
    // while it starts must wait for it too.
    this.running = Promise.resolve()
      .then(() => this.init.rescan(paths))
      .catch((error: unknown) => this.init.onError?.(error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        this.running = undefined;
        if (this.fullPending || this.pending.size > 0) this.schedule();
      });
  }
}
