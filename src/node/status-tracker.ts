import type { ConflictStatus, FolderStatus, PeerStatus, TransferStatus } from '../control/status.js';
import { caughtUp, type IndexProgress } from '../protocol/index-exchange.js';
import type { TrafficMeter } from '../protocol/traffic.js';
import type { Store } from '../store/types.js';
import type { ApplyReport } from './apply-report.js';
import { parseConflictName } from './conflict-name.js';
import type { RemoteRecord } from './remote-record.js';

/** How long the folder's counts (one pass over the index) are reused: a dashboard asks every second. */
export const FOLDER_COUNTS_TTL_MS = 2_000;
/**
 * At most this share of the time goes to counting, however often status is asked and the index
 * changes: a pass over 100,000 records takes ~0.5 s of a core, which a dashboard asking every
 * second during a sync would otherwise repeat at every change (half of a Raspberry Pi's core).
 */
export const FOLDER_COUNTS_MAX_SHARE = 0.02;

interface FolderCounts {
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly bytes: number;
  readonly conflicts: ConflictStatus[];
}

/** A pull in progress, as the status shows it. */
export interface TransferProgress {
  /** Bytes of the file written so far. */
  advance(bytes: number): void;
  end(): void;
}

/**
 * What a running node knows of itself for `mesh status`: the peers connected and since when, the
 * versions peers announced that are not applied yet, the pulls in progress, and the folder's
 * counts and conflict copies (read from the index, reused as folderCounts says).
 */
export class StatusTracker implements TrafficMeter {
  private readonly peers = new Map<string, Omit<PeerStatus, 'index'>>();
  /** Bytes in and out per connected peer, since it connected. */
  private readonly traffic = new Map<string, { in: number; out: number }>();
  /** Path -> size of a version announced and not yet applied (a failed pull stays until it succeeds). */
  private readonly needed = new Map<string, number>();
  private readonly transfers = new Set<{ status: TransferStatus }>();
  /** The last pass over the index: when it began, how long it took (undefined while it runs). */
  private counts: { at: number; took: number | undefined; stale: boolean; value: Promise<FolderCounts> } | undefined;
  /** Bytes of deltas received since the node started (a rate is its change over time). */
  private receivedBytes = 0;

  constructor(
    private readonly root: string,
    private readonly store: Store,
    /** How far the node has read a connected peer's index (the index exchange's client). */
    private readonly indexProgress: (peer: string) => IndexProgress | undefined = () => undefined,
  ) {}

  peerConnected(id: string, address: string): void {
    this.peers.set(id, { id, address, connectedSince: new Date().toISOString(), bytesIn: 0, bytesOut: 0 });
    this.traffic.set(id, { in: 0, out: 0 });
  }

  peerDisconnected(id: string): void {
    this.peers.delete(id);
    this.traffic.delete(id);
  }

  received(peer: string, bytes: number): void {
    const counts = this.traffic.get(peer);
    if (counts !== undefined) counts.in += bytes;
  }

  sent(peer: string, bytes: number): void {
    const counts = this.traffic.get(peer);
    if (counts !== undefined) counts.out += bytes;
  }

  /** A peer's batch arrived: its records are needed until applied (or found up to date). */
  announced(records: readonly RemoteRecord[]): void {
    for (const record of records) this.needed.set(record.path, record.type === 'file' && !record.deleted ? record.size : 0);
  }

  /** An apply ended: what it applied or skipped is no longer needed; what failed still is. */
  applied(report: ApplyReport): void {
    for (const done of [...report.applied, ...report.skipped]) this.needed.delete(done.path);
    if (report.applied.length > 0) this.countsChanged();
  }

  /** The local index changed (a scan committed): the folder's counts are read again. */
  committed(): void {
    this.countsChanged();
  }

  private countsChanged(): void {
    if (this.counts !== undefined) this.counts.stale = true;
  }

  transferStarted(path: string, peer: string, size: number): TransferProgress {
    const entry = { status: { path, peer, bytes: 0, size, startedAt: new Date().toISOString() } };
    this.transfers.add(entry);
    return {
      advance: (bytes) => {
        entry.status = { ...entry.status, bytes: entry.status.bytes + bytes };
        this.receivedBytes += bytes;
      },
      end: () => this.transfers.delete(entry),
    };
  }

  /** Bytes of deltas pulled since the node started. */
  get pulledBytes(): number {
    return this.receivedBytes;
  }

  peerList(): PeerStatus[] {
    return [...this.peers.values()].map((peer) => {
      const progress = this.indexProgress(peer.id);
      return {
        ...peer,
        bytesIn: this.traffic.get(peer.id)?.in ?? 0,
        bytesOut: this.traffic.get(peer.id)?.out ?? 0,
        index: { received: progress?.received ?? 0, head: progress?.head ?? null },
      };
    });
  }

  transferList(): TransferStatus[] {
    return [...this.transfers].map((entry) => entry.status);
  }

  async folder(): Promise<FolderStatus> {
    const counts = await this.folderCounts();
    let needBytes = 0;
    for (const size of this.needed.values()) needBytes += size;
    const { files, directories, symlinks, bytes } = counts;
    // A peer whose index is still coming may announce more: not in sync until it is read.
    let receivingIndexes = 0;
    for (const peer of this.peers.keys()) {
      const progress = this.indexProgress(peer);
      if (progress === undefined || !caughtUp(progress)) receivingIndexes++;
    }
    const inSync = this.needed.size === 0 && this.transfers.size === 0 && receivingIndexes === 0;
    return { root: this.root, files, directories, symlinks, bytes, needFiles: this.needed.size, needBytes, receivingIndexes, inSync };
  }

  async conflicts(): Promise<ConflictStatus[]> {
    return (await this.folderCounts()).conflicts;
  }

  /**
   * The counts of the last pass, or of a new one when they are older than FOLDER_COUNTS_TTL_MS or
   * the index changed since, but never more often than FOLDER_COUNTS_MAX_SHARE allows, nor while
   * a pass runs.
   */
  private folderCounts(): Promise<FolderCounts> {
    const now = performance.now();
    const last = this.counts;
    if (last !== undefined) {
      const age = now - last.at;
      const due = last.took !== undefined && (last.stale || age > FOLDER_COUNTS_TTL_MS) && age >= last.took / FOLDER_COUNTS_MAX_SHARE;
      if (!due) return last.value;
    }
    const entry = { at: now, took: undefined as number | undefined, stale: false, value: this.countFolder() };
    this.counts = entry;
    entry.value.then(
      () => (entry.took = performance.now() - now),
      // A failed count is not kept: the next request tries again.
      () => {
        if (this.counts === entry) this.counts = undefined;
      },
    );
    return entry.value;
  }

  private async countFolder(): Promise<FolderCounts> {
    let files = 0;
    let directories = 0;
    let symlinks = 0;
    let bytes = 0;
    const conflicts: ConflictStatus[] = [];
    for await (const batch of this.store.scanEntries()) {
      for (const entry of batch) {
        if (entry.deleted) continue;
        if (entry.type === 'directory') directories++;
        else if (entry.type === 'symlink') symlinks++;
        else {
          files++;
          bytes += entry.size;
          const copy = parseConflictName(entry.path);
          if (copy !== undefined) {
            conflicts.push({ path: entry.path, original: copy.original, device: copy.device, size: entry.size, modified: new Date(Number(entry.mtimeNs / 1_000_000n)).toISOString() });
          }
        }
      }
    }
    return { files, directories, symlinks, bytes, conflicts };
  }
}
