import type { FileHandle } from 'node:fs/promises';
import { errorCode } from '../folder/folder-fs.js';
import { BlockHasher, type FileHashes } from '../folder/hasher.js';
import { writeFully } from '../fs/atomic-write.js';
import { DIRECT_IO_ALIGNMENT, type DirectIo } from '../fs/direct-io.js';

/**
 * Bytes gathered before one write to a temp file. A transfer hands the puller pieces as the network
 * delivers them (often a few KiB): one write each cost more CPU than the copy into this buffer.
 */
export const GATHERED_WRITE_BYTES = 1024 * 1024;

/**
 * Bytes written between two background flushes to the disk (fdatasync). A large file is then mostly
 * on the disk by the time the puller's final fsync runs, which otherwise waits for the whole file
 * (0.2-0.25 s for 256 MiB here) after the last byte arrived.
 */
export const EARLY_SYNC_BYTES = 32 * 1024 * 1024;

/**
 * Files of at least this size are written with direct I/O where it is offered (see direct-io.ts):
 * all their writes but the last are then whole buffers. A smaller file is mostly its unaligned
 * tail, which goes through the page cache anyway.
 */
export const DIRECT_WRITE_MIN_BYTES = 4 * GATHERED_WRITE_BYTES;

/**
 * Writes a file from offset 0 in large writes, and hashes exactly the bytes it writes: each full
 * buffer is hashed while the thread pool writes it, and the next one fills meanwhile (two buffers
 * take turns, so a buffer is never changed while its write is in flight). A large file is written
 * with direct I/O, its last write (not a whole number of disk blocks) through the page cache.
 */
export class GatheredWriter {
  private readonly buffers: Buffer[];
  private current = 0;
  private filled = 0;
  private position = 0;
  private writing: Promise<void> | undefined;
  /** The background flush in progress, if any (one at a time), and where the next one is due. */
  private syncing: Promise<void> | undefined;
  private nextSyncAt = EARLY_SYNC_BYTES;
  private syncError: Error | undefined;
  private readonly hasher: BlockHasher;
  /** Set while the file is written with direct I/O. */
  private direct: DirectIo | undefined;

  constructor(
    private readonly handle: FileHandle,
    private readonly expectedSize: number,
    directIo?: DirectIo,
  ) {
    if (directIo !== undefined && expectedSize >= DIRECT_WRITE_MIN_BYTES && directIo.setDirect(handle.fd, true)) this.direct = directIo;
    const size = Math.max(1, Math.min(GATHERED_WRITE_BYTES, expectedSize));
    this.buffers = [this.allocate(size), this.allocate(size)];
    this.hasher = new BlockHasher(expectedSize);
  }

  /** Whether the writes so far went to the disk directly. */
  get writesDirectly(): boolean {
    return this.direct !== undefined;
  }

  /** Bytes handed to the file so far (written, or being written). */
  get written(): number {
    return this.position;
  }

  async write(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.length; ) {
      const buffer = this.buffers[this.current];
      const take = Math.min(chunk.length - at, buffer.length - this.filled);
      buffer.set(chunk.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === buffer.length) await this.flush();
    }
  }

  /** Writes what is gathered, waits for every write, and returns the hashes of all the bytes written. */
  async finish(): Promise<FileHashes> {
    await this.flush();
    await this.writing;
    await this.syncing;
    if (this.syncError !== undefined) throw this.syncError;
    return this.hasher.digest();
  }

  /**
   * After a failure of the source: writes what is gathered (best effort) and waits for every write,
   * so that the file holds all the bytes received (the next attempt's basis).
   */
  async settle(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.writing?.catch(() => undefined);
    await this.syncing?.catch(() => undefined);
  }

  private async flush(): Promise<void> {
    await this.writing;
    this.writing = undefined;
    this.startEarlySync();
    if (this.filled === 0) return;
    const bytes = this.buffers[this.current].subarray(0, this.filled);
    // No write is in flight here, so the file's mode can change.
    if (bytes.length % DIRECT_IO_ALIGNMENT !== 0) this.stopDirect();
    const writing = this.writeOut(bytes, this.position);
    // Awaited by the next flush or finish; a failure must not go unhandled meanwhile.
    writing.catch(() => undefined);
    this.writing = writing;
    this.hasher.update(bytes);
    this.position += bytes.length;
    this.current = 1 - this.current;
    this.filled = 0;
    // More bytes than announced (the peer is wrong, which the hashes will show): buffers sized for
    // a small file would turn the rest into tiny writes.
    if (this.position >= this.expectedSize && this.buffers[this.current].length < GATHERED_WRITE_BYTES) {
      this.buffers[this.current] = this.allocate(GATHERED_WRITE_BYTES);
    }
  }

  /**
   * Writes one buffer: directly while that works. A direct write the kernel refuses (EINVAL: this
   * file system or disk cannot take it directly after all) is done again through the page cache,
   * and so is the rest of the file.
   */
  private async writeOut(bytes: Buffer, position: number): Promise<void> {
    if (this.direct !== undefined) {
      try {
        return await writeFully(this.handle, bytes, position);
      } catch (error) {
        if (errorCode(error) !== 'EINVAL') throw error;
        this.stopDirect();
      }
    }
    await writeFully(this.handle, bytes, position);
  }

  private stopDirect(): void {
    this.direct?.setDirect(this.handle.fd, false);
    this.direct = undefined;
  }

  private allocate(size: number): Buffer {
    return this.direct?.alignedBuffer(size) ?? Buffer.allocUnsafe(size);
  }

  /**
   * Starts a background fdatasync of what is written so far once EARLY_SYNC_BYTES more have been
   * written and the last one is done. The caller's fsync after finish() is what makes the file
   * durable, but a failure here is kept for finish() to throw: Linux reports a write-back error to
   * each descriptor once, so that later fsync could succeed over lost bytes.
   */
  private startEarlySync(): void {
    if (this.direct !== undefined) {
      // Direct writes leave nothing in the page cache to flush: the next flush is due EARLY_SYNC_BYTES
      // after the writes stop being direct (not at the tail, just before the caller's fsync).
      this.nextSyncAt = this.position + EARLY_SYNC_BYTES;
      return;
    }
    if (this.position < this.nextSyncAt || this.syncing !== undefined || this.syncError !== undefined) return;
    this.nextSyncAt = this.position + EARLY_SYNC_BYTES;
    this.syncing = this.handle.datasync().then(
      () => (this.syncing = undefined),
      (error: unknown) => {
        this.syncError = error instanceof Error ? error : new Error(String(error));
        this.syncing = undefined;
      },
    );
  }
}
