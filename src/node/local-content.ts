import { knownEntryOf, type KnownEntry } from '../folder/records.js';
import { holdsContent } from '../store/store-input.js';
import { BLOCK_HASH_BYTES, BLOCK_HASH_LENGTH, type FileRecord, type Store } from '../store/types.js';

/**
 * Where else this folder already holds content a pull needs, from the store's records (never by
 * reading files): files with a given content hash (a rename or copy elsewhere moves no bytes), and
 * the file sharing the most 128 KiB blocks with a new version (the best basis for its delta).
 * Candidates are only hints: the puller checks each on disk and verifies what it builds.
 */

/** Block hashes indexed at most (128 KiB each: 16 GiB of files), so memory stays bounded (~20 MB). */
export const MAX_INDEXED_BLOCKS = 1 << 17;
/** Files remembered per block hash (a block of zeros is in many files; a few candidates are enough). */
export const MAX_FILES_PER_BLOCK = 4;
/** Bytes of a block hash used as its key: 128 bits, plenty to tell blocks apart for a hint. */
const BLOCK_KEY_BYTES = 16;

export interface LocalFile {
  readonly path: string;
  /** What the disk must still show for the record to be trusted (size, mtime, inode, mode). */
  readonly entry: KnownEntry;
}

/**
 * The content an apply may look for: the content and block hashes of the versions it pulls. An
 * index built for them holds only the local files that could answer (not every file of a large
 * folder), and answers every question about them as a full index would.
 */
export class WantedContent {
  /** How many of the versions have each content. */
  readonly contents = new Map<string, number>();
  readonly blocks = new Set<string>();

  constructor(versions: Iterable<Pick<FileRecord, 'contentHash' | 'blockHashes'>>) {
    for (const { contentHash, blockHashes } of versions) {
      const key = contentKey(contentHash);
      this.contents.set(key, (this.contents.get(key) ?? 0) + 1);
      for (let at = 0; at < blockHashes.length; at += BLOCK_HASH_BYTES) this.blocks.add(blockKeyAt(blockHashes, at));
    }
  }

  /** How many of the versions have this content (a rename's source may be moved only when one does). */
  timesWanted(contentHash: Uint8Array): number {
    return this.contents.get(contentKey(contentHash)) ?? 0;
  }
}

/** Files with one content listed per lookup: candidates are checked on disk, a few are enough. */
export const MAX_SAME_CONTENT_FILES = 64;
/**
 * A pass over the store's content table costs less than one content lookup per this many records
 * (~3 us an entry, keys only, against 0.1 ms a lookup here): an apply that pulls more versions
 * than the store holds records / RECORDS_PER_LOOKUP makes the pass instead of a lookup per version.
 */
export const RECORDS_PER_LOOKUP = 10;
/** Records of wanted content read at once after a pass over the content table. */
const CONTENT_READ_BATCH = 1000;
/**
 * Records a pass may read per MiB of the new file it looks for shared blocks for: a pass over
 * 10,000 records (~90 ms here) costs about what sending 1 MiB does over 100 Mbit/s, and a basis
 * saves at most the file. So in a folder of 100,000 files only new files of 10 MiB and more are
 * compared with the folder's blocks.
 */
export const RECORDS_PER_MIB_SENT = 10_000;

/**
 * The local content an apply may use. Files with a given content come from the store's content
 * table, one lookup each, unless the apply pulls so many versions that one pass over the table
 * costs less (a first sync of many small files into a small folder; only the records of wanted
 * contents are then read). Files sharing blocks come from a pass over the store's records, made
 * only when first needed (a new file of more than 16 KiB: what its delta could start from) and
 * only for a file large enough to pay for it. Each pass keeps only files holding content (or
 * blocks) the apply wants, and follows the apply's own commits.
 */
export class LocalContentIndex {
  /** Files of wanted contents, from a pass over the content table (see withContent). */
  private contents?: Promise<FilesByContent>;
  /** Files of wanted contents and blocks, from a pass over the records (see mostShared). */
  private pass?: Promise<RecordPass>;

  /** `wanted`: what the apply may pull (without it, every file is kept by a pass). */
  constructor(
    private readonly store: Store,
    private readonly wanted?: WantedContent,
  ) {}

  /** A record this apply committed: the pass, if made, follows it (the store has it for later ones). */
  add(record: FileRecord): void {
    if (this.contents !== undefined) this.contents = this.contents.then((files) => (this.follow(files, record), files));
    if (this.pass !== undefined) this.pass = this.pass.then((pass) => (pass.add(record), pass));
  }

  /**
   * A path whose file this apply moved away before its record says so: the pass, if made, forgets
   * it (a content lookup may still list it until the delete is recorded; each candidate is checked
   * on disk before use).
   */
  remove(path: string): void {
    if (this.contents !== undefined) this.contents = this.contents.then((files) => (files.remove(path), files));
    if (this.pass !== undefined) this.pass = this.pass.then((pass) => (pass.remove(path), pass));
  }

  /** Non-empty files recorded with this content hash (a lookup gives at most MAX_SAME_CONTENT_FILES, in path order). */
  async withContent(contentHash: Uint8Array): Promise<readonly LocalFile[]> {
    if (this.pass !== undefined) return (await this.pass).withContent(contentHash);
    if (this.contents === undefined && !this.passCostsLess()) return this.lookUp(contentHash);
    this.contents ??= this.passOverContents();
    return (await this.contents).withContent(contentHash);
  }

  /**
   * The file (other than `exclude`) sharing the most blocks with `blockHashes`, at least one; ties
   * go to the first path in byte order, so the choice is the same every time.
   */
  async mostShared(blockHashes: Uint8Array, exclude?: string): Promise<{ file: LocalFile; sharedBlocks: number } | undefined> {
    if (this.pass === undefined && !this.passPaysFor(blockHashes)) return undefined;
    return (await this.passed()).mostShared(blockHashes, exclude);
  }

  private passed(): Promise<RecordPass> {
    this.pass ??= RecordPass.build(this.store, this.wanted);
    return this.pass;
  }

  /** lastSequence bounds the number of records from above: in doubt, lookups (their cost is the apply's size, not the folder's). */
  private passCostsLess(): boolean {
    return this.wanted !== undefined && this.store.lastSequence <= RECORDS_PER_LOOKUP * this.wanted.contents.size;
  }

  /** The files of wanted contents: the content table read through, then only their records. */
  private async passOverContents(): Promise<FilesByContent> {
    const files = new FilesByContent();
    const paths: string[] = [];
    for await (const entries of this.store.contents()) {
      for (const { contentHash, path } of entries) if (this.isWantedContent(contentHash)) paths.push(path);
    }
    for (let at = 0; at < paths.length; at += CONTENT_READ_BATCH) {
      for (const record of await this.store.getMany(paths.slice(at, at + CONTENT_READ_BATCH))) if (record !== undefined) this.follow(files, record);
    }
    return files;
  }

  /** A record as the content pass keeps it: its path's file replaced, kept if it holds a wanted content. */
  private follow(files: FilesByContent, record: FileRecord): void {
    files.remove(record.path);
    if (holdsContent(record) && this.isWantedContent(record.contentHash)) files.put(record);
  }

  private isWantedContent(contentHash: Uint8Array): boolean {
    return this.wanted === undefined || this.wanted.timesWanted(contentHash) > 0;
  }

  /** Whether a file of these blocks is large enough to pay for a pass (see RECORDS_PER_MIB_SENT). */
  private passPaysFor(blockHashes: Uint8Array): boolean {
    const mib = ((blockHashes.length / BLOCK_HASH_BYTES) * BLOCK_HASH_LENGTH) / (1024 * 1024);
    return this.store.lastSequence <= RECORDS_PER_MIB_SENT * mib;
  }

  private async lookUp(contentHash: Uint8Array): Promise<LocalFile[]> {
    const paths = await this.store.pathsWithContent(contentHash, MAX_SAME_CONTENT_FILES);
    if (paths.length === 0) return [];
    const records = await this.store.getMany(paths);
    const wanted = contentKey(contentHash);
    return records
      .filter((record): record is FileRecord => record !== undefined && holdsContent(record) && contentKey(record.contentHash) === wanted)
      .map((record) => ({ path: record.path, entry: knownEntryOf(record) }));
  }
}

/** Non-empty files by path and by content hash, as a pass keeps them. */
class FilesByContent {
  private readonly byContent = new Map<string, LocalFile[]>();
  private readonly files = new Map<string, LocalFile>();

  get(path: string): LocalFile | undefined {
    return this.files.get(path);
  }

  /** Adds a file's record (its path removed first, see remove). */
  put(record: FileRecord): void {
    const file: LocalFile = { path: record.path, entry: knownEntryOf(record) };
    this.files.set(record.path, file);
    const content = contentKey(record.contentHash);
    const sameContent = this.byContent.get(content);
    if (sameContent === undefined) this.byContent.set(content, [file]);
    else sameContent.push(file);
  }

  remove(path: string): void {
    const file = this.files.get(path);
    if (file === undefined) return;
    this.files.delete(path);
    const key = contentKey(file.entry.contentHash);
    const rest = (this.byContent.get(key) ?? []).filter((f) => f.path !== path);
    if (rest.length === 0) this.byContent.delete(key);
    else this.byContent.set(key, rest);
  }

  /** Files recorded with this content hash, in the order they were added. */
  withContent(contentHash: Uint8Array): readonly LocalFile[] {
    return this.byContent.get(contentKey(contentHash)) ?? [];
  }
}

/** Files by content and by the blocks they hold, from one pass over the store (see LocalContentIndex). */
class RecordPass {
  private readonly files = new FilesByContent();
  private readonly byBlock = new Map<string, string[]>();
  private indexedBlocks = 0;

  private constructor(private readonly wanted?: WantedContent) {}

  static async build(store: Store, wanted?: WantedContent): Promise<RecordPass> {
    const pass = new RecordPass(wanted);
    for await (const record of store.records()) pass.add(record);
    return pass;
  }

  /** Adds (or replaces) a path's record; a tombstone or non-file only removes the path. */
  add(record: FileRecord): void {
    this.remove(record.path);
    if (!holdsContent(record) || !this.isWanted(record)) return;
    this.files.put(record);
    for (let at = 0; at < record.blockHashes.length && this.indexedBlocks < MAX_INDEXED_BLOCKS; at += BLOCK_HASH_BYTES) {
      const key = blockKeyAt(record.blockHashes, at);
      if (this.wanted !== undefined && !this.wanted.blocks.has(key)) continue;
      const paths = this.byBlock.get(key);
      if (paths === undefined) {
        this.byBlock.set(key, [record.path]);
        this.indexedBlocks++;
      } else if (paths.length < MAX_FILES_PER_BLOCK && !paths.includes(record.path)) {
        paths.push(record.path);
      }
    }
  }

  /** Forgets a path (its block entries stay: a hint at worst, each candidate is checked on disk). */
  remove(path: string): void {
    this.files.remove(path);
  }

  private isWanted(record: FileRecord): boolean {
    const { wanted } = this;
    if (wanted === undefined || wanted.timesWanted(record.contentHash) > 0) return true;
    for (let at = 0; at < record.blockHashes.length; at += BLOCK_HASH_BYTES) {
      if (wanted.blocks.has(blockKeyAt(record.blockHashes, at))) return true;
    }
    return false;
  }

  /** Files recorded with this content hash, in the order they were added. */
  withContent(contentHash: Uint8Array): readonly LocalFile[] {
    return this.files.withContent(contentHash);
  }

  mostShared(blockHashes: Uint8Array, exclude?: string): { file: LocalFile; sharedBlocks: number } | undefined {
    const counts = new Map<string, number>();
    for (let at = 0; at < blockHashes.length; at += BLOCK_HASH_BYTES) {
      const paths = this.byBlock.get(blockKeyAt(blockHashes, at));
      if (paths === undefined) continue;
      for (const path of paths) if (path !== exclude && this.files.get(path) !== undefined) counts.set(path, (counts.get(path) ?? 0) + 1);
    }
    let best: { path: string; count: number } | undefined;
    for (const [path, count] of counts) {
      if (best === undefined || count > best.count || (count === best.count && Buffer.compare(Buffer.from(path), Buffer.from(best.path)) < 0)) {
        best = { path, count };
      }
    }
    const file = best === undefined ? undefined : this.files.get(best.path);
    return best === undefined || file === undefined ? undefined : { file, sharedBlocks: best.count };
  }
}

/** A content hash as a map key. */
function contentKey(contentHash: Uint8Array): string {
  return Buffer.from(contentHash.buffer, contentHash.byteOffset, contentHash.length).toString('latin1');
}

/** The block hash at byte `at` of a block list as a map key: its first BLOCK_KEY_BYTES. */
function blockKeyAt(blockHashes: Uint8Array, at: number): string {
  return Buffer.from(blockHashes.buffer, blockHashes.byteOffset + at, Math.min(BLOCK_KEY_BYTES, blockHashes.length - at)).toString('latin1');
}
