import { chmod, lstat, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDirectory } from '../fs/atomic-write.js';
import type { FileChange, FileRecord } from '../store/types.js';
import { diskMatches, ensureRealParents } from './disk.js';
import { inLockedBatches, type ReportingBatchComponents, readOrReport, reportFailed, type PlainChange } from './locked-batch.js';
import { APPLIED_MODE_MASK, contentChangeOf, type RemoteRecord } from './remote-record.js';

/**
 * Folders made per hold of the folder lock. One at a time, each cost an fsync of its parent and
 * a synced commit: a tree of 2,000 new files in 25 folders spent ~70 ms making them before its
 * first file was fetched. A batch costs one fsync per parent and one commit.
 */
export const FOLDER_BATCH = 256;

/** Whether a folder record may go by the batch: a live folder, and nothing but a folder recorded at its path. */
export function isPlainFolder(remote: RemoteRecord, local: FileRecord | undefined): boolean {
  return remote.type === 'directory' && !remote.deleted && (local === undefined || local.deleted || local.type === 'directory');
}

/**
 * Applies `folders` in order (parents first), FOLDER_BATCH at a time, each path checked as the
 * one-at-a-time path checks it: the stored record must still be `local` (else 'changed-locally'),
 * and the disk must match it, or hold a folder no record knows yet (adopted, as a scan would).
 * Parents are made without following a symlink. Then every parent folder is fsynced once and the
 * records are committed together: a crash before the commit leaves folders the next scan records,
 * as versions that merge with the peer's.
 */
export async function applyFolders(components: ReportingBatchComponents, folders: readonly PlainChange[]): Promise<void> {
  await inLockedBatches(components, folders, FOLDER_BATCH, async (batch, now) => {
    const { root, store, report, committed } = components;
    const done: { item: PlainChange; absolute: string }[] = [];
    const parents = new Set<string>();
    for (const [k, item] of batch.entries()) {
      const { remote, local } = item;
      const path = readOrReport(now[k], remote, report);
      if (path === undefined) continue;
      const { absolute, stats } = path;
      try {
        const adopt = (local === undefined || local.deleted) && stats?.isDirectory() === true;
        if (!adopt && !diskMatches(local, stats)) {
          report.skip(remote.path, 'changed-locally');
          continue;
        }
        const mode = remote.mode & APPLIED_MODE_MASK;
        // Parents made for an earlier folder of this batch are there now; any still missing are made.
        await ensureRealParents(root, remote.path, true);
        if (stats?.isDirectory() !== true) await mkdir(absolute, { mode });
        await chmod(absolute, mode);
        parents.add(dirname(absolute));
        done.push({ item, absolute });
      } catch (error) {
        reportFailed(report, [remote], error);
      }
    }
    if (done.length === 0) return;
    let stored: FileRecord[];
    try {
      // The folders are on disk before their records are in the index.
      for (const parent of parents) await syncDirectory(parent);
      const changes: FileChange[] = [];
      for (const { item, absolute } of done) {
        const after = await lstat(absolute, { bigint: true });
        if (!after.isDirectory()) throw new Error(`${JSON.stringify(item.remote.path)} is not a folder after it was made`);
        changes.push(contentChangeOf(item.remote, after, item.version));
      }
      stored = await store.commit(changes);
    } catch (error) {
      reportFailed(report, done.map(({ item }) => item.remote), error);
      return;
    }
    for (const [k, { item }] of done.entries()) {
      committed(stored[k]);
      report.add({ status: 'applied', path: item.remote.path, decision: 'apply', action: 'directory' });
    }
  });
}
