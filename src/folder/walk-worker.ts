/**
 * The entry point of a walk on a worker thread (started by WorkerWalk): walks `scopes` with the
 * real file system and the scan's ignore rules, and posts the entries in packed batches, at most
 * MAX_BATCHES_IN_FLIGHT ahead of the scan, so a scan that falls behind holds a bounded backlog.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { nodeFolderFs } from './folder-fs.js';
import { IgnoreRules } from './ignore.js';
import { ACK, BatchPacker, transferables, type WalkWorkerData, type WalkWorkerMessage } from './walk-batch.js';
import { Walker } from './walker.js';

/** Entries per message: few messages, each small. */
const ENTRIES_PER_MESSAGE = 512;
/** Messages posted and not yet taken by the scan, at most: 64,000 entries, about 4 MiB packed, so the walk seldom waits for a scan still reading the store. */
const MAX_BATCHES_IN_FLIGHT = 128;

const port = parentPort;
if (port === null) throw new Error('walk-worker runs only as a worker thread');
const { root, scopes, rulesText } = workerData as WalkWorkerData;

let inFlight = 0;
let taken: (() => void) | undefined;
port.on('message', (message) => {
  if (message !== ACK) return;
  inFlight--;
  taken?.();
});

function post(message: WalkWorkerMessage, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

async function send(packer: BatchPacker): Promise<void> {
  while (inFlight >= MAX_BATCHES_IN_FLIGHT) await new Promise<void>((resolve) => (taken = resolve));
  const batch = packer.take();
  inFlight++;
  post({ kind: 'entries', batch }, transferables(batch));
}

async function walk(): Promise<void> {
  const walker = new Walker({
    root,
    fs: nodeFolderFs,
    ignores: IgnoreRules.fromText(root, rulesText),
    onUnreadable: (path, message) => post({ kind: 'unreadable', path, message }),
    onSkipped: (path, message) => post({ kind: 'skipped', path, message }),
  });
  const packer = new BatchPacker(ENTRIES_PER_MESSAGE);
  for await (const batch of walker.walk(scopes)) {
    for (const entry of batch) {
      packer.add(entry);
      if (packer.full) await send(packer);
    }
  }
  if (packer.length > 0) await send(packer);
  post({ kind: 'done' });
}

walk().catch((error: unknown) => post({ kind: 'failed', message: error instanceof Error ? error.message : String(error) }));
