import type { FileChange, FileRecord } from '../store/types.js';
import { merge } from '../store/version-vector.js';
import { diskMatches } from './disk.js';
import { inLockedBatches, type ReportingBatchComponents, reportFailed, type PathNow } from './locked-batch.js';
import type { Decision } from './planner.js';
import { APPLIED_MODE_MASK, type RemoteRecord } from './remote-record.js';

/**
 * Records committed per hold of the folder lock: one synced commit for many, while a scan waiting
 * for the lock waits only for about this many lstat calls.
 */
export const RECORD_ONLY_BATCH = 512;

/**
 * A remote version whose content this folder already holds exactly as announced, so applying it
 * only records a version and touches nothing on disk:
 * - `merge`: concurrent versions of the same content (merge(L, R) recorded with the local metadata);
 * - `metadata`: a dominating version of the same bytes whose permissions and mtime the local file
 *   already has (the remote record with the merged version).
 * Decided again under the lock: the local record must still be `local`, and the disk still match it.
 */
export interface RecordOnly {
  readonly remote: RemoteRecord;
  readonly local: FileRecord;
  readonly kind: 'merge' | 'metadata';
}

/** The record-only change `remote` makes given the local record, or undefined if it needs more than a record. */
export function recordOnlyKind(remote: RemoteRecord, local: FileRecord | undefined, decision: Decision): RecordOnly['kind'] | undefined {
  if (local === undefined) return undefined;
  if (decision.action === 'merge') return 'merge';
  if (decision.action !== 'apply' || local.deleted || remote.deleted || local.type !== 'file' || remote.type !== 'file') return undefined;
  const sameBytes = Buffer.from(local.contentHash).equals(remote.contentHash);
  const sameMetadata = local.mode === (remote.mode & APPLIED_MODE_MASK) && local.mtimeNs === remote.mtimeNs;
  return sameBytes && sameMetadata ? 'metadata' : undefined;
}

/**
 * Commits record-only changes RECORD_ONLY_BATCH at a time: under one hold of the folder lock each
 * path's record and disk are checked as the one-at-a-time path checks them (a path changed since
 * is reported 'changed-locally', not recorded), then every change of the batch goes into one
 * atomic, synced commit. A crash leaves the whole batch recorded or none of it; since nothing on
 * disk changes, either state is consistent and a restart simply receives the rest again.
 * Only a missing folder throws; a failed commit is reported against every path of its batch.
 */
export async function commitRecordOnly(components: ReportingBatchComponents, items: readonly RecordOnly[]): Promise<void> {
  await inLockedBatches(components, items, RECORD_ONLY_BATCH, (batch, now) => commitBatch(components, batch, now));
}

async function commitBatch(components: ReportingBatchComponents, items: readonly RecordOnly[], now: readonly PathNow[]): Promise<void> {
  const { store, report, committed } = components;
  const ready: { item: RecordOnly; change: FileChange }[] = [];
  for (const [k, item] of items.entries()) {
    const { remote, local } = item;
    const path = now[k];
    if (path.kind === 'failed') {
      report.add({ status: 'failed', path: remote.path, error: path.error, peer: remote.peer, peerAtFault: false });
    } else if (path.kind === 'changed' || !diskMatches(local, path.stats)) {
      report.skip(remote.path, 'changed-locally');
    } else {
      const version = merge(local.version, remote.version);
      // The local record's metadata is the disk's (checked just now); a version of the same
      // bytes keeps the local block hashes, which this device computed itself.
      const change = item.kind === 'merge' ? { ...changeOf(local), version } : { ...changeOf(local), version, modifiedBy: remote.modifiedBy };
      ready.push({ item, change });
    }
  }
  if (ready.length === 0) return;
  let stored: FileRecord[];
  try {
    stored = await store.commit(ready.map(({ change }) => change));
  } catch (error) {
    reportFailed(report, ready.map(({ item }) => item.remote), error);
    return;
  }
  for (const [k, { item }] of ready.entries()) {
    committed(stored[k]);
    if (item.kind === 'merge') {
      const merge = { replacedSequence: item.local.sequence, recorded: stored[k] };
      report.add({ status: 'applied', path: item.remote.path, decision: 'merge', action: 'merged', merge });
    } else {
      report.add({ status: 'applied', path: item.remote.path, decision: 'apply', action: 'metadata' });
    }
  }
}

/** A stored record as a change to commit (the store assigns a new sequence). */
function changeOf(record: FileRecord): FileChange {
  const { path, type, size, mtimeNs, mode, inode, blockHashes, contentHash, symlinkTarget, deleted, modifiedBy } = record;
  return { path, type, size, mtimeNs, mode, inode, blockHashes, contentHash, symlinkTarget, version: record.version, deleted, modifiedBy };
}
