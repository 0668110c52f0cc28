import { access, realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { fetchStatus } from '../control/control-client.js';
import type { ConflictStatus, NodeStatus, PeerStatus, TransferStatus } from '../control/status.js';
import { STATE_DIRECTORY } from '../folder/folder-root.js';
import { CliError, printable } from './errors.js';
import { formatBytes } from './progress.js';

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

function peerLines(peers: readonly PeerStatus[]): string[] {
  return peers.map((peer) => `  ${peer.id}  ${printable(peer.address)}  connected ${since(peer.connectedSince)} ago`);
}

function transferLines(transfers: readonly TransferStatus[]): string[] {
  return transfers.map((t) => `  ${printable(t.path)}  from ${t.peer.slice(-8)}: ${formatBytes(t.bytes)} received (file ${formatBytes(t.size)})`);
}

function conflictLines(conflicts: readonly ConflictStatus[]): string[] {
  return conflicts.map((c) => `  ${printable(c.path)}  (a losing version of ${printable(c.original)}, ${formatBytes(c.size)})`);
}

export function formatStatus(status: NodeStatus): string {
  const { node, folder, peers, transfers, conflicts } = status;
  const lines = [`mesh node ${node.id} on ${printable(folder.root)}, up ${since(node.startedAt)}`];
  if (node.addresses.length > 0) lines.push(`  listening on ${node.addresses.join(', ')}`);
  const state = folder.inSync ? 'in sync' : `needs ${plural(folder.needFiles, 'change')} (${formatBytes(folder.needBytes)})`;
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
  program
    .command('conflicts')
    .description('list the conflict copies in a folder (the losing versions of concurrent edits)')
    .argument('[dir]', 'the folder (default: the current directory)')
    .option('--json', 'print the conflicts as JSON')
    .action((dir: string | undefined, options: ReportOptions) =>
      report(
        dir,
        options,
        (s) => s.conflicts,
        (s) => (s.conflicts.length === 0 ? 'no conflicts\n' : `${conflictLines(s.conflicts).join('\n')}\n`),
      ),
    );
}
