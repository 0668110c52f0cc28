import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { chunksOf, collect, decodeSignature, encodeSignature, readFileChunks, signatureOptionsFor } from '../delta/index.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { toAbsolute } from '../folder/paths.js';
import type { Store } from '../store/types.js';
import { diskMatches, lstatOrUndefined } from './disk.js';

/**
 * Signatures of large pulled files, made while the node is idle and kept in `.mesh/signatures/`,
 * so that the next edit of such a file starts its delta at once: the receiver's signature of a
 * 256 MiB basis (read it, hash every block twice) took 0.37 s before the sender could start, on
 * the path of every edit. A file this node pulled is one edited elsewhere, likely to be edited
 * there again (Syncthing keeps weak block hashes in its index for the same reason). Files only
 * scanned here are not read a second time for this.
 *
 * Entries are named by content hash: one serves any local file with that content. The puller
 * checks its basis on disk as for any basis, and the delta's whole-file check catches anything
 * else. The seed of a cached signature is reused by every transfer against that basis, so a peer
 * that saw it could prepare a block collision for the next one: the whole-file check turns that
 * into a retry with a fresh seed and full-length hashes, never into wrong bytes.
 */

/** Files smaller than this are not worth it: their signature costs under 0.05 s to compute. */
export const MIN_CACHED_SIGNATURE_BYTES = 32 * 1024 * 1024;
/** Entries kept at most (the oldest go first): ~0.1 MB each for 256 MiB, 0.5 MB for 4 GiB. */
export const MAX_CACHED_SIGNATURES = 32;
/** Quiet time after the last pull before the builds start, so they do not slow a burst of pulls. */
export const SIGNATURE_BUILD_DELAY_MS = 1000;

const SUFFIX = '.sig';

export class SignatureCache {
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  /** `directory` holds the entries; `root` is the folder whose files (recorded in `store`) they describe. */
  constructor(
    private readonly directory: string,
    private readonly root: string,
    private readonly store: Store,
    private readonly onError: (message: string) => void = () => undefined,
  ) {}

  /**
   * The cached encoded signature of a basis with this content and size, or undefined. It must be
   * the one this version would make for it (block and hash lengths); any other entry is removed.
   */
  async get(contentHash: Uint8Array, size: number): Promise<Uint8Array | undefined> {
    if (size < MIN_CACHED_SIGNATURE_BYTES) return undefined;
    const file = this.fileOf(contentHash);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch {
      return undefined;
    }
    try {
      const signature = await decodeSignature(chunksOf(bytes));
      const expected = signatureOptionsFor(size);
      if (signature.fileLength === size && signature.blockLength === expected.blockLength && signature.strongLength === expected.strongLength) return bytes;
    } catch {
      // Damaged: removed below, and made again after the next pull.
    }
    await rm(file, { force: true });
    return undefined;
  }

  /** Makes the signatures of these folder paths once the pulls have been quiet a while (large files only). */
  schedule(paths: Iterable<string>): void {
    if (this.closed) return;
    for (const path of paths) this.pending.add(path);
    if (this.pending.size === 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), SIGNATURE_BUILD_DELAY_MS);
  }

  /** Makes the scheduled signatures now, without waiting for the quiet time (tests, mostly). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    return this.drain();
  }

  /** Stops scheduling and waits for a build under way (the store must outlive it). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.pending.clear();
    await this.running;
  }

  private drain(): Promise<void> {
    this.running ??= this.buildPending().finally(() => (this.running = undefined));
    return this.running;
  }

  private async buildPending(): Promise<void> {
    while (!this.closed && this.pending.size > 0) {
      const [path] = this.pending;
      this.pending.delete(path);
      await this.build(path).catch((error: unknown) => {
        // Gone since it was pulled: nothing to sign.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.onError(`signature of ${JSON.stringify(path)}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
  }

  /** Makes the entry of the file at `path` if it has none, only from a file on disk as recorded before and after. */
  private async build(path: string): Promise<void> {
    const record = await this.store.get(path);
    if (record === undefined || record.deleted || record.type !== 'file' || record.size < MIN_CACHED_SIGNATURE_BYTES) return;
    const file = this.fileOf(record.contentHash);
    if ((await lstatOrUndefined(file)) !== undefined) return;
    const absolute = toAbsolute(this.root, path);
    if (!diskMatches(record, await lstatOrUndefined(absolute))) return;
    const bytes = await collect(encodeSignature(readFileChunks(absolute, { recycle: true }), signatureOptionsFor(record.size)));
    // Changed while it was read: what was read may be neither version.
    if (this.closed || !diskMatches(record, await lstatOrUndefined(absolute))) return;
    await mkdir(this.directory, { recursive: true });
    await writeFileAtomic(file, chunksOf(bytes), { sync: false });
    await this.prune();
  }

  /** Removes the oldest entries beyond MAX_CACHED_SIGNATURES. */
  private async prune(): Promise<void> {
    const names = (await readdir(this.directory)).filter((name) => name.endsWith(SUFFIX));
    if (names.length <= MAX_CACHED_SIGNATURES) return;
    const aged = await Promise.all(
      names.map(async (name) => ({ name, mtimeMs: (await stat(join(this.directory, name)).catch(() => undefined))?.mtimeMs ?? 0 })),
    );
    aged.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { name } of aged.slice(0, aged.length - MAX_CACHED_SIGNATURES)) await rm(join(this.directory, name), { force: true });
  }

  private fileOf(contentHash: Uint8Array): string {
    return join(this.directory, Buffer.from(contentHash).toString('hex') + SUFFIX);
  }
}
