import { access, realpath } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { fetchStatus, NodeNotRunningError } from '../control/control-client.js';
import type { ConflictStatus, FolderStatus, NodeStatus, PeerStatus, TransferStatus } from '../control/status.js';
import { STATE_DIRECTORY } from '../folder/folder-root.js';
import { INDEX_DIRECTORY } from '../folder/local-folder.js';
import { KEEP_CHOICES, resolveConflict, type KeepChoice } from '../node/conflict-resolution.js';
import { CliError, printable } from './errors.js';
import { formatBytes } from '../units.js';

/** The canonical root of the mesh folder `dir` (default: the current directory), or a clear error. */
export async function meshFolderRoot(dir: string | undefined): Promise<string> {
  const absolute = resolve(dir ?? '.');
  let root: string;
  try {
    root = await realpath(absolute);
  } catch {
    throw new CliError(`${printable(absolute)}: no such folder`);
  }
  try {
    await access(join(root, STATE_DIRECTORY));
  } catch {
    throw new CliError(`${printable(root)} is not a mesh folder (it has no ${STATE_DIRECTORY}; start one with: mesh join ${printable(root)})`);
  }
  return root;
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count.toLocaleString('en-US')} ${count === 1 ? one : many}`;
}

/** "2h 5m", "3m 10s", "42s": how long since `iso`. */
function since(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${seconds % 60}s`;
  return `${seconds}s`;
}

function indexState(peer: PeerStatus): string {
  const { received, head } = peer.index;
  if (head === null) return 'waiting for its index';
  if (received >= head) return 'index read';
  return `reading its index (${Math.floor((100 * received) / head)}%)`;
}

function peerLines(peers: readonly PeerStatus[]): string[] {
  return peers.map(
    (peer) =>
      `  ${peer.id}  ${printable(peer.address)}  connected ${since(peer.connectedSince)} ago, ${formatBytes(peer.bytesIn)} in, ${formatBytes(peer.bytesOut)} out, ${indexState(peer)}`,
  );
}

/** "reading the index of 2 peers": what a folder waits for while peers' indexes come. */
export function readingIndexes(peers: number): string {
  return `reading the index of ${plural(peers, 'peer')}`;
}

/** The folder's sync state in a few words: in sync, or what it is waiting for. */
export function syncState(folder: FolderStatus): string {
  if (folder.inSync) return 'in sync';
  const waits = [];
  if (folder.needFiles > 0 || folder.receivingIndexes === 0) waits.push(`needs ${plural(folder.needFiles, 'change')} (${formatBytes(folder.needBytes)})`);
  if (folder.receivingIndexes > 0) waits.push(readingIndexes(folder.receivingIndexes));
  return waits.join(', ');
}

function transferLines(transfers: readonly TransferStatus[]): string[] {
  return transfers.map((t) => `  ${printable(t.path)}  from ${t.peer.slice(-8)}: ${formatBytes(t.bytes)} received (file ${formatBytes(t.size)})`);
}

export function conflictLines(conflicts: readonly ConflictStatus[], device: string): string[] {
  return conflicts.map((c) => {
    const whose = device.startsWith(c.device) ? "this device's version" : `the version of device ${c.device}`;
    return `  ${printable(c.path)}  (${whose} of ${printable(c.original)}, ${formatBytes(c.size)})`;
  });
}

export function formatStatus(status: NodeStatus): string {
  const { node, folder, peers, transfers, conflicts } = status;
  const lines = [`mesh node ${node.id} on ${printable(folder.root)}, up ${since(node.startedAt)}`];
  if (node.addresses.length > 0) lines.push(`  listening on ${node.addresses.join(', ')}`);
  const state = syncState(folder);
  lines.push(
    `folder: ${plural(folder.files, 'file')}, ${plural(folder.directories, 'folder')}, ${plural(folder.symlinks, 'symlink')}, ${formatBytes(folder.bytes)}; ${state}`,
  );
  lines.push(`peers: ${peers.length} connected`, ...peerLines(peers));
  if (transfers.length > 0) lines.push(`transfers: ${transfers.length}`, ...transferLines(transfers));
  lines.push(conflicts.length === 0 ? 'conflicts: none' : `conflicts: ${conflicts.length} (mesh conflicts lists them)`);
  return `${lines.join('\n')}\n`;
}

interface ReportOptions {
  json?: boolean;
}

async function report(dir: string | undefined, options: ReportOptions, pick: (status: NodeStatus) => unknown, format: (status: NodeStatus) => string): Promise<void> {
  const status = await fetchStatus(await meshFolderRoot(dir));
  process.stdout.write(options.json === true ? `${JSON.stringify(pick(status), null, 2)}\n` : format(status));
}

/** `mesh status`, `mesh peers`, `mesh conflicts`: ask the node running on a folder. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('ask the node running on a folder for its peers, sync state, transfers and conflicts')
    .argument('[dir]', 'the folder (default: the current directory)')
    .option('--json', 'print the status as JSON')
    .action((dir: string | undefined, options: ReportOptions) => report(dir, options, (s) => s, formatStatus));
  program
    .command('peers')
    .description('list the peers the node running on a folder is connected to')
    .argument('[dir]', 'the folder (default: the current directory)')
    .option('--json', 'print the peers as JSON')
    .action((dir: string | undefined, options: ReportOptions) =>
      report(
        dir,
        options,
        (s) => s.peers,
        (s) => (s.peers.length === 0 ? 'no peer connected\n' : `${peerLines(s.peers).join('\n')}\n`),
      ),
    );
  const conflicts = program
    .command('conflicts')
    .description('list the conflict copies in a folder (the losing versions of concurrent edits), or resolve one')
    .argument('[dir]', 'the folder (default: the current directory)')
    .option('--json', 'print the conflicts as JSON')
    .action((dir: string | undefined, options: ReportOptions) =>
      report(
        dir,
        options,
        (s) => s.conflicts,
        (s) => (s.conflicts.length === 0 ? 'no conflicts\n' : `${conflictLines(s.conflicts, s.node.device).join('\n')}\n`),
      ),
    );
  conflicts
    .command('resolve')
    .description("keep this device's version (mine), the other's (theirs) or both of a conflicted file")
    .argument('<path>', 'the file, or one of its conflict copies')
    .requiredOption('--keep <which>', 'mine, theirs or both', (value: string) => {
      if (!(KEEP_CHOICES as readonly string[]).includes(value)) throw new InvalidArgumentError(`--keep takes mine, theirs or both, not '${value}'`);
      return value as KeepChoice;
    })
    .action(async (path: string, options: { keep: KeepChoice }) => {
      const { root, relative } = await locateInMeshFolder(path);
      const outcome = await resolveConflict(root, relative, options.keep, await deviceOf(root));
      const said = {
        replaced: `kept ${printable(outcome.copy)} as ${printable(outcome.original)}`,
        'removed-copy': `kept ${printable(outcome.original)}, removed ${printable(outcome.copy)}`,
        'renamed-copy': `kept both: ${printable(outcome.original)}, and ${printable(outcome.copy)} renamed to ${printable(outcome.action === 'renamed-copy' ? outcome.renamedTo : '')}`,
      }[outcome.action];
      process.stdout.write(`${said}\n`);
    });
}

/** The mesh folder holding `path` (found upward from it) and `path` relative to it. */
async function locateInMeshFolder(path: string): Promise<{ root: string; relative: string }> {
  const absolute = resolve(path);
  let parent: string;
  try {
    parent = await realpath(dirname(absolute));
  } catch {
    throw new CliError(`${printable(dirname(absolute))}: no such folder`);
  }
  for (let dir = parent; ; dir = dirname(dir)) {
    if (await exists(join(dir, STATE_DIRECTORY))) {
      const relativeParent = relative(dir, parent).split(sep).join('/');
      const name = basename(absolute);
      return { root: dir, relative: relativeParent === '' ? name : `${relativeParent}/${name}` };
    }
    if (dirname(dir) === dir) throw new CliError(`${printable(absolute)} is not in a mesh folder (none of its parents has a ${STATE_DIRECTORY})`);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** This device's id: from the running node, else from the folder's index. */
async function deviceOf(root: string): Promise<string> {
  try {
    return (await fetchStatus(root)).node.device;
  } catch (error) {
    if (!(error instanceof NodeNotRunningError)) throw error;
  }
  const { openLevelStore } = await import('../store/level-store.js');
  const store = await openLevelStore(join(root, STATE_DIRECTORY, INDEX_DIRECTORY));
  try {
    return store.deviceId;
  } finally {
    await store.close();
  }
}
