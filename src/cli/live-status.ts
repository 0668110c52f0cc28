import cliProgress from 'cli-progress';
import type { NodeStatus, TransferStatus } from '../control/status.js';
import { printable } from './errors.js';
import { readingIndexes } from './status.js';
import { formatBytes, formatDuration } from '../units.js';

/** How often the status area is redrawn from the node's status. */
export const LIVE_STATUS_INTERVAL_MS = 500;
/** A pull of at least this many bytes gets a bar of its own. */
export const LARGE_TRANSFER_BYTES = 8 * 1024 * 1024;
/** The rate is averaged over this long, so one quiet half second does not read as a stall. */
const RATE_WINDOW_MS = 5_000;
/** Longest file name shown on a transfer's bar (its end: the name, not the folders). */
const MAX_NAME_WIDTH = 40;

function shortName(path: string): string {
  const text = printable(path);
  return text.length <= MAX_NAME_WIDTH ? text : `...${text.slice(-(MAX_NAME_WIDTH - 3))}`;
}

/**
 * The status area `mesh join` keeps at the bottom of a terminal: one line with peers, what is left
 * to sync (files and bytes), the download rate and an ETA, and a bar per large pull. Log lines are
 * printed above it. Without a terminal, mesh join prints only its log lines (this is not used).
 */
export class LiveStatus {
  private readonly bars: cliProgress.MultiBar;
  private readonly summary: cliProgress.SingleBar;
  private readonly transfers = new Map<string, cliProgress.SingleBar>();
  private readonly samples: { at: number; received: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly status: () => Promise<NodeStatus>,
    stream: NodeJS.WriteStream = process.stdout,
  ) {
    this.bars = new cliProgress.MultiBar(
      { stream, hideCursor: true, clearOnComplete: false, format: '{text}', autopadding: true },
      cliProgress.Presets.shades_classic,
    );
    this.summary = this.bars.create(1, 0, { text: 'starting' }, { format: '{text}' });
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), LIVE_STATUS_INTERVAL_MS);
    this.timer.unref();
  }

  /** A log line, printed above the status area. */
  log(text: string): void {
    this.bars.log(`${text}\n`);
  }

  stop(): void {
    clearInterval(this.timer);
    this.bars.stop();
  }

  private async refresh(): Promise<void> {
    let status: NodeStatus;
    try {
      status = await this.status();
    } catch {
      return; // The node is stopping: the last status stays.
    }
    const now = Date.now();
    this.samples.push({ at: now, received: status.received });
    while (this.samples.length > 2 && now - this.samples[0].at > RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    const seconds = (now - first.at) / 1000;
    const rate = seconds > 0 ? (status.received - first.received) / seconds : 0;
    const { folder, peers } = status;
    const reading = readingIndexes(folder.receivingIndexes);
    const toGo = `to go: ${folder.needFiles.toLocaleString('en-US')} files, ${formatBytes(folder.needBytes)}, ${formatBytes(rate)}/s, ETA ${formatDuration(rate > 0 ? folder.needBytes / rate : Number.POSITIVE_INFINITY)}`;
    let state = `in sync (${folder.files.toLocaleString('en-US')} files, ${formatBytes(folder.bytes)})`;
    if (!folder.inSync) {
      if (folder.receivingIndexes === 0) state = toGo;
      else state = folder.needFiles === 0 ? reading : `${toGo} | ${reading}`;
    }
    this.summary.update(0, { text: `peers: ${peers.length} | ${state}` });
    this.showTransfers(status.transfers.filter((t) => t.size >= LARGE_TRANSFER_BYTES));
  }

  private showTransfers(large: readonly TransferStatus[]): void {
    const keys = new Set(large.map((t) => `${t.peer} ${t.path}`));
    for (const [key, bar] of this.transfers) {
      if (keys.has(key)) continue;
      this.bars.remove(bar);
      this.transfers.delete(key);
    }
    for (const transfer of large) {
      const key = `${transfer.peer} ${transfer.path}`;
      const text = `  ${shortName(transfer.path)}`;
      const bar =
        this.transfers.get(key) ??
        this.bars.create(transfer.size, 0, { text }, { format: '{text} [{bar}] {percentage}% | {received}' });
      this.transfers.set(key, bar);
      bar.update(Math.min(transfer.bytes, transfer.size), { text, received: `${formatBytes(transfer.bytes)} of ${formatBytes(transfer.size)}` });
    }
  }
}
