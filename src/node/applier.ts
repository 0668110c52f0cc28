import type { FolderLock } from '../folder/folder-lock.js';
import { DEFAULT_PULL_CONCURRENCY } from './config.js';
import type { Scanner } from '../folder/scanner.js';
import type { Store } from '../store/types.js';
import type { ApplyReport } from './apply-report.js';
import { ApplyRun, type IgnoreMatcher } from './apply-run.js';
import type { FetchFiles } from './batch-apply.js';
import type { Exchange, SignatureSource } from './puller.js';
import type { RemoteRecord } from './remote-record.js';
import type { SyncFs } from '../fs/sync-fs.js';

/** Pulls at once (the design's "at most 4 pulls at once"). */
export const APPLY_CONCURRENCY = DEFAULT_PULL_CONCURRENCY;

export interface ApplierInit {
  /** The folder root, canonical (the scanner's `root`). */
  readonly root: string;
  /** The folder's state: read to decide, committed to as each change lands. */
  readonly store: Store;
  /** The folder lock the scanner holds for each scan; held here only to check, rename and commit one path. */
  readonly lock: FolderLock;
  /** Fetches a delta from the peer named by the record (the transfer protocol). */
  readonly exchange: Exchange;
  /** Signatures of bases made before (signature-cache.ts). Default: each computed when needed. */
  readonly signatures?: SignatureSource;
  /**
   * Fetches many whole files from one peer on one stream (the fetch protocol): used for new and
   * small files, where a delta cannot pay (see WHOLE_FILE_BYTES). Default: none, every file goes
   * by `exchange`.
   */
  readonly fetchFiles?: FetchFiles;
  /**
   * The peers to pull a record's exact version from, best first: the one that announced it and
   * others that announced the same version, connected ones only. A pull that fails goes on with the
   * next one not tried yet (asked again after each failure; from the partial file), up to
   * MAX_PULL_SOURCES peers. Default: the announcing peer alone.
   */
  readonly sources?: (remote: RemoteRecord) => readonly string[];
  /**
   * Told of every source that failed a pull, the pull going on with another or not (a peer that
   * sent wrong bytes is penalised even when another peer then delivers the file). Default: nothing.
   */
  readonly onPullFailed?: (peer: string, error: unknown) => void;
  /**
   * Rescans paths (the scanner's `scan({ paths })`): called once at the end of an apply, outside
   * the lock, for conflict copies (new files to record and sync). Default: none.
   */
  readonly rescan?: (paths: readonly string[]) => Promise<unknown>;
  /** Paths the local rules ignore are never written or deleted (the scanner's `ignores`). Default: none ignored. */
  readonly ignores?: IgnoreMatcher;
  /**
   * Throws FolderMissingError unless the folder is still there (the scanner's `checkFolder`):
   * before every change, so an unmounted disk stops the apply. Default: no check.
   */
  readonly checkFolder?: () => Promise<void>;
  /** Files pulled at once. Default APPLY_CONCURRENCY (4). */
  readonly concurrency?: number;
  /** Flushes a batch of fetched files at once (BatchApplyComponents.syncFs). Default: the system's syncfs where it has one. */
  readonly syncFs?: SyncFs | null;
}

/** The parts of ApplierInit a scanner provides: its root, ignore rules, folder check and scans. */
export function scannerHooks(scanner: Scanner): Pick<ApplierInit, 'root' | 'rescan' | 'ignores' | 'checkFolder'> {
  return {
    root: scanner.root,
    rescan: (paths) => scanner.scan({ paths }),
    ignores: scanner.ignores,
    checkFolder: () => scanner.checkFolder(),
  };
}

/**
 * Applies records announced by peers to a local folder, following the planner's decisions and
 * the data-safety rules: every file is rebuilt in a temp file beside its target, verified against
 * the announced content hash and fsynced; then, holding the folder lock, the path is checked to
 * still be what the local record says (else it changed locally: reported, not overwritten), the
 * losing version of a conflict is kept under its conflict name, the file is renamed into place,
 * the folder fsynced, and the record committed. Nothing is written or deleted through a symlink.
 *
 * Calls of `apply` run one after another (a record of a path never races another of the same path).
 */
export class Applier {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly concurrency: number;

  constructor(private readonly init: ApplierInit) {
    this.concurrency = init.concurrency ?? APPLY_CONCURRENCY;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`concurrency must be a whole number from 1, not ${this.concurrency}`);
  }

  /**
   * Decides and applies `remotes`; resolves with what happened at each path. A path that fails is
   * reported (with the peer to blame, if any), never thrown; only FolderMissingError (the folder
   * vanished) rejects, and then nothing more is applied.
   */
  apply(remotes: readonly RemoteRecord[]): Promise<ApplyReport> {
    const run = this.queue.then(() => new ApplyRun({ ...this.init, concurrency: this.concurrency }).run(remotes));
    this.queue = run.catch(() => undefined);
    return run;
  }
}
