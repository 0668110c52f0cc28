/** A process's memory and CPU time from /proc, for the benchmarks' per-node figures. */
import { readFileSync } from 'node:fs';

const KIB = 1024;
/** Linux's USER_HZ: the unit of CPU times in /proc/PID/stat. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface Memory {
  rssMiB: number;
  peakRssMiB: number;
}

/** VmRSS and VmHWM (the peak) of a process; NaN fields when it has gone. */
export function memoryOf(pid: number): Memory {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // exited: NaN below
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN) / KIB;
  return { rssMiB: field('VmRSS'), peakRssMiB: field('VmHWM') };
}

/**
 * CPU time (user + system) a process has used so far, in seconds; with `children`, also that of
 * the children it has waited for (a daemon's finished workers). 0 when it has gone.
 */
export function cpuSecondsOf(pid: number, children = false): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0; // exited
  }
  // Fields 14-17 of /proc/PID/stat (utime, stime, cutime, cstime), after the command name (which may hold spaces) in parentheses.
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  const waited = children ? Number(fields[13]) + Number(fields[14]) : 0;
  return (own + waited) / CLOCK_TICKS_PER_SECOND;
}
