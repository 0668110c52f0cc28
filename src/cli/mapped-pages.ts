import { readFileSync } from 'node:fs';
import { loadLibc } from '../os/libc.js';

/**
 * Hands back the pages of memory-mapped files a node has read but no longer needs: LevelDB maps
 * each table file it opens (on 64-bit systems; classic-level gives no way to turn that off), so
 * every page a scan, an index exchange or a compaction once read stays in the RSS, around the
 * 2 MiB block cache the store is given (level-store.ts). bench:pi's node indexing 100,000 files
 * kept ~35 MiB of them at rest. madvise(MADV_PAGEOUT) asks the kernel to reclaim them: they are
 * clean copies of file data, read again from the file when LevelDB next needs them. Unlike
 * MADV_DONTNEED it is only advice on any kind of memory, so a range unmapped and reused by
 * something else between reading /proc/self/maps and the call loses nothing. Done at rest, and
 * with each trim while a node works (its RSS grew by 8 MiB: an index exchange of 100,000 files
 * mapped up to 34 MiB of tables), not more often: LevelDB reads many of the same pages again,
 * from the disk once they are reclaimed. Linux 5.4 or later, through koffi.
 */

/** Linux's MADV_PAGEOUT (include/uapi/asm-generic/mman-common.h). */
const MADV_PAGEOUT = 21;

/** One mapping of a file, as /proc/self/maps lists it. */
export interface FileMapping {
  start: bigint;
  end: bigint;
  path: string;
}

/** The file mappings of /proc/self/maps text ("start-end perms offset dev inode path"). */
export function parseFileMappings(maps: string): FileMapping[] {
  const mappings: FileMapping[] = [];
  for (const line of maps.split('\n')) {
    const match = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s+(\/.*)$/.exec(line);
    if (match === null) continue;
    mappings.push({ start: BigInt(`0x${match[1]}`), end: BigInt(`0x${match[2]}`), path: match[3] });
  }
  return mappings;
}

/** Pages out every mapping whose file `wanted` picks; returns the bytes of the ranges advised. */
export type PageOutFunction = (wanted: (path: string) => boolean) => number;

/** madvise(MADV_PAGEOUT) over chosen file mappings, or undefined where it cannot be called (see loadLibc). */
export async function loadPageOut(): Promise<PageOutFunction | undefined> {
  const libc = await loadLibc();
  if (libc === undefined) return undefined;
  try {
    const madvise = libc.func('int madvise(uintptr_t addr, size_t length, int advice)') as (addr: bigint, length: bigint, advice: number) => number;
    return (wanted) => {
      let advised = 0;
      for (const mapping of parseFileMappings(readFileSync('/proc/self/maps', 'utf8'))) {
        if (!wanted(mapping.path)) continue;
        // A kernel before 5.4 answers EINVAL: nothing happens, as nothing needs to.
        if (madvise(mapping.start, mapping.end - mapping.start, MADV_PAGEOUT) === 0) advised += Number(mapping.end - mapping.start);
      }
      return advised;
    };
  } catch {
    return undefined;
  }
}

/** Picks LevelDB's table files (*.ldb) inside `directory`. */
export function levelTablesIn(directory: string): (path: string) => boolean {
  const prefix = directory.endsWith('/') ? directory : `${directory}/`;
  return (path) => path.startsWith(prefix) && path.endsWith('.ldb');
}
