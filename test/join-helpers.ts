// `mesh join` as a real process (src/cli/main.ts through tsx) on a host of a netns LAN, with its
// output collected, and folder trees compared the way a user would: paths, types, contents.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild, type CleanupScope, type HostRef, type Lan } from './netns.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

/** Node arguments that run the `mesh` command: from source through tsx (the tests), or as built. */
export const SOURCE_CLI: readonly string[] = ['--import', TSX, MAIN];
/** The command as `npm run build` makes it, one file (package.json's bin): what the benchmarks measure. */
export const BUILT_CLI: readonly string[] = [fileURLToPath(new URL('../dist/bundle/mesh.js', import.meta.url))];

/** A running `mesh join` and everything it printed. */
export class JoinProcess {
  stdout = '';
  stderr = '';
  readonly exit: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get peerId(): string | undefined {
    return /node id:\s+(\S+)/.exec(this.stdout)?.[1];
  }

  /** Waits until the output matches `pattern`. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stdout)) {
      if (this.child.exitCode !== null) throw new Error(`mesh join exited (${this.child.exitCode}) before ${pattern}\n${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms\n${this.describe()}`);
      await sleep(50);
    }
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }

  describe(): string {
    return `stdout:\n${this.stdout.slice(-6000)}\nstderr:\n${this.stderr.slice(-3000)}`;
  }
}

export interface JoinOptions {
  /** Which build runs; default SOURCE_CLI. */
  cli?: readonly string[];
  /** Environment variables beyond this process's own (e.g. NODE_OPTIONS for a profile). */
  env?: NodeJS.ProcessEnv;
  /** Runs the node as this user and group id (setpriv), e.g. for permissions root would bypass. */
  uid?: number;
}

/** Starts `mesh join <dir> ...args` on a LAN host, the key in MESH_KEY; stopped when the test ends. */
export function startJoin(
  t: CleanupScope,
  lan: Lan,
  host: HostRef,
  dir: string,
  key: string | undefined,
  args: readonly string[] = [],
  options: JoinOptions = {},
): JoinProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (key === undefined) delete env.MESH_KEY;
  else env.MESH_KEY = key;
  const command = [process.execPath, ...(options.cli ?? SOURCE_CLI), 'join', dir, ...args];
  if (options.uid !== undefined) command.unshift('setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups');
  const child = lan.spawn(host, command[0], command.slice(1), { stdio: 'pipe', env });
  const node = new JoinProcess(child);
  t.after(() => node.stop());
  return node;
}

export async function tempFolder(t: CleanupScope, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mesh-join-${name}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Path -> 'dir', 'link:TARGET' or 'file:SHA256' for everything but `.mesh` and mesh's temp files. */
export async function treeOf(root: string): Promise<Map<string, string>> {
  const tree = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(join(root, relative), { withFileTypes: true });
    for (const entry of entries) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (path === '.mesh' || entry.name.startsWith('.mesh-tmp')) continue;
      const absolute = join(root, path);
      if (entry.isDirectory()) {
        tree.set(path, 'dir');
        await walk(path);
      } else if (entry.isSymbolicLink()) tree.set(path, `link:${await readlink(absolute)}`);
      else tree.set(path, `file:${createHash('sha256').update(await readFile(absolute)).digest('hex')}`);
    }
  };
  await walk('');
  return tree;
}

function describeTree(tree: Map<string, string>): string {
  return [...tree].sort().map(([path, what]) => `  ${path} ${what.slice(0, 20)}`).join('\n');
}

/** Resolves once every folder has the same tree (and `expect`, if given, holds of it); else throws after timeoutMs. */
export async function waitForSameTrees(
  dirs: readonly string[],
  timeoutMs: number,
  expect?: (tree: Map<string, string>) => boolean,
  nodes: readonly JoinProcess[] = [],
): Promise<Map<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const trees = await Promise.all(dirs.map((d) => treeOf(d).catch(() => new Map<string, string>())));
    const first = trees[0];
    const same = trees.every((tree) => tree.size === first.size && [...tree].every(([path, what]) => first.get(path) === what));
    if (same && (expect === undefined || expect(first))) return first;
    if (Date.now() > deadline) {
      const logs = nodes.map((node, i) => `node ${i}:\n${node.describe()}`).join('\n');
      throw new Error(`folders differ after ${timeoutMs} ms:\n${trees.map((tree, i) => `${dirs[i]}:\n${describeTree(tree)}`).join('\n')}\n${logs}`);
    }
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
