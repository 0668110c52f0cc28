import { BlockIndex, prefilterBytes, strongEquals } from './block-index.js';
import { ByteWriter } from './byte-reader.js';
import {
  DELTA_MAGIC,
  FALSE_MATCH_ALLOWANCE,
  FALSE_MATCH_BYTES_PER_CREDIT,
  FORMAT_VERSION,
  IO_CHUNK_LENGTH,
  MAX_CHAIN_WALK,
  MAX_LITERAL_LENGTH,
  OP_COPY,
  OP_END,
  OP_LITERAL,
  OUTPUT_CHUNK_LENGTH,
  STRONG_HASH_BIAS_BITS,
  STRONG_HASH_FULL_LENGTH,
} from './constants.js';
import type { Signature } from './signature.js';
import { SeededHash } from './strong-hash.js';
import { Kernel, KERNEL_SCRATCH_BYTES } from './wasm-kernel.js';

/**
 * The delta format: how to rebuild the new file from the basis a signature described.
 *
 *   header   "MDLT" | version u8 | 0 u8 | 0 u16 | blockLength u32 | seed 8 bytes | basisLength u64
 *   ops      0x01 COPY    startBlock varint | blockCount varint     (blocks of the basis, in order)
 *            0x02 LITERAL length varint (1..1 MiB) | bytes
 *            0x00 END     fileLength varint | xxh128 of the new file, seeded (16 bytes)
 * A run of adjacent matched blocks is one COPY, so an unchanged file costs a few bytes.
 */
export const DELTA_HEADER_LENGTH = 28;

/** Bytes of new data the delta window holds beside one block. */
const WINDOW_DATA_LENGTH = 2 * IO_CHUNK_LENGTH;

export interface DeltaStats {
  fileLength: number;
  literalBytes: number;
  copiedBytes: number;
  /** Strong hashes computed over windows of the new file (each costs a block's worth of hashing). */
  strongHashes: number;
  /** Positions where a weak hash matched but no strong hash did. */
  falseMatches: number;
  /** True when false matches ran over budget and the rest of the file went out as literal data. */
  gaveUp: boolean;
}

export function newDeltaStats(): DeltaStats {
  return { fileLength: 0, literalBytes: 0, copiedBytes: 0, strongHashes: 0, falseMatches: 0, gaveUp: false };
}

export function encodeDeltaHeader(signature: Signature, version = FORMAT_VERSION): Uint8Array {
  const header = new Uint8Array(DELTA_HEADER_LENGTH);
  const view = new DataView(header.buffer);
  view.setUint32(0, DELTA_MAGIC);
  header[4] = version;
  view.setUint32(8, signature.blockLength);
  header.set(signature.seed, 12);
  view.setUint32(20, Math.floor(signature.fileLength / 2 ** 32));
  view.setUint32(24, signature.fileLength >>> 0);
  return header;
}

export interface MatcherOptions {
  /**
   * Literal ranges are reported here instead of written (the fine round's sender re-reads them
   * from the file): offsets in the new file, and the basis range between the matches around them
   * (gapEnd < gapStart when the matches are out of order).
   */
  onLiteralRange?: (start: number, end: number, gapStart: number, gapEnd: number) => void;
  /** Writes a run of `count` matched blocks from block `start`; default: COPY start count. */
  writeCopy?: (out: ByteWriter, start: number, count: number) => void;
  /**
   * Adjacent-block checks the whole transfer may make, across every matcher it runs (default: this
   * signature's full blocks). The fine round runs a matcher per gap, so it counts the fine blocks of
   * the whole file: sized per gap, the strong hash alone would keep rsync's odds per gap, not per file.
   */
  adjacentChecks?: number;
  /** Bytes of new data the window holds beside one block (default 2 MiB). */
  windowDataLength?: number;
  /**
   * A kernel to reuse (one matcher at a time), of at least matcherKernelBytes(...) bytes: saves a
   * WebAssembly memory per matcher when many small ones run (the fine round).
   */
  kernel?: Kernel;
}

/** Kernel bytes a matcher needs for `blocks` full blocks of `blockLength` and its window. */
export function matcherKernelBytes(blocks: number, blockLength: number, windowDataLength = WINDOW_DATA_LENGTH): number {
  return prefilterBytes(blocks) + blockLength + windowDataLength;
}

/**
 * The matching half of delta, synchronous so the JIT can optimise it: it owns a window of the new
 * file (in the WebAssembly kernel's memory, beside the prefilter) and turns it into COPY and LITERAL
 * instructions, returning whenever it needs more input or has a chunk of output ready.
 *
 * At each position the weak hash goes through a bitset prefilter; only then are candidates compared,
 * and a strong hash of the window is computed only if some weak hash is equal. After a match the
 * block that follows it is tried first, so runs of unchanged blocks become single COPY instructions.
 */
export class DeltaMatcher {
  readonly window: Uint8Array;
  /** Valid bytes in the window. */
  filled = 0;
  /** File offset of window[0]. */
  private base = 0;
  /** Start of the candidate block in the window. */
  private pos = 0;
  /** Start of data not yet covered by a COPY or LITERAL. */
  private litStart = 0;
  private runStart = 0;
  private runLength = 0;
  private hash = 0;
  private hashValid = false;
  private lastMatch = -1;
  private matching: boolean;
  private strongAt = -1;
  private strongValue: Uint8Array = new Uint8Array(0);
  private readonly found = new Int32Array(MAX_CHAIN_WALK);
  private readonly index: BlockIndex;
  private readonly kernel: Kernel;
  /** Kernel addresses of the prefilter and of window[0]. */
  private readonly bitsAt = KERNEL_SCRATCH_BYTES;
  private readonly windowAt: number;
  private readonly fullBlocks: number;
  private readonly tailLength: number;
  /**
   * Whether the block after a match may be confirmed by its strong hash alone, skipping the weak
   * hash (a pass over every unchanged byte). rsync sizes the strong hash for positions x blocks
   * comparisons; adjacency checks number at most one per match, so at most `blocks`, and the strong
   * hash alone keeps rsync's odds of a false match when its bits cover log2(blocks) plus the same
   * margin (STRONG_HASH_BIAS_BITS); else the weak hash must agree first. A false match would still
   * be caught by the whole-file hash, but the transfer would be redone.
   */
  private readonly adjacentByStrongHash: boolean;
  /** End in the basis of the last match (0 before any): where the gap before a literal starts. */
  private previousMatchEnd = 0;
  private readonly onLiteralRange: MatcherOptions['onLiteralRange'];
  private readonly writeCopy: MatcherOptions['writeCopy'];

  constructor(
    private readonly signature: Signature,
    private readonly blockHash: SeededHash,
    private readonly out: ByteWriter,
    private readonly stats: DeltaStats,
    options: MatcherOptions = {},
  ) {
    const B = signature.blockLength;
    this.onLiteralRange = options.onLiteralRange;
    this.writeCopy = options.writeCopy;
    this.fullBlocks = Math.floor(signature.fileLength / B);
    this.tailLength = signature.fileLength - this.fullBlocks * B;
    const bitsLength = prefilterBytes(this.fullBlocks);
    this.windowAt = this.bitsAt + bitsLength;
    const kernelBytes = bitsLength + B + (options.windowDataLength ?? WINDOW_DATA_LENGTH);
    if (options.kernel !== undefined && options.kernel.bytes.length < KERNEL_SCRATCH_BYTES + kernelBytes) {
      throw new RangeError('the kernel given to the matcher is too small');
    }
    this.kernel = options.kernel ?? new Kernel(kernelBytes);
    // A reused kernel holds an earlier prefilter.
    if (options.kernel !== undefined) this.kernel.bytes.fill(0, this.bitsAt, this.windowAt);
    this.kernel.setScanWindow(B);
    this.index = new BlockIndex(signature, this.fullBlocks, this.kernel.bytes.subarray(this.bitsAt, this.windowAt));
    this.matching = this.fullBlocks > 0;
    const adjacentChecks = Math.max(1, options.adjacentChecks ?? this.fullBlocks);
    this.adjacentByStrongHash = 8 * signature.strongLength >= Math.log2(adjacentChecks) + STRONG_HASH_BIAS_BITS;
    this.window = this.kernel.bytes.subarray(this.windowAt, this.windowAt + B + (options.windowDataLength ?? WINDOW_DATA_LENGTH));
  }

  /** Room left at the end of the window, after moving unconsumed data to the front. */
  makeRoom(): number {
    // Reported literal ranges need no bytes: they are re-read, so the window may slide past them.
    if (this.onLiteralRange === undefined) this.flushLiteral();
    const { pos } = this;
    if (pos > 0) {
      this.window.copyWithin(0, pos, this.filled);
      this.base += pos;
      this.filled -= pos;
      this.litStart -= pos;
      this.pos = 0;
    }
    return this.window.length - this.filled;
  }

  /**
   * Matches as far as the data allows. Returns true when it stopped for more input (or, at the end of
   * the input, because everything is consumed), false when output is ready to be taken.
   */
  scan(endOfInput: boolean): boolean {
    const B = this.signature.blockLength;
    const S = this.signature.strongLength;
    const { weak: weaks, strong: strongs } = this.signature;
    const { bits, bitShift } = this.index;
    const { out, kernel, windowAt, bitsAt } = this;
    // Literals are written from the window; reported ranges (the fine round) are re-read instead.
    const bytesInWindow = this.onLiteralRange === undefined;
    for (;;) {
      if (out.length >= OUTPUT_CHUNK_LENGTH) return false;
      const available = this.filled - this.pos;
      if (!endOfInput && available <= B) return true;
      if (available < B) return true;
      if (!this.matching) {
        // All literal: a literal at a time, so each goes out before the next is written (the
        // output never outgrows its buffer, which would copy it into one twice as large). One
        // that reaches the end of the data waits for finish(), so the end marker goes out with it.
        this.pos = bytesInWindow ? Math.min(this.filled, this.litStart + MAX_LITERAL_LENGTH) : this.filled;
        if (bytesInWindow && this.pos - this.litStart >= MAX_LITERAL_LENGTH && this.pos < this.filled) this.flushLiteral();
        continue;
      }
      if (!this.hashValid) {
        // Right after a match, try the block that follows it first.
        const next = this.lastMatch + 1;
        const adjacent = this.lastMatch >= 0 && next < this.fullBlocks;
        if (adjacent && this.adjacentByStrongHash && strongEquals(strongs, next * S, this.strongOfWindow(), S)) {
          this.onMatch(next, B);
          continue;
        }
        this.hash = kernel.weak(windowAt + this.pos, windowAt + this.pos + B);
        this.hashValid = true;
        if (adjacent && !this.adjacentByStrongHash && weaks[next] === this.hash) {
          if (strongEquals(strongs, next * S, this.strongOfWindow(), S)) {
            this.onMatch(next, B);
            continue;
          }
        }
      }
      const bit = this.hash >>> bitShift;
      if ((bits[bit >>> 3] & (1 << (bit & 7))) !== 0) {
        const count = this.index.candidates(this.hash, this.found);
        if (count > 0) {
          const strong = this.strongOfWindow();
          let match = -1;
          for (let c = 0; c < count && match < 0; c++) {
            if (strongEquals(strongs, this.found[c] * S, strong, S)) match = this.found[c];
          }
          if (match >= 0) {
            this.onMatch(match, B);
            continue;
          }
          const budget = FALSE_MATCH_ALLOWANCE + (this.base + this.pos) / FALSE_MATCH_BYTES_PER_CREDIT;
          if (++this.stats.falseMatches > budget) {
            this.matching = false;
            this.stats.gaveUp = true;
            continue;
          }
        }
      }
      if (available === B) return true; // end of input: no byte left to roll in
      const stop = bytesInWindow ? Math.min(this.filled - B, this.litStart + MAX_LITERAL_LENGTH) : this.filled - B;
      this.pos = kernel.scan(windowAt + this.pos, windowAt + stop, B, this.hash, bitsAt, bitShift) - windowAt;
      this.hash = kernel.scannedHash;
      if (bytesInWindow && this.pos - this.litStart >= MAX_LITERAL_LENGTH) this.flushLiteral();
    }
  }

  /** After the last scan: matches the basis's short last block at the very end, then ends the delta. */
  finish(fileHash: Uint8Array): void {
    this.finishMatching();
    this.out.u8(OP_END);
    this.out.varint(this.stats.fileLength);
    this.out.bytes(fileHash);
  }

  /**
   * After the last scan, before finishMatching: when fewer than a block of unmatched bytes remain
   * and the last blockLength bytes of the input equal block `block`, those bytes are that block's
   * tail. Returns how many (the caller copies them, as bytes of the basis), else 0. The fine round
   * uses it for its gap's last block, which overlaps the one before it in the basis.
   */
  matchTailOf(block: number): number {
    const B = this.signature.blockLength;
    const S = this.signature.strongLength;
    const { filled, litStart } = this;
    const pending = filled - litStart;
    if (pending <= 0 || pending >= B || filled < B || this.stats.gaveUp || block >= this.fullBlocks) return 0;
    const start = filled - B;
    if (this.signature.weak[block] !== this.kernel.weak(this.windowAt + start, this.windowAt + filled)) return 0;
    this.stats.strongHashes++;
    if (!strongEquals(this.signature.strong, block * S, this.blockHash.digest(this.window, start, filled), S)) return 0;
    this.flushRun();
    this.stats.copiedBytes += pending;
    this.pos = filled;
    this.litStart = filled;
    return pending;
  }

  /** After the last scan: matches the basis's short last block at the very end, flushes what is pending. */
  finishMatching(): void {
    const { tailLength, fullBlocks, window, filled } = this;
    const { weak: weaks, strong: strongs, strongLength: S } = this.signature;
    if (!this.stats.gaveUp && tailLength > 0 && filled - this.pos >= tailLength) {
      const start = filled - tailLength;
      if (weaks[fullBlocks] === this.kernel.weak(this.windowAt + start, this.windowAt + filled)) {
        this.stats.strongHashes++;
        if (strongEquals(strongs, fullBlocks * S, this.blockHash.digest(window, start, filled), S)) {
          this.pos = start;
          this.onMatch(fullBlocks, tailLength);
        }
      }
    }
    this.pos = filled;
    this.flushLiteral(this.signature.fileLength);
    this.flushRun();
  }

  private strongOfWindow(): Uint8Array {
    const at = this.base + this.pos;
    if (this.strongAt !== at) {
      this.stats.strongHashes++;
      this.strongValue = this.blockHash.digest(this.window, this.pos, this.pos + this.signature.blockLength);
      this.strongAt = at;
    }
    return this.strongValue;
  }

  private onMatch(block: number, length: number): void {
    this.flushLiteral(block * this.signature.blockLength);
    if (this.runLength > 0 && this.runStart + this.runLength === block) {
      this.runLength++;
    } else {
      this.flushRun();
      this.runStart = block;
      this.runLength = 1;
    }
    this.pos += length;
    this.litStart = this.pos;
    this.hashValid = false;
    this.lastMatch = block;
    this.previousMatchEnd = block * this.signature.blockLength + length;
  }

  private flushRun(): void {
    if (this.runLength === 0) return;
    const B = this.signature.blockLength;
    if (this.writeCopy === undefined) {
      this.out.u8(OP_COPY);
      this.out.varint(this.runStart);
      this.out.varint(this.runLength);
    } else {
      this.writeCopy(this.out, this.runStart, this.runLength);
    }
    this.stats.copiedBytes += Math.min((this.runStart + this.runLength) * B, this.signature.fileLength) - this.runStart * B;
    this.runLength = 0;
  }

  /** `nextMatchStart`: where in the basis the match after this literal starts (undefined: not known yet). */
  private flushLiteral(nextMatchStart?: number): void {
    const { pos, litStart } = this;
    if (pos <= litStart) return;
    this.flushRun();
    if (this.onLiteralRange !== undefined) {
      // Only at a match or the end: a reported range is whole, with the gap around it.
      this.onLiteralRange(this.base + litStart, this.base + pos, this.previousMatchEnd, nextMatchStart ?? -1);
      this.litStart = pos;
      return;
    }
    for (let start = litStart; start < pos; start += MAX_LITERAL_LENGTH) {
      const end = Math.min(pos, start + MAX_LITERAL_LENGTH);
      this.out.u8(OP_LITERAL);
      this.out.varint(end - start);
      this.out.bytes(this.window.subarray(start, end));
    }
    this.stats.literalBytes += pos - litStart;
    this.litStart = pos;
  }
}

export interface DeltaOptions {
  /**
   * The receiver checks the rebuilt file against a content hash of its own (a mesh puller: SHA-256
   * against the record it pulls). For an empty signature (no basis: every byte a literal) the
   * delta's seeded whole-file hash is then zeros, not computed; with blocks to match it always is,
   * since the receiver's retry after a false match rests on it.
   */
  readonly receiverChecksContent?: boolean;
}

/**
 * Streams the delta that turns the basis described by `signature` into `source`. Memory: the
 * signature, its index, and a window of one block plus 2 MiB. Each input chunk is copied into the
 * window before the next is asked for (a recycling reader is safe).
 */
export async function* encodeDelta(
  signature: Signature,
  source: AsyncIterable<Uint8Array>,
  stats: DeltaStats = newDeltaStats(),
  options: DeltaOptions = {},
): AsyncGenerator<Uint8Array> {
  const unhashed = options.receiverChecksContent === true && signature.blockCount === 0;
  const fileHash = unhashed ? undefined : await SeededHash.create(signature.seed);
  fileHash?.begin();
  const out = new ByteWriter(OUTPUT_CHUNK_LENGTH + MAX_LITERAL_LENGTH + 64);
  out.bytes(encodeDeltaHeader(signature));
  const matcher = new DeltaMatcher(signature, await SeededHash.create(signature.seed), out, stats);

  for await (const stop of feedMatcher(matcher, source, fileHash, stats)) if (stop === 'output') yield out.take();
  matcher.finish(fileHash?.final() ?? new Uint8Array(STRONG_HASH_FULL_LENGTH));
  yield out.take();
}

/** Why feedMatcher paused: the matcher's output wants taking, or a source chunk is all in. */
export type MatcherStop = 'output' | 'chunk';

/**
 * Runs `source` through the matcher's window to its end (the last scans included), hashing it into
 * `fileHash` (when there is one) and counting it: pauses (yields) whenever the matcher stops with
 * output to take, and after each chunk of the source. Each chunk is copied into the window before
 * the next is asked for.
 */
export async function* feedMatcher(matcher: DeltaMatcher, source: AsyncIterable<Uint8Array>, fileHash: SeededHash | undefined, stats: DeltaStats): AsyncGenerator<MatcherStop> {
  for await (const chunk of source) {
    fileHash?.update(chunk);
    stats.fileLength += chunk.length;
    for (let at = 0; at < chunk.length; ) {
      const take = Math.min(chunk.length - at, matcher.makeRoom());
      matcher.window.set(chunk.subarray(at, at + take), matcher.filled);
      matcher.filled += take;
      at += take;
      if (matcher.filled < matcher.window.length) break;
      while (!matcher.scan(false)) yield 'output';
    }
    yield 'chunk';
  }
  while (!matcher.scan(true)) yield 'output';
}
