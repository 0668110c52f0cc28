/** One mapping of /proc/self/maps or /proc/self/smaps. */
export interface Mapping {
  start: bigint;
  end: bigint;
  permissions: string;
  /** The file's real path, a name such as [stack], or '' for anonymous memory. */
  path: string;
  /** The mapping's anonymous pages (the process's own copies), from smaps; 0 in maps text. */
  anonymousKiB: number;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/;
const ANONYMOUS = /^Anonymous:\s+(\d+) kB$/;

/** The mappings of /proc/self/maps or /proc/self/smaps text ("start-end perms offset dev inode path" lines). */
export function parseMappings(text: string): Mapping[] {
  const mappings: Mapping[] = [];
  for (const line of text.split('\n')) {
    const header = HEADER.exec(line);
    if (header !== null) {
      mappings.push({
        start: BigInt(`0x${header[1]}`),
        end: BigInt(`0x${header[2]}`),
        permissions: header[3],
        path: header[4],
        anonymousKiB: 0,
      });
      continue;
    }
    const anonymous = ANONYMOUS.exec(line);
    if (anonymous !== null && mappings.length > 0) mappings[mappings.length - 1].anonymousKiB = Number(anonymous[1]);
  }
  return mappings;
}
