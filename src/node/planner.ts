import type { FileRecord } from '../store/types.js';
import { compare } from '../store/version-vector.js';
import type { RemoteRecord } from './remote-record.js';

/**
 * What to do with a record a peer announced, given what this device has: pure, decided on version
 * vectors (never on wall clocks, except to pick the winner of a true conflict).
 *
 * - no local record, or the remote version dominates the local one: `apply` it (pull a file, make a
 *   folder or symlink, delete);
 * - the local version is equal or dominates: `nothing`;
 * - concurrent versions of the same content (see sameContent): `merge`, i.e. record merge(L, R)
 *   and touch nothing on disk;
 * - concurrent versions of different content: a `conflict` with a winner (see conflictWinner).
 */

/** Which side's version wins a conflict. */
export type ConflictWinner = 'local' | 'remote';

export type Decision =
  | { readonly action: 'nothing'; readonly reason: 'equal' | 'local-newer' }
  | { readonly action: 'apply' }
  | { readonly action: 'merge' }
  | { readonly action: 'conflict'; readonly winner: ConflictWinner };

/** The fields of a version that decide a conflict: both local and remote records have them. */
export type VersionInfo = Pick<FileRecord, 'type' | 'mtimeNs' | 'mode' | 'contentHash' | 'symlinkTarget' | 'version' | 'deleted' | 'modifiedBy'>;

export function decide(local: FileRecord | undefined, remote: RemoteRecord): Decision {
  if (local === undefined) return { action: 'apply' };
  switch (compare(local.version, remote.version)) {
    case 'equal':
      return { action: 'nothing', reason: 'equal' };
    case 'dominates':
      return { action: 'nothing', reason: 'local-newer' };
    case 'dominated':
      return { action: 'apply' };
    case 'concurrent':
      if (sameContent(local, remote)) return { action: 'merge' };
      return { action: 'conflict', winner: conflictWinner(local, remote) };
  }
}

/**
 * Whether two versions hold the same thing, so that being concurrent is no conflict: both deleted,
 * or the same type, content hash, symlink target and permissions (a permission change is a new
 * version, as the scanner records it; a symlink's permissions mean nothing and are left out).
 */
export function sameContent(a: VersionInfo, b: VersionInfo): boolean {
  if (a.deleted || b.deleted) return a.deleted && b.deleted;
  return (
    a.type === b.type &&
    Buffer.from(a.contentHash).equals(b.contentHash) &&
    a.symlinkTarget === b.symlinkTarget &&
    (a.type === 'symlink' || a.mode === b.mode)
  );
}

/**
 * The winner of two concurrent versions with different content, the same on every device whatever
 * side it sits on: an edit beats a delete; else the newer mtime; on a tie the greater device id
 * (`modifiedBy`); on a tie again (one device, two versions: not made by mesh) the greater content
 * (type, content hash, target, permissions), so the order is total. Local wins only when the two
 * are the same in every one of these (then there is nothing to choose).
 */
export function conflictWinner(local: VersionInfo, remote: VersionInfo): ConflictWinner {
  const order = orderVersions(local, remote);
  return order < 0 ? 'remote' : 'local';
}

/** Positive when `a` beats `b`, negative when `b` beats `a`, 0 when nothing tells them apart. */
function orderVersions(a: VersionInfo, b: VersionInfo): number {
  if (a.deleted !== b.deleted) return a.deleted ? -1 : 1;
  if (a.mtimeNs !== b.mtimeNs) return a.mtimeNs > b.mtimeNs ? 1 : -1;
  if (a.modifiedBy !== b.modifiedBy) return a.modifiedBy > b.modifiedBy ? 1 : -1;
  if (a.type !== b.type) return a.type > b.type ? 1 : -1;
  const content = Buffer.compare(Buffer.from(a.contentHash), Buffer.from(b.contentHash));
  if (content !== 0) return content;
  if (a.symlinkTarget !== b.symlinkTarget) return a.symlinkTarget > b.symlinkTarget ? 1 : -1;
  return a.mode - b.mode;
}
