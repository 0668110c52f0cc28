import type { Store } from '../store/types.js';
import { nodeFolderFs, type FolderFs } from './folder-fs.js';
import { checkFolder, readFolderIdentity, resolveRoot, type FolderIdentity } from './folder-root.js';
import type { FolderLock } from './folder-lock.js';
import { IgnoreRules } from './ignore.js';
import type { ScanProgress } from './progress.js';
import type { ScanReport } from './report.js';
import { ScanRun, type ScanOptions } from './scan-run.js';

export interface ScannerInit {
  /** The folder root; a symlink to it is resolved once, here. It must hold `.mesh` (initFolder). */
  readonly root: string;
  /** The folder's state: records are read from and committed to it. */
  readonly store: Store;
  /** Called during a scan at most every `progressIntervalMs` (plus once as each phase starts and at the end). */
  readonly onProgress?: (progress: ScanProgress) => void;
  /** Default PROGRESS_INTERVAL_MS (200 ms). */
  readonly progressIntervalMs?: number;
  /** File-system access; default the real one. Tests inject failures here. */
  readonly fs?: FolderFs;
  /**
   * The folder's lock, shared with whatever else changes the folder (the applier of `mesh join`):
   * each scan holds it from start to end. Default: none (a scanner alone needs none).
   */
  readonly lock?: FolderLock;
  /** Records in scope from which a scan walks on a worker thread; default WORKER_WALK_MIN_ENTRIES. */
  readonly workerWalkMinEntries?: number;
}

/**
 * Opens a scanner for the folder at `init.root`: remembers which directory the root is, so a scan
 * can tell it from an empty mount point later. Throws FolderMissingError if the root or its
 * `.mesh` is missing, IgnoreFileError if `.meshignore` cannot be read.
 */
export async function openScanner(init: ScannerInit): Promise<Scanner> {
  const fs = init.fs ?? nodeFolderFs;
  const root = await resolveRoot(init.root, fs);
  const identity = await readFolderIdentity(root, fs);
  const ignores = new IgnoreRules(root, fs);
  await ignores.reload();
  return new Scanner(root, identity, ignores, fs, init);
}

/**
 * Keeps the store's records of one folder in step with its files: finds what was added, changed,
 * moved and deleted since the records were made, and commits new versions for them. Scans run one
 * at a time (a scan requested during another starts when it ends), each holding the folder lock
 * (ScannerInit.lock) when there is one.
 */
export class Scanner {
  private queue: Promise<unknown> = Promise.resolve();
  /** Files hashed too soon after they were modified to trust their metadata next time. */
  private readonly racy = new Set<string>();

  /** Use openScanner. */
  constructor(
    /** The canonical absolute path of the folder root. */
    readonly root: string,
    private readonly identity: FolderIdentity,
    /** The folder's ignore rules as of the last scan (or open); a watcher may filter events with them. */
    readonly ignores: IgnoreRules,
    private readonly fs: FolderFs,
    private readonly init: ScannerInit,
  ) {}

  /**
   * Scans the folder, or only `options.paths`, and records what changed. Throws FolderMissingError
   * (recording nothing more, and no delete at all) if the root vanished, was replaced or lost its
   * `.mesh`; a file or folder that cannot be read is reported in `errors` and left as recorded.
   * When `.meshignore` changed since the last scan, the whole folder is walked whatever `paths` says.
   * `options.signal` aborts it (see ScanOptions).
   */
  scan(options: ScanOptions = {}): Promise<ScanReport> {
    const scan = () =>
      new ScanRun(
        {
          root: this.root,
          store: this.init.store,
          fs: this.fs,
          ignores: this.ignores,
          checkFolder: () => this.checkFolder(),
          onProgress: this.init.onProgress,
          progressIntervalMs: this.init.progressIntervalMs,
          racy: this.racy,
          workerWalkMinEntries: this.init.workerWalkMinEntries,
        },
        options,
      ).run();
    const { lock } = this.init;
    const run = this.queue.then(() => (lock === undefined ? scan() : lock.run(scan)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Throws FolderMissingError unless the root is the directory it was at open and holds `.mesh`. */
  checkFolder(): Promise<void> {
    return checkFolder(this.root, this.identity, this.fs);
  }
}
