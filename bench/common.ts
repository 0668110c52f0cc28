/** What the benchmarks share: deterministic test data and measurements of child processes. */
import { createCipheriv, createHash, type Cipher } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';

/** A fixed key per label: AES-CTR keystream is a seeded PRNG that runs at gigabytes per second. */
export function keystream(label: string): Cipher {
  const digest = createHash('sha256').update(label).digest();
  return createCipheriv('aes-128-ctr', digest.subarray(0, 16), digest.subarray(16, 32));
}

/** `length` pseudo-random bytes for `label`, in pieces of `chunk` bytes (never held whole). */
export async function* randomChunks(label: string, length: number, chunk: number): AsyncGenerator<Buffer> {
  const cipher = keystream(label);
  const zeros = Buffer.alloc(chunk);
  for (let done = 0; done < length; done += chunk) {
    yield cipher.update(zeros.subarray(0, Math.min(chunk, length - done)));
  }
}

export function xorshift32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** VmHWM (peak resident set) of a live process in KiB, or 0 once it has gone. */
export function highWaterKiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? 0 : Number(match[1]);
  } catch {
    return 0; // exited between two polls
  }
}

/** The median: one noisy run out of three does not move it. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const RSS_POLL_MS = 10;

export interface MeasuredRun {
  /** From spawn to exit. */
  seconds: number;
  /** Peak resident set, polled every RSS_POLL_MS while it ran. */
  peakRssKiB: number;
  stdout: Buffer;
}

/**
 * Runs a command to completion, measuring its wall time and peak RSS. Rejects, with its stderr, when
 * it exits other than 0. `onSpawn` gets the child (so a signal handler can kill it) and is called
 * again with undefined when it has gone.
 */
export function runMeasured(
  command: string,
  args: readonly string[],
  onSpawn: (child: ChildProcess | undefined) => void = () => undefined,
): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn(child);
    let end = start;
    let peakRssKiB = 0;
    const poll = (): void => {
      peakRssKiB = Math.max(peakRssKiB, highWaterKiB(child.pid));
    };
    const timer = setInterval(poll, RSS_POLL_MS);
    poll();
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('exit', () => {
      end = process.hrtime.bigint();
      clearInterval(timer);
    });
    child.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      onSpawn(undefined);
      if (code === 0) return resolve({ seconds: Number(end - start) / 1e9, peakRssKiB, stdout: Buffer.concat(stdout) });
      const status = signal === null ? `exit code ${code}` : `signal ${signal}`;
      const output = Buffer.concat(stderr).toString('utf8').trim();
      reject(new Error(`\`${[basename(command), ...args].join(' ')}\` failed (${status})${output === '' ? '' : `:\n${output}`}`));
    });
  });
}

/** The machine a benchmark ran on, printed and written with its figures. */
export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  os: string;
  memoryGiB: number;
  /** Other work on the machine skews every figure. */
  loadAverage1m: number;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus.length,
    node: process.version,
    os: `${os.platform()} ${os.release()}`,
    memoryGiB: os.totalmem() / 1024 ** 3,
    loadAverage1m: os.loadavg()[0] ?? 0,
  };
}

/** Whether a file under `root`/src changed since `built` (dist/) was: the benchmark would measure old code. */
export function sourcesChangedSince(root: string, built: string): boolean {
  const builtAt = statSync(built).mtimeMs;
  const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' });
  return sources.some((file) => file.endsWith('.ts') && statSync(join(root, 'src', file)).mtimeMs > builtAt);
}

/** An error the user can fix (a missing tool, a bad setting): printed as its message alone. */
export class BenchError extends Error {}

/** A benchmark's file size setting, in whole MiB: its default and bounds. */
export interface FileMibSetting {
  fallback: number;
  min: number;
  max: number;
}

/** The file size in environment variable `name` (whole MiB), the fallback when unset; a BenchError outside the bounds. */
export function fileMibFromEnvironment(name: string, { fallback, min, max }: FileMibSetting): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const mib = Number(raw);
  if (!Number.isInteger(mib) || mib < min || mib > max) throw new BenchError(`${name} must be a whole number of MiB from ${min} to ${max}, not ${raw}`);
  return mib;
}

/**
 * Runs a benchmark's main and sets the exit code it returns; a BenchError is one line on stderr,
 * anything else also says where it came from (its stack), and exits 1.
 */
export async function runBench(name: string, main: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (error) {
    if (error instanceof BenchError) process.stderr.write(`${error.message}\n`);
    else process.stderr.write(`${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
