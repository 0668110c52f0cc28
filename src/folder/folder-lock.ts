/**
 * One folder-wide lock, shared by the scanner and the applier of a folder, so that neither sees
 * the other half-way: a scan never finds a pulled file between its rename and its record (it would
 * record it as a local edit), and an apply never replaces a file while a scan is deciding about it.
 *
 * An async mutex: holders run one at a time in the order they asked (FIFO). It is not re-entrant:
 * code holding it must not ask for it again (a scan started from inside `run` would wait forever).
 * The scanner holds it for each whole scan; the applier only for the short check, rename and
 * commit of one path, never while bytes are transferred.
 */
export class FolderLock {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  /** Whether someone holds the lock or waits for it. */
  get busy(): boolean {
    return this.holders > 0;
  }

  /** Runs `fn` while holding the lock, after every earlier holder has finished (failed or not). */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.holders++;
    const result = this.tail.then(fn).finally(() => {
      this.holders--;
    });
    // The next holder waits for this one whatever its outcome; the caller sees the outcome.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
