import { realpath } from 'node:fs/promises';
import { loadLibc } from '../os/libc.js';
import { collectAtRest } from './memory-mode.js';
import { residentBytes } from '../os/proc-status.js';
import { levelTablesIn, loadPageOut, MappedTableWatch } from './mapped-pages.js';
import { loadProgramPagesRelease, ProgramPagesAtRest } from './program-pages.js';

/**
 * Gives memory the process has freed back to the system (glibc's malloc_trim, through the koffi
 * FFI). Node allocates every Buffer with malloc, and after a large transfer glibc kept 26-28 MiB
 * of freed buffers per node (bench:mesh: 139 -> 113 MiB and 130 -> 102 MiB after one trim, in
 * ~20 ms): free pieces between live ones are returned only by malloc_trim. Only where it exists:
 * glibc Linux (macOS's and musl's allocators return such memory themselves).
 */

/** How often the RSS is looked at: one read of /proc (microseconds), so also while idle. */
export const TRIM_CHECK_INTERVAL_MS = 2_000;
/** Growth of the RSS since the last trim that calls for another (a trim costs ~20 ms). */
export const TRIM_GROWTH_BYTES = 8 * 1024 * 1024;
/**
 * Smaller growth that calls for a trim once the RSS has settled (changed by less than
 * SETTLED_CHANGE_BYTES since the last look): a node that goes quiet after work gives back what it
 * freed, rather than keeping up to TRIM_GROWTH_BYTES for as long as it rests.
 */
export const SETTLED_GROWTH_BYTES = 2 * 1024 * 1024;
export const SETTLED_CHANGE_BYTES = 1024 * 1024;

/** malloc_trim(0): whether anything was given back. */
export type TrimFunction = () => boolean;

/** glibc's malloc_trim, or undefined where there is none (another system, another libc, no koffi build). */
export async function loadMallocTrim(): Promise<TrimFunction | undefined> {
  const libc = await loadLibc();
  if (libc === undefined) return undefined;
  try {
    const mallocTrim = libc.func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return () => mallocTrim(0) === 1;
  } catch {
    return undefined; // a C library without it
  }
}

/** glibc's mallopt parameter M_ARENA_MAX (malloc.h). */
const M_ARENA_MAX = -8;
/**
 * Malloc arenas a long-running node may have: the main thread's and one for every other thread.
 * glibc gives each thread that contends for the heap an arena of its own, up to eight per core;
 * freed memory stays spread over them. bench:pi's index exchange (the libuv pool and LevelDB's
 * compaction thread reading and writing the index) had ~27 MiB resident in nine such arenas at
 * its peak; with MALLOC_ARENA_MAX=2 set before start, ~10 MiB. Set at run time (V8's threads
 * already have theirs), the whole run's peak 150-154 -> 145-149 MiB.
 */
export const MAX_MALLOC_ARENAS = 2;

/**
 * Caps glibc's malloc arenas at MAX_MALLOC_ARENAS (mallopt M_ARENA_MAX, as MALLOC_ARENA_MAX=2 in
 * the environment would): for threads that take an arena after this call, so made before the
 * node opens its index and starts its threads. Whether it was set (glibc Linux only).
 */
export async function limitMallocArenas(): Promise<boolean> {
  const libc = await loadLibc();
  if (libc === undefined) return false;
  try {
    const mallopt = libc.func('int mallopt(int param, int value)') as (param: number, value: number) => number;
    return mallopt(M_ARENA_MAX, MAX_MALLOC_ARENAS) === 1;
  } catch {
    return false; // a C library without it
  }
}

/**
 * Trims once the RSS has grown by TRIM_GROWTH_BYTES since the last trim (or start), or by
 * SETTLED_GROWTH_BYTES and then settled, looking every TRIM_CHECK_INTERVAL_MS; its timer never
 * keeps the process alive. `atRest` runs once each time the RSS settles after it moved (work is
 * over): for what is worth doing when a node goes quiet but not while it works.
 */
export class MemoryTrimmer {
  private baseline: number;
  private previous: number;
  private timer: NodeJS.Timeout | undefined;
  private rested = false;
  /** Trims done, for tests and logs. */
  trims = 0;

  constructor(
    private readonly trim: TrimFunction,
    private readonly rss: () => number = () => process.memoryUsage.rss(),
    private readonly growthBytes = TRIM_GROWTH_BYTES,
    private readonly atRest: () => void = () => undefined,
  ) {
    this.baseline = rss();
    this.previous = this.baseline;
  }

  start(intervalMs = TRIM_CHECK_INTERVAL_MS): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Trims at once (the caller knows much was just freed); growth counts from here. */
  trimNow(): void {
    this.trim();
    this.trims++;
    this.baseline = this.rss();
    this.previous = this.baseline;
  }

  /** Trims if the RSS grew enough; the baseline follows the RSS down, so growth counts from the lowest point. */
  check(): void {
    const now = this.rss();
    const settled = Math.abs(now - this.previous) < SETTLED_CHANGE_BYTES;
    this.previous = now;
    if (!settled) this.rested = false;
    const grown = now - this.baseline;
    if (grown < this.growthBytes && !(settled && grown >= SETTLED_GROWTH_BYTES)) {
      this.baseline = Math.min(this.baseline, now);
    } else {
      this.trimNow();
    }
    if (settled && !this.rested) {
      this.rested = true;
      this.atRest();
      this.previous = this.rss();
    }
  }
}

/**
 * The process's anonymous resident bytes (RssAnon), or the whole RSS where there is no such
 * figure. What a trim can give back and what work moves: the file pages (Node's binary,
 * LevelDB's tables) come and go with their own page-outs, and counted in they made every release
 * of the binary's pages look like new work ending (the refill moved the RSS by ~7 MiB).
 */
export function anonymousBytes(): number {
  return residentBytes('RssAnon') ?? process.memoryUsage.rss();
}

/**
 * Starts trimming for a long-running command (mesh join) as its anonymous memory grows; at rest
 * it collects garbage Buffers first (memory-mode.ts), pages out LevelDB's mapped tables under
 * `stateDirectory` (mapped-pages.ts, also as they grow) and drops the pages of Node's binary the
 * node no longer uses (program-pages.ts); a stop function. Where there is no malloc_trim (musl,
 * macOS: their allocators give freed memory back themselves) or no page-out, only the rest is done.
 */
export async function startMemoryTrim(stateDirectory: string): Promise<() => void> {
  const trim = (await loadMallocTrim()) ?? (() => false);
  const pageOut = await loadPageOut();
  // /proc/self/maps names files by their real paths.
  const tables = levelTablesIn(await realpath(stateDirectory).catch(() => stateDirectory));
  const pageOutTables = () => void pageOut?.(tables);
  const releaseProgramPages = await loadProgramPagesRelease();
  const programPages = releaseProgramPages === undefined ? undefined : new ProgramPagesAtRest(releaseProgramPages);
  const atRest = () => {
    if (collectAtRest()) trimmer.trimNow();
    pageOutTables();
    programPages?.atRest();
  };
  const trimmer = new MemoryTrimmer(trim, anonymousBytes, undefined, atRest);
  trimmer.start();
  const watch = pageOut === undefined ? undefined : new MappedTableWatch(pageOutTables);
  watch?.start();
  return () => {
    trimmer.stop();
    watch?.stop();
  };
}
