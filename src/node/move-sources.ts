import type { FileRecord, Store } from '../store/types.js';
import type { LocalContentIndex, WantedContent } from './local-content.js';
import { decide } from './planner.js';
import type { RemoteRecord } from './remote-record.js';

/**
 * A rename seen from the receiving side is a new path with content a local file holds, and a
 * delete of that file, in the same apply. Copying the content to the new path and then deleting
 * the old one reads, writes, fsyncs and hashes the whole file (0.85 s for 256 MiB here); moving
 * the old file takes a rename. This finds, for a file version to apply, a local file it may move
 * instead: one this apply deletes (a delete that dominates it, the only record of its path) and
 * whose content no other version of this apply wants (else it is copied, as before).
 * The caller checks the source again under the folder lock before it moves it.
 */

export class MoveSources {
  /** The single delete record of each path this apply deletes. */
  private readonly deletes = new Map<string, RemoteRecord>();

  /** `deletes`: the apply's delete records alone on their path; `wanted`: the content of every file version it may pull. */
  constructor(
    deletes: Iterable<RemoteRecord>,
    private readonly wanted: WantedContent,
  ) {
    for (const remote of deletes) this.deletes.set(remote.path, remote);
  }

  /**
   * The record of a local file `remote` may be moved from, or undefined: only for a file made over
   * nothing (`local` absent or deleted), whose content is wanted once in this apply.
   */
  async find(remote: RemoteRecord, local: FileRecord | undefined, store: Store, index: () => LocalContentIndex): Promise<FileRecord | undefined> {
    if (this.deletes.size === 0 || (local !== undefined && !local.deleted) || remote.size === 0) return undefined;
    if (this.wanted.timesWanted(remote.contentHash) !== 1) return undefined;
    for (const candidate of await index().withContent(remote.contentHash)) {
      const deletion = this.deletes.get(candidate.path);
      if (deletion === undefined) continue;
      const record = await store.get(candidate.path);
      if (record === undefined || record.deleted || record.type !== 'file' || !Buffer.from(record.contentHash).equals(remote.contentHash)) continue;
      if (decide(record, deletion).action === 'apply') return record;
    }
    return undefined;
  }
}
