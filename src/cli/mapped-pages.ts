import { readFileSync } from 'node:fs';
import { loadMadvise } from '../os/libc.js';
import { parseMappings, type Mapping } from '../os/proc-maps.js';
import { residentBytes } from '../os/proc-status.js';

/**
 * Hands back the pages of memory-mapped files a node has read but no longer needs: LevelDB maps
 * each table file it opens (on 64-bit systems; classic-level gives no way to turn that off), so
 * every page a scan, an index exchange or a compaction once read stays in the RSS, around the
 * 2 MiB block cache the store is given (level-store.ts). bench:pi's node indexing 100,000 files
 * kept ~35 MiB of them at rest. madvise(MADV_PAGEOUT) asks the kernel to reclaim them: they are
 * clean copies of file data, read again from the file when LevelDB next needs them. Unlike
 * MADV_DONTNEED it is only advice on any kind of memory, so a range unmapped and reused by
 * something else between reading /proc/self/maps and the call loses nothing. Done at rest, and
 * whenever the file-backed RSS has grown by 4 MiB (MappedTableWatch): an index exchange of 100,000
 * files mapped up to 31 MiB of tables at once, most of it a compaction reading its inputs through.
 * Linux 5.4 or later, through koffi.
 */

/** Linux's MADV_PAGEOUT (include/uapi/asm-generic/mman-common.h). */
const MADV_PAGEOUT = 21;

/** The file mappings of /proc/self/maps text (paths from /: not anonymous memory, [stack] and such). */
export function parseFileMappings(maps: string): Mapping[] {
  return parseMappings(maps).filter((mapping) => mapping.path.startsWith('/'));
}

/** Pages out every mapping whose file `wanted` picks; returns the bytes of the ranges advised. */
export type PageOutFunction = (wanted: (path: string) => boolean) => number;

/** madvise(MADV_PAGEOUT) over chosen file mappings, or undefined where it cannot be called (see loadLibc). */
export async function loadPageOut(): Promise<PageOutFunction | undefined> {
  const madvise = await loadMadvise();
  if (madvise === undefined) return undefined;
  return (wanted) => {
    let advised = 0;
    for (const mapping of parseFileMappings(readFileSync('/proc/self/maps', 'utf8'))) {
      if (!wanted(mapping.path)) continue;
      // A kernel before 5.4 answers EINVAL: nothing happens, as nothing needs to.
      if (madvise(mapping.start, mapping.end - mapping.start, MADV_PAGEOUT) === 0) advised += Number(mapping.end - mapping.start);
    }
    return advised;
  };
}

/** Picks LevelDB's table files (*.ldb) inside `directory`. */
export function levelTablesIn(directory: string): (path: string) => boolean {
  const prefix = directory.endsWith('/') ? directory : `${directory}/`;
  return (path) => path.startsWith(prefix) && path.endsWith('.ldb');
}

/** File-backed growth (RssFile) since the last page-out that calls for another. */
export const PAGE_OUT_GROWTH_BYTES = 4 * 1024 * 1024;
/**
 * How often the file-backed RSS is looked at while it moves: a LevelDB compaction maps its input
 * tables and reads them through at ~25 MB/s here (bench:pi's index exchange of 100,000 records:
 * up to 31 MiB of tables resident at once, read in about a second, in the node's peak RSS).
 */
export const ACTIVE_CHECK_INTERVAL_MS = 100;
/** How often at rest: each look is one read of /proc/self/status (~25 µs). */
export const RESTING_CHECK_INTERVAL_MS = 1_000;
/** Looks stay frequent this long after the file-backed RSS last moved by ACTIVITY_BYTES. */
export const ACTIVE_FOR_MS = 5_000;
export const ACTIVITY_BYTES = 256 * 1024;

/** The process's file-backed resident bytes (RssFile), or 0 where there is none. */
export function fileBackedBytes(): number {
  return residentBytes('RssFile') ?? 0;
}

/**
 * Pages out LevelDB's tables (`pageOut`) whenever the file-backed RSS has grown by
 * PAGE_OUT_GROWTH_BYTES since the last page-out (or its lowest point since), looking every
 * ACTIVE_CHECK_INTERVAL_MS while it moves and every RESTING_CHECK_INTERVAL_MS at rest. The pages
 * a compaction read are not read again (its input tables are deleted when it ends), and an index
 * exchange reads records mostly in path order: what is paged out is rarely wanted back soon.
 * Its timer never keeps the process alive.
 */
export class MappedTableWatch {
  private baseline: number;
  private previous: number;
  private activeUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Page-outs done, for tests and logs. */
  pageOuts = 0;

  constructor(
    private readonly pageOut: () => void,
    private readonly fileRss: () => number = fileBackedBytes,
    private readonly now: () => number = Date.now,
  ) {
    this.baseline = fileRss();
    this.previous = this.baseline;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Looks once; returns how long to wait before the next look (ms). */
  check(): number {
    const rss = this.fileRss();
    if (Math.abs(rss - this.previous) >= ACTIVITY_BYTES) this.activeUntil = this.now() + ACTIVE_FOR_MS;
    this.previous = rss;
    if (rss - this.baseline >= PAGE_OUT_GROWTH_BYTES) {
      this.pageOut();
      this.pageOuts++;
      this.baseline = this.fileRss();
      this.previous = this.baseline;
    } else {
      this.baseline = Math.min(this.baseline, rss);
    }
    return this.now() < this.activeUntil ? ACTIVE_CHECK_INTERVAL_MS : RESTING_CHECK_INTERVAL_MS;
  }

  private schedule(delay = RESTING_CHECK_INTERVAL_MS): void {
    this.timer = setTimeout(() => {
      if (!this.running) return;
      this.schedule(this.check());
    }, delay);
    this.timer.unref();
  }
}
