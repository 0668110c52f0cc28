/** Where a scan is, for a progress bar with an ETA. */
export interface ScanProgress {
  /** 'walking': listing the tree and finding what changed; 'hashing': reading changed files. */
  readonly phase: 'walking' | 'hashing';
  readonly filesSeen: number;
  /** Files found changed (or all files, for a full scan), known by the end of the walk. */
  readonly filesToHash: number;
  readonly filesHashed: number;
  readonly bytesToHash: number;
  readonly bytesHashed: number;
}

/** Least time between two progress calls: a terminal redraws at most this often. */
export const PROGRESS_INTERVAL_MS = 200;

/** The scan's counters, handed to a callback at a bounded rate. */
export class ProgressMeter {
  phase: ScanProgress['phase'] = 'walking';
  filesSeen = 0;
  filesToHash = 0;
  filesHashed = 0;
  bytesToHash = 0;
  bytesHashed = 0;
  private lastCall = -Infinity;

  constructor(
    private readonly callback: ((progress: ScanProgress) => void) | undefined,
    private readonly intervalMs = PROGRESS_INTERVAL_MS,
  ) {}

  /** Calls back if the interval has passed since the last call. */
  tick(): void {
    if (this.callback !== undefined && performance.now() - this.lastCall >= this.intervalMs) this.report();
  }

  /** Calls back now (a phase starts or the scan ends: the bar must show it). */
  report(): void {
    if (this.callback === undefined) return;
    this.lastCall = performance.now();
    const { phase, filesSeen, filesToHash, filesHashed, bytesToHash, bytesHashed } = this;
    this.callback({ phase, filesSeen, filesToHash, filesHashed, bytesToHash, bytesHashed });
  }
}
