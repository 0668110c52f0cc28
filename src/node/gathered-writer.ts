import type { FileHandle } from 'node:fs/promises';
import { BlockHasher, type FileHashes } from '../folder/hasher.js';
import { writeFully } from './disk.js';

/**
 * Bytes gathered before one write to a temp file. A transfer hands the puller pieces as the network
 * delivers them (often a few KiB): one write each cost more CPU than the copy into this buffer.
 */
export const GATHERED_WRITE_BYTES = 1024 * 1024;

/**
 * Writes a file from offset 0 in large writes, and hashes exactly the bytes it writes: each full
 * buffer is hashed while the thread pool writes it, and the next one fills meanwhile (two buffers
 * take turns, so a buffer is never changed while its write is in flight).
 */
export class GatheredWriter {
  private readonly buffers: Buffer[];
  private current = 0;
  private filled = 0;
  private position = 0;
  private writing: Promise<void> | undefined;
  private readonly hasher: BlockHasher;

  constructor(
    private readonly handle: FileHandle,
    expectedSize: number,
  ) {
    const size = Math.max(1, Math.min(GATHERED_WRITE_BYTES, expectedSize));
    this.buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    this.hasher = new BlockHasher(expectedSize);
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
    return this.hasher.digest();
  }

  /**
   * After a failure of the source: writes what is gathered (best effort) and waits for every write,
   * so that the file holds all the bytes received (the next attempt's basis).
   */
  async settle(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.writing?.catch(() => undefined);
  }

  private async flush(): Promise<void> {
    await this.writing;
    this.writing = undefined;
    if (this.filled === 0) return;
    const bytes = this.buffers[this.current].subarray(0, this.filled);
    const writing = writeFully(this.handle, bytes, this.position);
    // Awaited by the next flush or finish; a failure must not go unhandled meanwhile.
    writing.catch(() => undefined);
    this.writing = writing;
    this.hasher.update(bytes);
    this.position += bytes.length;
    this.current = 1 - this.current;
    this.filled = 0;
  }
}
