import { createHash } from 'node:crypto';
import { symlinkContentHash } from '../folder/hasher.js';
import { isAlwaysIgnored } from '../folder/ignore.js';
import { relativePathProblem } from '../folder/paths.js';
import { changeProblem } from '../store/store-input.js';
import { BLOCK_HASH_BYTES, BLOCK_HASH_LENGTH, type FileRecord } from '../store/types.js';

/**
 * A record as a peer announced it: a FileRecord without the local-only inode (meaningless on
 * another machine), with the sender's own sequence number (its numbering, not ours), and tagged
 * with the peer that announced it: the peer a pull asks for the bytes, and the one blamed when
 * they are wrong.
 *
 *   RemoteRecord = Omit<FileRecord, 'inode' | 'sequence'> & { sequence: number; peer: string }
 */
export type RemoteRecord = Omit<FileRecord, 'inode' | 'sequence'> & {
  /** The sender's sequence of this change. */
  readonly sequence: number;
  /** Who announced it (a libp2p peer id as a string, or any name the caller uses for it). */
  readonly peer: string;
};

/** Longest symlink target accepted from a peer (PATH_MAX). */
export const MAX_SYMLINK_TARGET_BYTES = 4096;

/** The record `record` as a peer receives it from this device (what the index exchange sends). */
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

/**
 * Why a peer's record cannot be acted on, or undefined if it can. Beyond what the store itself
 * accepts: a valid folder-relative path that is not mesh's own (`.mesh`, temp files), a version
 * with at least one counter, and content that agrees with itself (a file's block list has the
 * right number of hashes and hashes to its content hash; a symlink's target is usable and hashes
 * to it). The wire decoder checks lengths too; this is the applier's own guard.
 */
export function remoteRecordProblem(remote: RemoteRecord): string | undefined {
  const pathProblem = relativePathProblem(remote.path);
  if (pathProblem !== undefined) return `the path ${pathProblem}`;
  if (isAlwaysIgnored(remote.path)) return "the path is mesh's own (state or temp file), never synced";
  const problem = changeProblem({ ...remote, inode: 0n });
  if (problem !== undefined) return problem;
  if (remote.version.length === 0) return 'the version is empty';
  if (remote.deleted) return undefined;
  switch (remote.type) {
    case 'file': {
      const blocks = Math.ceil(remote.size / BLOCK_HASH_LENGTH);
      if (remote.blockHashes.length !== blocks * BLOCK_HASH_BYTES) {
        return `${remote.blockHashes.length / BLOCK_HASH_BYTES} block hashes for ${remote.size} bytes (expected ${blocks})`;
      }
      const expected = createHash('sha256').update(remote.blockHashes).digest();
      if (!expected.equals(remote.contentHash)) return 'the content hash is not the hash of the block list';
      return undefined;
    }
    case 'symlink': {
      const target = remote.symlinkTarget;
      if (target === '' || target.includes('\0') || Buffer.byteLength(target) > MAX_SYMLINK_TARGET_BYTES) {
        return 'the symlink target is empty, contains NUL or is too long';
      }
      if (!Buffer.from(symlinkContentHash(target)).equals(remote.contentHash)) return 'the content hash is not the hash of the symlink target';
      return undefined;
    }
    case 'directory':
      return undefined;
  }
}
