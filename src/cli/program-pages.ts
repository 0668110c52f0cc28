import { readFileSync, realpathSync } from 'node:fs';
import { loadMadvise } from '../os/libc.js';
import { parseMappings, type Mapping } from '../os/proc-maps.js';

/**
 * Lets go of the pages of Node's own binary that a node mapped once and no longer uses. A node
 * maps ~43-49 MiB of /usr/bin/node (code, the startup snapshot, tables), most of it touched only
 * while starting, yet counted in its RSS for as long as it runs: a node moving a 256 MiB file used
 * ~25 MiB of them (bench:mesh). madvise(MADV_DONTNEED) over those mappings drops them from this
 * process's page tables; the page cache keeps them, and a page used again is mapped back by a minor
 * fault, as after the kernel's own reclaim. MADV_PAGEOUT (what mapped-pages.ts uses for LevelDB's
 * tables) would skip every page another Node process also maps.
 *
 * MADV_DONTNEED on a private mapping discards the process's own copies of pages it wrote, so only
 * mappings that cannot hold any are chosen: not writable, and without anonymous pages (the
 * relocated read-only data that the loader wrote before sealing it has some). The binary's
 * mappings stay in place for the life of the process, so the ranges read are never reused for
 * anything else.
 */

/** Linux's MADV_DONTNEED (include/uapi/asm-generic/mman-common.h). */
const MADV_DONTNEED = 4;

/** The mappings of `program` whose pages are all clean copies of the file. */
export function droppableMappings(mappings: readonly Mapping[], program: string): Mapping[] {
  return mappings.filter((m) => m.path === program && !m.permissions.includes('w') && m.anonymousKiB === 0);
}

/** Drops the program's clean pages from the RSS; returns the bytes of the ranges advised. */
export type ProgramPagesRelease = () => number;

/**
 * madvise(MADV_DONTNEED) over the binary's clean mappings, or undefined where it cannot be called.
 * The mappings are read once: they stay for the life of the process, and a read-only one never
 * gains pages of its own. Each release is then a few system calls, with nothing allocated (reading
 * and parsing /proc/self/smaps at every rest made garbage enough to end the rest it marked).
 */
export async function loadProgramPagesRelease(program = process.execPath): Promise<ProgramPagesRelease | undefined> {
  const madvise = await loadMadvise();
  if (madvise === undefined) return undefined;
  let mappings: Mapping[];
  try {
    // /proc names files by their real paths.
    mappings = droppableMappings(parseMappings(readFileSync('/proc/self/smaps', 'utf8')), realpathSync(program));
  } catch {
    return undefined;
  }
  return () => {
    let advised = 0;
    for (const mapping of mappings) {
      if (madvise(mapping.start, mapping.end - mapping.start, MADV_DONTNEED) === 0) advised += Number(mapping.end - mapping.start);
    }
    return advised;
  };
}

/**
 * Least time between two releases. The pages a resting node keeps using come back within a second
 * of a release (~7 MiB here: timers, the collector, keep-alives), for ~5-10 ms of CPU; a node at
 * rest still comes to rest again every few seconds (collections, `mesh status` polls), and
 * releasing at each of those cost bench:pi's idle node 0.1-0.2% of its core at a 10 s interval.
 */
export const RELEASE_INTERVAL_MS = 30_000;

/**
 * Releases the binary's pages when the node comes to rest (`atRest`), unless it did less than
 * RELEASE_INTERVAL_MS ago: then they wait for the next rest.
 */
export class ProgramPagesAtRest {
  private lastRelease = -Infinity;
  /** Releases done, for tests and logs. */
  releases = 0;

  constructor(
    private readonly release: ProgramPagesRelease,
    private readonly now: () => number = Date.now,
  ) {}

  atRest(): void {
    const now = this.now();
    if (now - this.lastRelease < RELEASE_INTERVAL_MS) return;
    this.lastRelease = now;
    this.release();
    this.releases++;
  }
}
