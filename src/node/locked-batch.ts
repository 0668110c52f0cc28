import type { BigIntStats } from 'node:fs';
import { FolderMissingError } from '../folder/errors.js';
import type { FolderLock } from '../folder/folder-lock.js';
import { parentPath, toAbsolute } from '../folder/paths.js';
import { asError } from '../protocol/errors.js';
import type { FileRecord, Store } from '../store/types.js';
import type { VersionVector } from '../store/version-vector.js';
import type { ApplyReportBuilder } from './apply-report.js';
import { ensureRealParents, lstatSyncOrUndefined } from './disk.js';
import type { RemoteRecord } from './remote-record.js';

/**
 * The check the applier's batches (record-only.ts, batch-delete.ts) make of each path under one
 * hold of the folder lock, as the one-at-a-time path makes it under its own: the record must
 * still be the one decided against, and the disk is then read without following a symlink.
 */
export type PathNow =
  /** The path's record changed since the decision (a scan recorded something): decide again later. */
  | { readonly kind: 'changed' }
  /** Reading the disk failed (a symlinked parent, permissions). */
  | { readonly kind: 'failed'; readonly error: Error }
  /** What lstat shows at the path: undefined when nothing is there or a parent folder is missing. */
  | { readonly kind: 'read'; readonly absolute: string; readonly stats: BigIntStats | undefined };

/** A record that dominates the local one (planner: 'apply'), decided before the lock. */
export interface PlainChange {
  readonly remote: RemoteRecord;
  /** The local record it was decided against: it must still be the one stored. */
  readonly local: FileRecord | undefined;
  /** The version to record: merge(local, remote). */
  readonly version: VersionVector;
}

/**
 * The disk at a path of a batch, to act on; or, when the record changed since the decision
 * ('changed-locally') or the disk could not be read (failed), that reported and undefined.
 */
export function readOrReport(now: PathNow, remote: RemoteRecord, report: ApplyReportBuilder): Extract<PathNow, { kind: 'read' }> | undefined {
  if (now.kind === 'changed') report.skip(remote.path, 'changed-locally');
  else if (now.kind === 'failed') report.add({ status: 'failed', path: remote.path, error: now.error, peer: remote.peer, peerAtFault: false });
  else return now;
  return undefined;
}

/** A failure of each of `remotes` (one path, or a whole batch's commit): reported, not thrown; only a missing folder ends the apply. */
export function reportFailed(report: ApplyReportBuilder, remotes: readonly RemoteRecord[], error: unknown): void {
  if (error instanceof FolderMissingError) throw error;
  for (const remote of remotes) report.add({ status: 'failed', path: remote.path, error: asError(error), peer: remote.peer, peerAtFault: false });
}

/** What a locked batch needs of the applier. */
export interface LockedBatchComponents {
  readonly root: string;
  readonly store: Store;
  readonly lock: FolderLock;
  /** Throws FolderMissingError unless the folder is still there. */
  readonly checkFolder?: () => Promise<void>;
}

/** What a batch applier needs: the locked batch's parts, the apply's report, and who hears of each commit. */
export interface ReportingBatchComponents extends LockedBatchComponents {
  readonly report: ApplyReportBuilder;
  /** Told each record committed (the apply's index of local content). */
  readonly committed: (record: FileRecord) => void;
}

/**
 * Runs `batch` on `items` in slices of at most `size`, one after the other, each under one hold
 * of the folder lock: the folder checked first, then `batch` given what each path is now (see
 * pathsNow), to act on before the lock is let go.
 */
export async function inLockedBatches<T extends { readonly remote: RemoteRecord; readonly local: FileRecord | undefined }>(
  components: LockedBatchComponents,
  items: readonly T[],
  size: number,
  batch: (slice: readonly T[], now: readonly PathNow[]) => Promise<void>,
): Promise<void> {
  const { root, store, lock, checkFolder } = components;
  for (let start = 0; start < items.length; start += size) {
    const slice = items.slice(start, start + size);
    await lock.run(async () => {
      await checkFolder?.();
      const now = await pathsNow(root, store, slice.map((item) => item.remote.path), slice.map((item) => item.local));
      await batch(slice, now);
    });
  }
}

/**
 * For each of `paths`, decided against `locals` (the same order), what the path is now: the
 * records read in one batch, each parent folder checked once (the paths of a batch mostly share
 * them), lstat made in place (a few microseconds, less than a trip through the thread pool). The
 * caller holds the folder lock.
 */
async function pathsNow(root: string, store: Store, paths: readonly string[], locals: readonly (FileRecord | undefined)[]): Promise<PathNow[]> {
  const currents = await store.sequencesOf(paths);
  const realParents = new Map<string, 'present' | 'missing'>();
  const now: PathNow[] = [];
  for (const [k, path] of paths.entries()) {
    if (currents[k] !== locals[k]?.sequence) {
      now.push({ kind: 'changed' });
      continue;
    }
    try {
      const parent = parentPath(path);
      let parents = realParents.get(parent);
      if (parents === undefined) realParents.set(parent, (parents = await ensureRealParents(root, path, false)));
      const absolute = toAbsolute(root, path);
      now.push({ kind: 'read', absolute, stats: parents === 'missing' ? undefined : lstatSyncOrUndefined(absolute) });
    } catch (error) {
      now.push({ kind: 'failed', error: asError(error) });
    }
  }
  return now;
}
