import { createHash, hash, type Hash } from 'node:crypto';
import { BLOCK_HASH_BYTES, BLOCK_HASH_LENGTH } from '../store/types.js';
import { nodeFolderFs, type FolderFs, type ReadableFile } from './folder-fs.js';

/**
 * The content identity of files, in one pass over the data: SHA-256 of each BLOCK_HASH_LENGTH block
 * (the block list a peer can reuse blocks from), and the content hash, SHA-256 of those block
 * hashes concatenated. An empty file has no blocks and the SHA-256 of nothing as its content hash.
 */

/** Largest read from a file: a whole number of blocks, large enough that syscalls cost little. */
export const READ_CHUNK_LENGTH = 8 * BLOCK_HASH_LENGTH;
/** Reads kept in flight while the previous chunk is hashed: the disk works while the CPU hashes. */
export const READS_AHEAD = 2;
/** Smallest read buffer (small files get one buffer of about their size, not a full chunk). */
const MIN_READ_LENGTH = 4096;

export interface FileHashes {
  /** Bytes hashed. */
  readonly size: number;
  readonly blockHashes: Uint8Array;
  readonly contentHash: Uint8Array;
}

/** SHA-256 of nothing: the content hash of an empty file. */
export const EMPTY_FILE_CONTENT_HASH: Uint8Array = hash('sha256', new Uint8Array(0), 'buffer');

/** The content hash of a symlink: SHA-256 of its target, as UTF-8. */
export function symlinkContentHash(target: string): Uint8Array {
  return hash('sha256', target, 'buffer');
}

/** Block hashing of a byte stream fed in pieces of any length (the blocks never depend on them). */
export class BlockHasher {
  private block: Hash = createHash('sha256');
  private inBlock = 0;
  private size = 0;
  private hashes: Buffer;
  private blocks = 0;
  private readonly content = createHash('sha256');

  /** `expectedSize` sizes the block list up front; a wrong guess only costs a reallocation. */
  constructor(expectedSize = 0) {
    this.hashes = Buffer.allocUnsafe(Math.ceil(expectedSize / BLOCK_HASH_LENGTH) * BLOCK_HASH_BYTES);
  }

  update(data: Uint8Array): void {
    this.size += data.length;
    for (let at = 0; at < data.length; ) {
      const take = Math.min(BLOCK_HASH_LENGTH - this.inBlock, data.length - at);
      this.block.update(data.subarray(at, at + take));
      this.inBlock += take;
      at += take;
      if (this.inBlock === BLOCK_HASH_LENGTH) this.finishBlock();
    }
  }

  digest(): FileHashes {
    if (this.inBlock > 0) this.finishBlock();
    return {
      size: this.size,
      blockHashes: this.hashes.subarray(0, this.blocks * BLOCK_HASH_BYTES),
      contentHash: this.content.digest(),
    };
  }

  private finishBlock(): void {
    const digest = this.block.digest();
    const at = this.blocks * BLOCK_HASH_BYTES;
    if (at + BLOCK_HASH_BYTES > this.hashes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.hashes.length * 2, BLOCK_HASH_BYTES * 64));
      this.hashes.copy(grown, 0, 0, at);
      this.hashes = grown;
    }
    digest.copy(this.hashes, at);
    this.content.update(digest);
    this.blocks++;
    this.block = createHash('sha256');
    this.inBlock = 0;
  }
}

export interface HashOptions {
  /** The size the file is expected to have (from stat): sizes buffers, bounds read-ahead. */
  readonly expectedSize?: number;
  /** Called after each chunk with its length, for progress. */
  readonly onBytes?: (bytes: number) => void;
}

/**
 * Hashes an open file from its start to its end, with READS_AHEAD reads in flight into reused
 * buffers: memory stays at (READS_AHEAD + 1) chunks, about 3 MiB, whatever the file size (plus the
 * block list itself, 32 bytes per 128 KiB).
 */
export async function hashOpenFile(file: ReadableFile, options: HashOptions = {}): Promise<FileHashes> {
  const expectedSize = options.expectedSize ?? Infinity;
  const chunkLength = Math.min(READ_CHUNK_LENGTH, Math.max(MIN_READ_LENGTH, expectedSize + 1));
  const hasher = new BlockHasher(options.expectedSize);
  const spare: Buffer[] = [];
  const pending: Promise<{ buffer: Buffer; length: number; at: number }>[] = [];
  let position = 0;
  let ended = false;
  const request = () => {
    const buffer = spare.pop() ?? Buffer.allocUnsafe(chunkLength);
    const at = position;
    const read = file.read(buffer, at).then((length) => ({ buffer, length, at }));
    // Awaited in order below; a read still in flight after a failure must not be unhandled.
    read.catch(() => undefined);
    pending.push(read);
    position += chunkLength;
  };
  try {
    request();
    while (pending.length > 0) {
      const { buffer, length, at } = await pending.shift()!;
      if (length === 0 || (length < chunkLength && at + length >= expectedSize)) {
        ended = true;
      } else if (length < chunkLength) {
        // A short read before the expected end (allowed, if rare): the reads ahead started at the
        // wrong offsets. Drop them and go on from where this one stopped.
        for (const stale of pending.splice(0)) spare.push((await stale).buffer);
        position = at + length;
      }
      // Read ahead while the size says there is more (plus the read that finds the end); past the
      // expected size (a file that grew) one read at a time: the scanner checks for changes anyway.
      while (!ended && pending.length < READS_AHEAD && position <= expectedSize) request();
      if (!ended && pending.length === 0) request();
      if (length > 0) {
        hasher.update(buffer.subarray(0, length));
        options.onBytes?.(length);
      }
      spare.push(buffer);
    }
  } finally {
    await Promise.allSettled(pending);
  }
  return hasher.digest();
}

/** Hashes the file at `path` (a convenience over hashOpenFile with the real file system). */
export async function hashFile(path: string, options: HashOptions & { fs?: FolderFs } = {}): Promise<FileHashes> {
  const file = await (options.fs ?? nodeFolderFs).openForReading(path);
  try {
    const expectedSize = options.expectedSize ?? Number((await file.stat()).size);
    return await hashOpenFile(file, { ...options, expectedSize });
  } finally {
    await file.close();
  }
}
