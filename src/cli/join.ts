import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { ApplyReport } from '../node/apply-report.js';
import type { RebuildAttempt } from '../delta/index.js';
import type { MeshNode, MeshNodeEvent } from '../node/mesh-node.js';
import type { ScanReport } from '../folder/report.js';
import { CliError, printable } from './errors.js';
import { BULK_FLOW_BYTES_PER_WINDOW, bulkFlowing, favourMemory } from './memory-mode.js';
import { limitMallocArenas, startMemoryTrim } from './memory-trim.js';
import { tierUpLater } from './tier-up.js';
import { DEFAULT_PULL_CONCURRENCY, MAX_PULL_CONCURRENCY, MAX_WATCH_DELAY_SETTING_MS } from '../node/config.js';
import { DEFAULT_WATCH_DELAY_MS } from '../folder/watch-timing.js';
import { parseInteger } from './options.js';
import { LiveStatus } from './live-status.js';
import { formatBytes } from '../units.js';
import { STATE_DIRECTORY } from '../folder/folder-root.js';

interface JoinOptions {
  key?: string;
  replaceKey?: boolean;
  port?: number;
  peer?: string[];
  mdns: boolean;
  pullConcurrency?: number;
  watchDelayMs?: number;
  maxSendKibps?: number;
  maxRecvKibps?: number;
  gui?: string | true;
  verbose?: boolean;
  quiet?: boolean;
}

/** An integer option within bounds, or one clear line naming it. */
function bounded(option: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const number = parseInteger(value, option);
    if (number < min || number > max) throw new InvalidArgumentError(`${option} must be from ${min} to ${max}`);
    return number;
  };
}

type Verbosity = 'quiet' | 'normal' | 'verbose';

/** Where log lines go: above the live status area on a terminal, else straight to stdout. */
let liveStatus: LiveStatus | undefined;

function line(text: string): void {
  const stamped = `${new Date().toISOString()} ${text}`;
  if (liveStatus === undefined) process.stdout.write(`${stamped}\n`);
  else liveStatus.log(stamped);
}

const KEY_SOURCES = {
  flag: 'given with --key',
  env: 'given in MESH_KEY',
  stored: 'stored in .mesh/mesh.key',
  new: 'new, stored in .mesh/mesh.key',
} as const;

/** Why a rebuild took more than one attempt: the first rebuilt bytes failed the whole-file check. */
function retried(attempts: readonly RebuildAttempt[]): string {
  const last = attempts.at(-1);
  if (attempts.length < 2) return '';
  return last === 'whole' ? '; rebuilt bytes failed the check twice, sent whole' : '; rebuilt bytes failed the check, redone with full block hashes';
}

function describeApply(report: ApplyReport, peer: string, verbosity: Verbosity): string[] {
  const from = `from ${peer}`;
  const lines: string[] = [];
  for (const o of report.applied) {
    const path = printable(o.path);
    if (o.conflictCopy !== undefined) lines.push(`conflict at ${path}: the other version won, the local one kept as ${printable(o.conflictCopy)}`);
    switch (o.action) {
      case 'file': {
        const pull = o.pull;
        // Another peer than the batch's when the announcing one failed part way.
        const source = pull === undefined ? from : `from ${pull.peer}`;
        if (pull === undefined || pull.source === 'empty') lines.push(`pulled ${path} (empty) ${source}`);
        else if (pull.source === 'move') lines.push(`moved ${printable(pull.from ?? '?')} -> ${path} (0 B received) ${source}`);
        else if (pull.source === 'copy') lines.push(`pulled ${path} (copied from the local ${printable(pull.from ?? '?')}, 0 B received) ${source}`);
        else lines.push(`pulled ${path} (${formatBytes(pull.literalBytes)} received, ${formatBytes(pull.reusedBytes)} reused${retried(pull.attempts)}) ${source}`);
        break;
      }
      case 'directory':
        lines.push(`created folder ${path} ${from}`);
        break;
      case 'symlink':
        lines.push(`created symlink ${path} ${from}`);
        break;
      case 'deleted':
        lines.push(`deleted ${path} ${from}`);
        break;
      case 'metadata':
        if (verbosity === 'verbose') lines.push(`updated permissions/time of ${path} ${from}`);
        break;
      case 'tombstone':
      case 'merged':
        if (verbosity === 'verbose') lines.push(`recorded ${o.action} ${path} ${from}`);
        break;
    }
  }
  for (const f of report.failed) lines.push(`failed to apply ${printable(f.path)} ${from}: ${printable(f.error.message)}`);
  for (const s of report.skipped) {
    // A change this node did not make is worth a line; 'up-to-date' and the like only with -v.
    if (verbosity === 'verbose' || s.reason === 'kept-folder' || s.reason === 'kept-edit' || s.reason === 'local-wins') {
      lines.push(`not applied at ${printable(s.path)} ${from}: ${s.message}`);
    }
  }
  return lines;
}

function describeScan(report: ScanReport): string[] {
  return [
    ...report.added.map((p) => `announced new ${printable(p)}`),
    ...report.modified.map((p) => `announced change of ${printable(p)}`),
    ...report.deleted.map((p) => `announced delete of ${printable(p)}`),
    ...report.moved.map((m) => `announced move ${printable(m.from)} -> ${printable(m.to)}`),
    ...report.errors.map((e) => `could not read ${printable(e.path)}: ${printable(e.message)}`),
  ];
}

/** The log lines of one event (exported for the escaping test). */
export function describeEvent(event: MeshNodeEvent, verbosity: Verbosity): string[] {
  switch (event.kind) {
    case 'listening':
      return [];
    case 'initial-scan': {
      const r = event.report;
      const files = r.counts.added + r.counts.modified + r.counts.moved + r.counts.unchanged + r.counts.metadataUpdated;
      const changed = r.counts.added + r.counts.modified + r.counts.deleted + r.counts.moved;
      return [
        `scanned the folder: ${files} entries, ${r.filesHashed} files hashed (${formatBytes(r.bytesHashed)}), ${changed} changes to announce, ${r.counts.errors} unreadable`,
        ...r.errors.map((e) => `could not read ${printable(e.path)}: ${printable(e.message)}`),
      ];
    }
    case 'peer-connected':
      return [`peer connected: ${event.peer} at ${printable(event.address)}`];
    case 'peer-disconnected':
      return [`peer disconnected: ${event.peer}`];
    case 'applied':
      return describeApply(event.report, event.peer, verbosity);
    case 'scanned':
      return describeScan(event.report);
    case 'error':
      return verbosity === 'quiet' ? [] : [`warning: ${event.peer === undefined ? '' : `peer ${event.peer}: `}${printable(event.message)}`];
    case 'dashboard':
      return [
        `dashboard: ${event.url}`,
        ...(event.loopback
          ? []
          : [`warning: the dashboard is reachable from the network at ${event.url} (no password: anyone who reaches it sees the folder's file names)`]),
      ];
  }
}

/** The default `--gui` address: this machine only (Syncthing's GUI port plus one, so both can run). */
export const DEFAULT_GUI_HOST = '127.0.0.1';
export const DEFAULT_GUI_PORT = 8385;

/** `--gui [ADDRESS]`: "HOST:PORT", "[IPv6]:PORT", "HOST" or "PORT". */
export function parseGuiAddress(value: string | true): { host: string; port: number } {
  if (value === true) return { host: DEFAULT_GUI_HOST, port: DEFAULT_GUI_PORT };
  const match = /^()()(\d{1,5})$/.exec(value) ?? /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*))(?::(\d{1,5}))?$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? DEFAULT_GUI_PORT : Number(match[3]);
  if (match === null || host === undefined || port > 65535) {
    throw new InvalidArgumentError(`--gui takes HOST:PORT, HOST or PORT (like 127.0.0.1:${DEFAULT_GUI_PORT}), not '${value}'`);
  }
  return { host: host === '' ? DEFAULT_GUI_HOST : host, port };
}

/** What a node says when it starts: who it is, where it listens, which folder and key. */
function printBanner(node: MeshNode): void {
  const root = printable(node.root);
  process.stdout.write(
    [
      `mesh: joined ${root}`,
      `  node id:   ${node.network.peerId}`,
      `  listening: ${node.network.listenAddresses.join(' ')}`,
      `  folder:    ${root}`,
      `  mesh key:  ${KEY_SOURCES[node.meshKey.source]}`,
      ...(node.meshKey.source === 'new'
        ? [`  This is a new mesh. Its key: ${node.meshKey.text}`, `  On each other machine, run:  npx mesh join <dir> --key ${node.meshKey.text}`]
        : []),
      '',
    ].join('\n'),
  );
}

/** `mesh join <dir>`: keep the folder identical with the other machines of the mesh, until stopped. */
export function registerJoin(program: Command): void {
  program
    .command('join')
    .description('sync a folder with the other machines of a mesh (found on the LAN by mDNS, or given with --peer) until stopped')
    .argument('<dir>', 'the folder to sync')
    .option('--key <key>', 'the mesh key (as printed by the first machine, or `mesh keygen`); default MESH_KEY, else the stored key, else a new one')
    .option('--replace-key', 'move the folder to the mesh of the given key, replacing the key it has')
    .option('--port <n>', 'TCP port to listen on (default: any free port)', (value) => {
      const port = parseInteger(value, '--port');
      if (port > 65535) throw new InvalidArgumentError('--port must be at most 65535');
      return port;
    })
    .option('--peer <multiaddr>', 'a peer to dial and keep dialling, e.g. /ip4/192.168.1.20/tcp/4001 (repeatable)', (value: string, previous: string[] = []) => [
      ...previous,
      value,
    ])
    .option('--no-mdns', 'do not look for peers on the LAN (use --peer)')
    .option('--pull-concurrency <n>', `files pulled at once (default ${DEFAULT_PULL_CONCURRENCY})`, bounded('--pull-concurrency', 1, MAX_PULL_CONCURRENCY))
    .option('--watch-delay-ms <ms>', `quiet time after a change before it is scanned (default ${DEFAULT_WATCH_DELAY_MS})`, bounded('--watch-delay-ms', 0, MAX_WATCH_DELAY_SETTING_MS))
    .option('--max-send-kibps <n>', 'upload limit in KiB/s (default 0: none)', bounded('--max-send-kibps', 0, 4 * 1024 * 1024))
    .option('--max-recv-kibps <n>', 'download limit in KiB/s (default 0: none)', bounded('--max-recv-kibps', 0, 4 * 1024 * 1024))
    .option('--gui [address]', `serve a live dashboard in a browser at ADDRESS (default ${DEFAULT_GUI_HOST}:${DEFAULT_GUI_PORT}: this machine only)`)
    .option('-v, --verbose', 'also print skipped paths and metadata-only changes')
    .option('-q, --quiet', 'print only changes, no warnings')
    .action(async (dir: string, options: JoinOptions, command: Command) => {
      const verbosity: Verbosity = options.quiet === true ? 'quiet' : options.verbose === true ? 'verbose' : 'normal';
      favourMemory(); // a node runs for days
      await limitMallocArenas(); // before the index is opened and its threads take arenas
      tierUpLater();
      // Listened for from the start: a stop asked for while the node opens or starts (systemd's
      // SIGTERM right after a start, say) is a clean stop once it can be, not death by signal.
      let stopRequested: () => void = () => undefined;
      const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
      const onSignal = (): void => stopRequested();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        // Loaded here: libp2p is heavy, and other commands do not need it.
        const { MeshNode } = await import('../node/mesh-node.js');
        const node = await MeshNode.open({
          dir,
          key: options.key,
          replaceKey: options.replaceKey === true,
          port: options.port,
          peers: options.peer,
          // --no-mdns only when given: otherwise the folder's setting (.mesh/config) decides.
          mdns: command.getOptionValueSource('mdns') === 'cli' ? options.mdns : undefined,
          pullConcurrency: options.pullConcurrency,
          watchDelayMs: options.watchDelayMs,
          maxSendKiBps: options.maxSendKibps,
          maxRecvKiBps: options.maxRecvKibps,
          gui: options.gui === undefined ? undefined : parseGuiAddress(options.gui),
          onEvent: (event) => {
            if (event.kind === 'listening') printBanner(node);
            for (const text of describeEvent(event, verbosity)) line(text);
          },
          onBulkFlow: bulkFlowing,
          bulkFlowBytesPerWindow: BULK_FLOW_BYTES_PER_WINDOW,
        });
        // From before the first scan, whose garbage is the largest a node at rest keeps (bench:pi).
        const stopTrimming = await startMemoryTrim(path.join(dir, STATE_DIRECTORY));
        try {
          try {
            await node.start();
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(String(error))) {
              throw new CliError(`port ${options.port ?? 0} is already in use (choose another with --port, or leave it out for any free port)`);
            }
            throw error;
          }
          // A terminal gets a status area under the log (peers, what is left, rate, ETA, large pulls).
          if (process.stdout.isTTY === true) {
            liveStatus = new LiveStatus(() => node.status());
            liveStatus.start();
          }
          await stopped;
          liveStatus?.stop();
          liveStatus = undefined;
          line('stopping');
        } finally {
          stopTrimming();
          await node.stop();
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      // libp2p keeps the process alive for a moment after stop(); the node is closed, leave now.
      process.exit(0);
    });
}
