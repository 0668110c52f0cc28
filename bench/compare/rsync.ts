/**
 * rsync in bench:compare: a daemon on node 1 (one writable module on its folder) and, after each
 * change on node 0, a push `rsync -a --delete --no-whole-file A/ rsync://B/bench/` from node 0, as a
 * script run by a watcher with no delay would. One-way only: no concurrent edits, no 3 nodes.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Lan } from '../../test/netns.js';
import type { Cluster, Tool } from './cluster.js';
import { lastLines, logPath } from './logs.js';

const MODULE = 'bench';
const START_TIMEOUT_MS = 30_000;
const POLL_MS = 100;
/** --modify-window=-1: mtimes compared to the nanosecond, else two same-size edits within one second look unchanged. */
export const PUSH_ARGS = ['-a', '--delete', '--no-whole-file', '--modify-window=-1'];

/** Runs a child to its end; resolves with its stdout, rejects with its stderr when it fails. */
function finished(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${what} exited ${code}: ${stderr.trim()}`))));
  });
}

/** Seconds of `times`'s second line (the shell's children, user and system): "0m1.230s 0m0.450s". */
function childrenCpuSeconds(timesOutput: string): number {
  const line = timesOutput.trim().split('\n').at(-1) ?? '';
  return [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
}

export const rsyncTool: Tool = {
  name: 'rsync',
  twoWay: false,
  setup: `rsync daemon on B (one module, read-write, no chroot), after each change on A a push \`rsync ${PUSH_ARGS.join(' ')} A/ rsync://B/${MODULE}/\` started at once (no watcher delay); no compression`,
  async start(scope, lan: Lan, workDir, count): Promise<Cluster> {
    if (count !== 2) throw new Error('rsync runs one way, between two nodes');
    const dirs = [path.join(workDir, 'rsync-0'), path.join(workDir, 'rsync-1')];
    for (const dir of dirs) await mkdir(dir);
    const conf = path.join(workDir, 'rsyncd.conf');
    await writeFile(conf, `use chroot = false\n[${MODULE}]\n  path = ${dirs[1]}\n  read only = false\n  uid = root\n  gid = root\n`);
    const address = lan.hosts[1].address;
    const log = createWriteStream(logPath('rsync', count, 1));
    const daemon = lan.spawn(1, 'rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--address=${address}`, '--log-file=/dev/stderr'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let daemonLog = '';
    for (const stream of [daemon.stdout!, daemon.stderr!]) {
      stream.on('data', (chunk: Buffer) => {
        daemonLog += chunk.toString('utf8');
        log.write(chunk);
      });
    }
    scope.after(async () => void log.end());
    // The daemon is up when A can list its modules.
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        await finished(lan.spawn(0, 'rsync', [`rsync://${address}/`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }), 'rsync module list');
        break;
      } catch (error) {
        if (Date.now() > deadline || daemon.exitCode !== null) throw new Error(`rsync daemon not reachable: ${(error as Error).message}\n${lastLines(daemonLog)}`, { cause: error });
        await sleep(POLL_MS);
      }
    }
    let pushCpuSeconds = 0;
    return {
      tool: 'rsync',
      lan,
      dirs,
      async changed(from) {
        if (from !== 0) throw new Error('rsync pushes from node 0 only');
        // `times` after rsync: the push's own CPU time, which no sampling of the namespace sees once it has exited.
        const script = 'rsync "$@"; status=$?; times; exit $status';
        const child = lan.spawn(0, 'bash', ['-c', script, 'rsync-push', ...PUSH_ARGS, `${dirs[0]}/`, `rsync://${address}/${MODULE}/`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        pushCpuSeconds += childrenCpuSeconds(await finished(child, 'rsync push'));
      },
      failure: () => (daemon.exitCode === null ? undefined : `rsync daemon exited ${daemon.exitCode}\n${lastLines(daemonLog)}`),
      extraCpuSeconds: (index) => (index === 0 ? pushCpuSeconds : 0),
    };
  },
};
