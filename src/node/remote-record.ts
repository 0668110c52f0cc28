import type { BigIntStats } from 'node:fs';
import { permissionsOf } from '../folder/records.js';
import type { RemoteRecord as WireRemoteRecord } from '../protocol/wire-record.js';
import type { FileChange, FileRecord } from '../store/types.js';
import type { VersionVector } from '../store/version-vector.js';

// One check for every record a peer sends: the protocol's (fromWire applies it to what arrives,
// toWire to what leaves, and the applier again before it decides anything).
export { remoteRecordProblem } from '../protocol/wire-record.js';
export { MAX_SYMLINK_TARGET_BYTES } from '../protocol/constants.js';

/** Permission bits a peer may set: never setuid, setgid or sticky. */
export const APPLIED_MODE_MASK = 0o777;

/**
 * A record as a peer announced it, as the index exchange decoded and validated it (the protocol's
 * RemoteRecord: a FileRecord without the local-only inode, `sequence` being the sender's), tagged
 * with the peer that announced it: the peer a pull asks for the bytes, and the one blamed when
 * they are wrong.
 */
export type RemoteRecord = WireRemoteRecord & {
  /** Who announced it (a libp2p peer id as a string, or any name the caller uses for it). */
  readonly peer: string;
};

/** The record `record` as a peer receives it from this device, tagged with `peer`. */
export function remoteRecordOf(record: FileRecord, peer: string): RemoteRecord {
  return {
    path: record.path,
    type: record.type,
    size: record.size,
    mtimeNs: record.mtimeNs,
    mode: record.mode,
    blockHashes: record.blockHashes,
    contentHash: record.contentHash,
    symlinkTarget: record.symlinkTarget,
    version: record.version,
    deleted: record.deleted,
    modifiedBy: record.modifiedBy,
    sequence: record.sequence,
    peer,
  };
}

/** The record of `remote`'s content now on this disk: its version `version`, the metadata `stats` read after. */
export function contentChangeOf(remote: RemoteRecord, stats: BigIntStats, version: VersionVector): FileChange {
  return {
    path: remote.path,
    type: remote.type,
    size: remote.type === 'file' ? Number(stats.size) : 0,
    mtimeNs: stats.mtimeNs,
    mode: permissionsOf(stats),
    inode: stats.ino,
    blockHashes: remote.blockHashes,
    contentHash: remote.contentHash,
    symlinkTarget: remote.symlinkTarget,
    version,
    deleted: false,
    modifiedBy: remote.modifiedBy,
  };
}
