/** Cleanup for a benchmark, with the shape of node:test's `t.after`, so the tests' netns helpers work outside a test. */
import type { CleanupScope } from '../test/netns.js';

export class BenchScope implements CleanupScope {
  private readonly cleanups: (() => Promise<void>)[] = [];

  after(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  /**
   * Runs every cleanup, the last registered first (processes stop before their namespaces and
   * folders go), each even when an earlier one failed; the first failure is thrown at the end.
   */
  async close(): Promise<void> {
    const failures: unknown[] = [];
    while (this.cleanups.length > 0) {
      const cleanup = this.cleanups.pop()!;
      try {
        await cleanup();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}
