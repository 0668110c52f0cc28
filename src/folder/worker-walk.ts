import { Worker } from 'node:worker_threads';
import { ACK, unpackBatch, type WalkWorkerData, type WalkWorkerMessage } from './walk-batch.js';
import type { WalkEntry } from './walker.js';

/**
 * The worker's young generation, at most (V8 lets it grow to 48 MiB): its garbage is one lstat
 * result per entry, dead at once, and a small nursery collects it as fast while keeping ~30 MiB
 * less resident.
 */
const WALK_WORKER_YOUNG_GENERATION_MB = 4;

/**
 * The worker's file is compiled beside this one: walk-worker.js in dist. When the sources run
 * directly (the tests, under tsx), it is walk-worker.ts, and a worker does not inherit tsx's loader
 * (tsx issue 354): it registers the loader before it imports the file.
 */
function startWorker(workerData: WalkWorkerData): Worker {
  const options = { workerData, resourceLimits: { maxYoungGenerationSizeMb: WALK_WORKER_YOUNG_GENERATION_MB } };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./walk-worker.js', import.meta.url), options);
  const entry = new URL('./walk-worker.ts', import.meta.url).href;
  const loader = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(loader)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { ...options, eval: true });
}

export interface WorkerWalkInit extends WalkWorkerData {
  readonly onUnreadable: (path: string, message: string) => void;
  readonly onSkipped: (path: string, message: string) => void;
}

/**
 * A walk (the same Walker, on the real file system) run on a worker thread from the moment it is
 * made, while the scan's thread reads the store: a rescan of a large folder then uses two cores,
 * one for the lstat calls, one for the index. Its entries come out of `batches()` in the order the
 * worker found them; close() ends it early. The worker walks at most a bounded backlog ahead.
 */
export class WorkerWalk {
  private readonly worker: Worker;
  private readonly queue: WalkWorkerMessage[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private ended = false;

  constructor(private readonly init: WorkerWalkInit) {
    const data: WalkWorkerData = { root: init.root, scopes: init.scopes, rulesText: init.rulesText };
    this.worker = startWorker(data);
    this.worker.on('message', (message: WalkWorkerMessage) => this.push(message));
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      if (!this.ended) this.fail(new Error(`the walk's worker thread exited (code ${code}) before the walk ended`));
    });
  }

  /** The entries found, a batch at a time; throws if the walk failed. */
  async *batches(): AsyncGenerator<readonly WalkEntry[]> {
    try {
      for (;;) {
        const message = this.queue.shift();
        if (message === undefined) {
          if (this.failure !== undefined) throw this.failure;
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        switch (message.kind) {
          case 'entries':
            this.worker.postMessage(ACK);
            yield unpackBatch(message.batch);
            break;
          case 'unreadable':
            this.init.onUnreadable(message.path, message.message);
            break;
          case 'skipped':
            this.init.onSkipped(message.path, message.message);
            break;
          case 'failed':
            throw new Error(`walking the folder failed: ${message.message}`);
          case 'done':
            return;
        }
      }
    } finally {
      await this.close();
    }
  }

  /** Stops the worker (at once, wherever the walk is). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.worker.terminate();
  }

  private push(message: WalkWorkerMessage): void {
    this.queue.push(message);
    this.wakeUp();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
