import type { FileChange, Store } from '../store/types.js';

/**
 * Changes committed to the store at once: few commits for a first scan (400 for 100,000 files),
 * bounded memory. Pending changes outlive many young-generation collections while the batch
 * fills and is written, so each batch ends up as old-generation garbage: 1000 made a first scan
 * of 100,000 files peak ~30 MiB higher.
 */
export const COMMIT_BATCH_SIZE = 250;

/**
 * Gathers a scan's changes and commits them in batches, one commit at a time, each after
 * `beforeCommit` (the folder check: nothing is committed once the folder is found missing) and
 * followed by `afterCommit` (the node announcing them).
 * Changes added together (a move's tombstone and new record) always land in the same commit.
 */
export class ChangeBatcher {
  private pending: FileChange[] = [];
  private last: Promise<void> = Promise.resolve();
  private failed = false;

  constructor(
    private readonly store: Store,
    private readonly beforeCommit: () => Promise<void>,
    private readonly afterCommit?: () => void,
    private readonly batchSize = COMMIT_BATCH_SIZE,
  ) {}

  async add(...changes: FileChange[]): Promise<void> {
    this.pending.push(...changes);
    if (this.pending.length >= this.batchSize) await this.flush();
  }

  /** Commits what is pending, after every commit already started. */
  flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const run = this.last.then(async () => {
      if (batch.length === 0) return;
      // After a failed commit the scan is over: nothing more is recorded.
      if (this.failed) throw new Error('an earlier commit of this scan failed');
      try {
        await this.beforeCommit();
        await this.store.commit(batch);
      } catch (error) {
        this.failed = true;
        throw error;
      }
      this.afterCommit?.();
    });
    // The next commit waits for this one whatever its outcome; this caller sees the failure.
    this.last = run.catch(() => undefined);
    return run;
  }
}
