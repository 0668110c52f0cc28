import type { BigIntStats } from 'node:fs';
import { copyFile, constants as fsConstants, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hashFile, type FileHashes } from '../folder/hasher.js';
import { toAbsolute } from '../folder/paths.js';
import { loadDirectIo } from '../fs/direct-io.js';
import { BasisMismatchError, DeltaError, rebuild, type RebuildAttempt } from '../delta/index.js';
import type { FileRecord } from '../store/types.js';
import {
  createExclusive,
  diskMatches,
  ensureRealParents,
  lstatOrUndefined,
  openNoFollow,
  PARTIAL_BASIS_SUFFIX,
  removePlanted,
  tempPathOf,
  unlinkIfPresent,
} from './disk.js';
import { ensureSpaceFor } from './disk-space.js';
import { ContentMismatchError, InsufficientSpaceError } from './errors.js';
import { GatheredWriter } from './gathered-writer.js';
import type { LocalContentIndex, LocalFile } from './local-content.js';
import type { RemoteRecord } from './remote-record.js';

/**
 * Sends our signature of a basis to the peer that announced `remote` and returns its delta (the
 * transfer protocol's job; in tests an in-process function). `attempt` says which try of a rebuild
 * this is (see rebuild()); `answers` are the patch's answers to the fine round, sent back in order
 * (an exchange that ignores them must not offer the fine round); `contentChecked` says the sender
 * may leave out the delta's file hash (RebuildOptions.exchange).
 */
export type Exchange = (
  remote: RemoteRecord,
  signature: AsyncIterable<Uint8Array>,
  attempt: RebuildAttempt,
  answers: AsyncIterable<Uint8Array>,
  contentChecked: boolean,
) => AsyncIterable<Uint8Array>;

/**
 * Where a pulled file's bytes came from: nothing (empty file), a local copy, a transfer (delta), a
 * whole-file fetch, or a local file moved (a rename, by the apply: apply-run.ts).
 */
export type PullSource = 'empty' | 'copy' | 'transfer' | 'fetch' | 'move';
/**
 * The basis of a transfer: the partial temp file of an interrupted pull of the same content, the
 * old version at the path, the local file sharing the most blocks, or none.
 */
export type BasisKind = 'partial' | 'local' | 'similar' | 'none';

export interface PulledFile {
  /** Folder-relative path of the temp file holding the verified content, beside the target. */
  readonly temp: string;
  readonly source: PullSource;
  /** A copy's source path, or a transfer's basis path (folder-relative; a partial's is its temp name). */
  readonly from?: string;
  readonly basis?: BasisKind;
  /** Attempts of the rebuild (empty unless transferred). */
  readonly attempts: readonly RebuildAttempt[];
  /** Bytes of the file sent as literal data by the peer (by every attempt). */
  readonly literalBytes: number;
  /** Bytes of the file taken from the basis (by the last attempt). */
  readonly reusedBytes: number;
}

/** Encoded signatures of local content kept from earlier (signature-cache.ts). */
export interface SignatureSource {
  get(contentHash: Uint8Array, size: number): Promise<Uint8Array | undefined>;
}

export interface PullerComponents {
  readonly root: string;
  readonly exchange: Exchange;
  /** A basis's signature made before, sent instead of computing it. Default: always computed. */
  readonly signatures?: SignatureSource;
  /** Where else the folder holds content (built on first use, shared by the pulls of one apply). */
  readonly localContent: () => LocalContentIndex;
}

/**
 * Brings a remote file version into its temp file beside the target, verified: the cheapest way
 * first. An empty file needs nothing; a local file with the same content hash is copied (a rename
 * or copy elsewhere moves no bytes); otherwise `rebuild()` fetches a delta against the best basis:
 * a partial temp file of the same content left by an interrupted pull, the old version at the
 * path, or the local file sharing the most blocks (and, should the delta fail the whole-file check,
 * what that attempt wrote: setAsideFailed). Whatever the source, the temp file is fsynced
 * and hashed (SHA-256 blocks, as the scanner hashes) and must have the announced content hash and
 * size, else it is removed and ContentMismatchError names the peer. The target is never touched.
 * Nothing is written unless the disk has room for the file and a reserve (disk-space.ts).
 */
export class Puller {
  constructor(private readonly components: PullerComponents) {}

  async pull(remote: RemoteRecord, local: FileRecord | undefined): Promise<PulledFile> {
    const { root } = this.components;
    await ensureRealParents(root, remote.path, true);
    const temp = tempPathOf(remote.path, remote.contentHash);
    const tempAbsolute = toAbsolute(root, temp);
    const none = { attempts: [], literalBytes: 0, reusedBytes: 0 };

    if (remote.size === 0) {
      await this.verify(remote, await this.writeTemp(tempAbsolute, emptyChunks(), remote.size));
      return { temp, source: 'empty', ...none };
    }
    await ensureSpaceFor(dirname(tempAbsolute), remote.size, remote.path);
    const copied = await this.copyFromSameContent(remote, local, tempAbsolute);
    if (copied !== undefined) return { temp, source: 'copy', from: copied, ...none, reusedBytes: remote.size };

    const basis = await this.chooseBasis(remote, local, temp);
    const firstSignature = basis.content === undefined ? undefined : await this.components.signatures?.get(basis.content.contentHash, basis.content.size);
    let result;
    // The content hash of what the last attempt wrote, computed as it wrote (no second read).
    let written: FileHashes | undefined;
    try {
      result = await rebuild({
        basisPath: basis.path === undefined ? undefined : toAbsolute(root, basis.path),
        exchange: (signature, attempt, answers, contentChecked) => this.components.exchange(remote, signature, attempt, answers, contentChecked),
        ...(firstSignature === undefined ? {} : { firstSignature }),
        // writeTemp copies each chunk into its own buffers before it asks for the next.
        recycle: true,
        // verify() checks the SHA-256 of every byte written against the record.
        contentCheckedByCaller: true,
        write: async (chunks) => {
          written = undefined;
          written = await this.writeTemp(tempAbsolute, chunks, remote.size);
        },
        setAsideFailed: () => this.setAsideFailed(remote, tempAbsolute),
      });
    } catch (error) {
      // A delta the peer got wrong leaves nothing worth keeping; an interruption (a network error)
      // leaves the partial temp file for the next attempt to use as its basis.
      if (error instanceof DeltaError && !(error instanceof BasisMismatchError)) await this.discard(remote);
      throw error;
    }
    if (written === undefined) throw new Error('unreachable: a rebuild that returns has written the temp file');
    await this.verify(remote, written);
    // The partial basis is spent: gone before the temp file is put in place, so that a crash after
    // that cannot leave it behind, where no later pull of this content would look for it.
    await removePlanted(tempAbsolute + PARTIAL_BASIS_SUFFIX);
    return {
      temp,
      source: 'transfer',
      from: basis.path,
      basis: basis.kind,
      attempts: result.attempts,
      // A retry after a false block match received bytes twice: all count.
      literalBytes: result.stats.literalBytes + result.failedLiteralBytes,
      reusedBytes: result.stats.copiedBytes,
    };
  }

  /** Removes the temp file and partial basis of `remote` (after a failure, or once it is in place). */
  async discard(remote: Pick<RemoteRecord, 'path' | 'contentHash'>, keepTemp = false): Promise<void> {
    const temp = toAbsolute(this.components.root, tempPathOf(remote.path, remote.contentHash));
    if (!keepTemp) await removePlanted(temp);
    await removePlanted(temp + PARTIAL_BASIS_SUFFIX);
  }

  /** Checks the hashes of what was written to the temp file; on a mismatch removes it (and the partial basis) and blames the peer. */
  private async verify(remote: RemoteRecord, hashes: FileHashes): Promise<void> {
    if (hashes.size === remote.size && Buffer.from(hashes.contentHash).equals(remote.contentHash)) return;
    await this.discard(remote);
    throw new ContentMismatchError(
      `${JSON.stringify(remote.path)}: the bytes from peer ${remote.peer} (${hashes.size} bytes) do not have the content hash it announced; not applied`,
    );
  }

  /** Copies a local file with the announced content hash into the temp file: the path copied from, or undefined. */
  private async copyFromSameContent(remote: RemoteRecord, local: FileRecord | undefined, tempAbsolute: string): Promise<string | undefined> {
    const candidates: LocalFile[] = [];
    if (local !== undefined && !local.deleted && local.type === 'file' && Buffer.from(local.contentHash).equals(remote.contentHash)) {
      candidates.push({ path: local.path, entry: local });
    }
    candidates.push(...(await this.components.localContent().withContent(remote.contentHash)));
    for (const candidate of candidates) {
      if (!(await this.isIntact(candidate))) continue;
      try {
        await removePlanted(tempAbsolute);
        // COPYFILE_EXCL: never through a name planted since; FICLONE: a reflink where the file system can.
        await copyFile(toAbsolute(this.components.root, candidate.path), tempAbsolute, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
        await this.syncAndHash(tempAbsolute, remote);
        return candidate.path;
      } catch {
        // Changed or gone since it was recorded: try the next one, or transfer.
        await removePlanted(tempAbsolute).catch(() => undefined);
      }
    }
    return undefined;
  }

  private async syncAndHash(tempAbsolute: string, remote: RemoteRecord): Promise<void> {
    const handle = await openNoFollow(tempAbsolute);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    const hashes = await hashFile(tempAbsolute);
    if (hashes.size !== remote.size || !Buffer.from(hashes.contentHash).equals(remote.contentHash)) throw new Error('copy source changed');
  }

  /**
   * The best basis for a transfer (see BasisKind), each candidate checked on disk first; with the
   * content it holds when a record says (not for a partial file).
   */
  private async chooseBasis(
    remote: RemoteRecord,
    local: FileRecord | undefined,
    temp: string,
  ): Promise<{ path?: string; kind: BasisKind; content?: { contentHash: Uint8Array; size: number } }> {
    const partial = await this.takePartial(temp);
    if (partial !== undefined) return { path: partial, kind: 'partial' };
    if (local !== undefined && !local.deleted && local.type === 'file' && local.size > 0 && (await this.isIntact({ path: local.path, entry: local }))) {
      return { path: local.path, kind: 'local', content: local };
    }
    const similar = await this.components.localContent().mostShared(remote.blockHashes, remote.path);
    if (similar !== undefined && (await this.isIntact(similar.file))) return { path: similar.file.path, kind: 'similar', content: similar.file.entry };
    return { kind: 'none' };
  }

  /**
   * The partial temp file of an interrupted pull of this content, moved aside to `temp.basis` (the
   * new attempt writes `temp` afresh): when both exist (interrupted twice) the longer is kept.
   * Anything else planted at either name (a symlink, a FIFO) is removed without being followed.
   */
  private async takePartial(temp: string): Promise<string | undefined> {
    const { root } = this.components;
    const tempAbsolute = toAbsolute(root, temp);
    const basisAbsolute = tempAbsolute + PARTIAL_BASIS_SUFFIX;
    const fresh = await usableBasis(tempAbsolute);
    const aside = await usableBasis(basisAbsolute);
    if (fresh !== undefined && (aside === undefined || fresh.size > aside.size)) await rename(tempAbsolute, basisAbsolute);
    else if (fresh !== undefined) await unlinkIfPresent(tempAbsolute);
    return fresh === undefined && aside === undefined ? undefined : temp + PARTIAL_BASIS_SUFFIX;
  }

  /** Whether a recorded local file is on disk as recorded, under real parent folders. */
  private async isIntact(file: LocalFile): Promise<boolean> {
    try {
      if ((await ensureRealParents(this.components.root, file.path, false)) === 'missing') return false;
      return diskMatches(file.entry, await lstatOrUndefined(toAbsolute(this.components.root, file.path)));
    } catch {
      return false;
    }
  }

  /**
   * After an attempt failed the whole-file check: its temp file (the new version but for a few
   * wrong blocks) becomes the partial basis of the next attempt, replacing the one there. Left to
   * be removed when the disk has no room for it beside the next attempt's temp file.
   */
  private async setAsideFailed(remote: RemoteRecord, tempAbsolute: string): Promise<string | undefined> {
    if ((await usableBasis(tempAbsolute)) === undefined) return undefined;
    try {
      await ensureSpaceFor(dirname(tempAbsolute), remote.size, remote.path);
    } catch (error) {
      if (error instanceof InsufficientSpaceError) return undefined;
      throw error;
    }
    const basisAbsolute = tempAbsolute + PARTIAL_BASIS_SUFFIX;
    await rename(tempAbsolute, basisAbsolute);
    return basisAbsolute;
  }

  /**
   * Writes the rebuilt bytes to the temp file: whatever is at its name is removed first (never
   * followed), then it is created exclusively with O_NOFOLLOW, written and fsynced. Returns the
   * hashes of the bytes written, in order from offset 0 (GatheredWriter hashes each buffer as it
   * writes it), so the file is not read back to verify it. A failure part way leaves what was
   * written: the next attempt's basis.
   */
  private async writeTemp(tempAbsolute: string, chunks: AsyncIterable<Uint8Array>, expectedSize: number): Promise<FileHashes> {
    await removePlanted(tempAbsolute);
    const handle = await createExclusive(tempAbsolute);
    const writer = new GatheredWriter(handle, expectedSize, await loadDirectIo());
    try {
      for await (const chunk of chunks) await writer.write(chunk);
      const hashes = await writer.finish();
      await handle.sync();
      return hashes;
    } catch (error) {
      await writer.settle();
      // Nothing written (the peer refused, the connection failed at once): no basis worth keeping.
      if (writer.written === 0) await handle.close().then(() => unlinkIfPresent(tempAbsolute));
      throw error;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
}

/**
 * The metadata of a temp file worth building on (a regular file with bytes in it), or undefined;
 * anything else planted at that name (a symlink, a FIFO) is removed without being followed.
 */
async function usableBasis(absolute: string): Promise<BigIntStats | undefined> {
  const stats = await lstatOrUndefined(absolute);
  if (stats === undefined) return undefined;
  if (stats.isFile() && stats.size > 0n) return stats;
  await removePlanted(absolute);
  return undefined;
}

async function* emptyChunks(): AsyncGenerator<Uint8Array> {}
