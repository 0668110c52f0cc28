/**
 * The second look at what the applier wrote. The native watcher coalesces events: a folder the
 * applier made and the user removed within one of its batches produces no event at all, so every
 * path an apply wrote is rescanned once more SETTLE_RESCAN_MS after the last apply.
 *
 * That rescan also stands in for the watcher on paths an apply is writing or has written since:
 * their events are nearly all the applier's own (each rename into place, each folder made), and
 * rescanning them as they came found nothing new yet cost the receiver of 2,000 small files five
 * scans of ~50 ms each on the thread that places them. Such events wait for the settle rescan,
 * which comes at most MAX_SETTLE_DELAY_MS after the first path waits for it, however long the
 * applies go on: a user's change to a path that just arrived is found within seconds (Syncthing's
 * watcher waits 10 s by default), and every other path's at the watcher's pace.
 */

export const SETTLE_RESCAN_MS = 1_000;
/** The longest a path waits for its settle rescan while applies keep coming. */
export const MAX_SETTLE_DELAY_MS = 3_000;

export interface SettleRescansInit {
  /** Rescans these folder-relative paths (and what is under them). */
  scan(paths: string[]): Promise<unknown>;
  onError(error: unknown): void;
  /** Default SETTLE_RESCAN_MS. */
  delayMs?: number;
  /** Default MAX_SETTLE_DELAY_MS. */
  maxDelayMs?: number;
}

export class SettleRescans {
  private readonly waiting = new Set<string>();
  /** Paths of the applies in progress, each counted once per apply that holds it. */
  private readonly applying = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private firstWaitingAt = 0;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private readonly delayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly init: SettleRescansInit) {
    this.delayMs = init.delayMs ?? SETTLE_RESCAN_MS;
    this.maxDelayMs = Math.max(init.maxDelayMs ?? MAX_SETTLE_DELAY_MS, this.delayMs);
  }

  /** An apply of `paths` begins: until `end` is called, the watcher's events on them wait for the settle rescan. */
  begin(paths: readonly string[]): { end(): void } {
    for (const path of paths) this.applying.set(path, (this.applying.get(path) ?? 0) + 1);
    let ended = false;
    return {
      end: () => {
        if (ended) return;
        ended = true;
        for (const path of paths) {
          const count = (this.applying.get(path) ?? 0) - 1;
          if (count > 0) this.applying.set(path, count);
          else this.applying.delete(path);
        }
      },
    };
  }

  /** Paths an apply wrote: rescanned once more after the applies settle. */
  wrote(paths: Iterable<string>): void {
    for (const path of paths) this.waiting.add(path);
    this.schedule();
  }

  /**
   * The watcher's paths to rescan now: those an apply in progress is writing, or that wait for the
   * settle rescan already, are left to that rescan.
   */
  watched(paths: readonly string[]): string[] {
    const now: string[] = [];
    const deferred: string[] = [];
    for (const path of paths) (this.applying.has(path) || this.waiting.has(path) ? deferred : now).push(path);
    if (deferred.length > 0) this.wrote(deferred);
    return now;
  }

  /** Stops the timer and waits for a rescan in progress; what still waits is left to the next start's full scan. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** SETTLE_RESCAN_MS after the last path came, but no later than MAX_SETTLE_DELAY_MS after the first. */
  private schedule(): void {
    if (this.stopped || this.waiting.size === 0) return;
    const now = Date.now();
    if (this.timer === undefined) this.firstWaitingAt = now;
    clearTimeout(this.timer);
    const left = this.firstWaitingAt + this.maxDelayMs - now;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(this.delayMs, left)));
  }

  private fire(): void {
    this.timer = undefined;
    if (this.stopped || this.waiting.size === 0) return;
    const paths = [...this.waiting];
    this.waiting.clear();
    const run = Promise.resolve(this.running)
      .then(() => this.init.scan(paths))
      .catch((error: unknown) => this.init.onError(error));
    this.running = run;
  }
}
