/**
 * Fault injection for the crash tests: with `MESH_TEST_CRASH_AT=<point>` in its environment the
 * process kills itself with SIGKILL (what a power cut or the OOM killer leaves) on reaching that
 * point, so a test can prove what a restart makes of the state left behind. Unset, it costs one
 * comparison.
 */
export type CrashPoint =
  /** A pulled file was renamed into place and its folder fsynced; its record is not committed yet. */
  'placed-before-commit';

const CRASH_AT = process.env.MESH_TEST_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}
