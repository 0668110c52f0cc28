import { unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDirectory } from '../fs/atomic-write.js';
import type { FileChange, FileRecord } from '../store/types.js';
import type { VersionVector } from '../store/version-vector.js';
import type { ApplyAction } from './apply-report.js';
import { diskMatches, removeEmptyFolder } from './disk.js';
import { inLockedBatches, type ReportingBatchComponents, readOrReport, reportFailed, type PathNow, type PlainChange } from './locked-batch.js';
import type { RemoteRecord } from './remote-record.js';

/**
 * Deletes per hold of the folder lock. One at a time, each delete cost a folder fsync and a synced
 * commit, about 4 ms here (a folder of 300 files took 1.2 s to go); a batch costs one fsync per
 * folder it touched and one commit, while a scan waiting for the lock waits for a few hundred
 * unlinks at most.
 */
export const DELETE_BATCH = 256;

const NO_BYTES = new Uint8Array(0);

/**
 * Applies `deletes` in order (deepest paths first, so a folder's contents go before it), DELETE_BATCH
 * at a time. Each path is checked as the one-at-a-time delete checks it: the stored record must
 * still be `local` (else 'changed-locally'), the disk must still match it (else 'kept-edit': an edit
 * beats a delete), nothing is removed through a symlinked parent, and a folder only when empty
 * (else 'kept-folder'). Then every folder that lost an entry is fsynced and the tombstones are
 * committed together. A crash between the removals and the commit leaves files gone whose
 * records are not: the next scan records those deletes itself, and two tombstones are never a
 * conflict. Only a missing folder throws; a failed commit is reported against its whole batch.
 */
export async function applyDeletes(components: ReportingBatchComponents, deletes: readonly PlainChange[]): Promise<void> {
  await inLockedBatches(components, deletes, DELETE_BATCH, (batch, now) => deleteBatch(components, batch, now));
}

async function deleteBatch(components: ReportingBatchComponents, deletes: readonly PlainChange[], now: readonly PathNow[]): Promise<void> {
  const { store, report, committed } = components;
  const done: { item: PlainChange; action: ApplyAction }[] = [];
  /** Folders that lost an entry, and folders removed (no fsync of those: their parent's holds it). */
  const touched = new Set<string>();
  const removed = new Set<string>();
  for (const [k, item] of deletes.entries()) {
    const { remote, local } = item;
    const path = readOrReport(now[k], remote, report);
    if (path === undefined) continue;
    const { absolute, stats } = path;
    try {
      // Nothing recorded, or already gone: only the tombstone (a file made here since is the scanner's to find).
      if (local === undefined || local.deleted || stats === undefined) {
        done.push({ item, action: 'tombstone' });
        continue;
      }
      if (!diskMatches(local, stats)) {
        report.skip(remote.path, 'kept-edit');
        continue;
      }
      if (stats.isDirectory()) {
        if (!(await removeEmptyFolder(absolute))) {
          report.skip(remote.path, 'kept-folder');
          continue;
        }
        removed.add(absolute);
      } else {
        await unlink(absolute); // a symlink itself, never its target
      }
      touched.add(dirname(absolute));
      done.push({ item, action: 'deleted' });
    } catch (error) {
      reportFailed(report, [remote], error);
    }
  }
  if (done.length === 0) return;
  let stored: FileRecord[];
  try {
    // The removals are on disk before their tombstones are in the index.
    for (const folder of touched) if (!removed.has(folder)) await syncDirectory(folder);
    stored = await store.commit(done.map(({ item }) => tombstoneOf(item.remote, item.version)));
  } catch (error) {
    reportFailed(report, done.map(({ item }) => item.remote), error);
    return;
  }
  for (const [k, { item, action }] of done.entries()) {
    committed(stored[k]);
    report.add({ status: 'applied', path: item.remote.path, decision: 'apply', action });
  }
}

/** The tombstone a delete of `remote` records, with `version` (merge(local, remote)). */
export function tombstoneOf(remote: RemoteRecord, version: VersionVector): FileChange {
  return {
    path: remote.path,
    type: remote.type,
    size: 0,
    mtimeNs: remote.mtimeNs,
    mode: remote.mode,
    inode: 0n,
    blockHashes: NO_BYTES,
    contentHash: NO_BYTES,
    symlinkTarget: '',
    version,
    deleted: true,
    modifiedBy: remote.modifiedBy,
  };
}
