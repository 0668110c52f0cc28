import { strongLengthForComparisons } from './block-size.js';
import { ByteWriter } from './byte-reader.js';
import {
  FINE_BLOCK_LENGTH,
  FINE_FORMAT_VERSION,
  FINE_MIN_COARSE_BLOCK_LENGTH,
  MAX_FINE_GAP_LENGTH,
  MAX_HELD_ENTRIES,
  MAX_LITERAL_LENGTH,
  MAX_PENDING_SIGNS,
  OP_COPY_AT,
  OP_END,
  OP_LITERAL,
  OP_SIGN,
  OUTPUT_CHUNK_LENGTH,
  STRONG_HASH_FULL_LENGTH,
} from './constants.js';
import { DeltaMatcher, encodeDelta, encodeDeltaHeader, feedMatcher, matcherKernelBytes, newDeltaStats, type DeltaOptions, type DeltaStats } from './delta.js';
import { weakHash } from './rolling-hash.js';
import type { Signature } from './signature.js';
import { SeededHash } from './strong-hash.js';
import { Kernel } from './wasm-kernel.js';

/**
 * The fine round: rsync's blocks are sized for the whole file (16 KiB for 256 MiB), so a 10 KiB
 * edit costs the one or two blocks it touches. A literal range that lies between two matches is
 * therefore not sent at once: the sender asks the receiver (SIGN) for hashes of FINE_BLOCK_LENGTH
 * blocks of the basis range between those matches (the gap: what the edit replaced), matches the
 * literal range again against them, and sends COPY_AT and LITERAL instead. SIGNs go out as soon
 * as a range is found, ahead of the instructions held back behind it, so the round trips overlap
 * the matching (at most MAX_PENDING_SIGNS answers outstanding). The literal bytes are never held:
 * the sender re-reads them from its file by offset, and the whole-file hash at the end of the
 * delta (computed over the first read) catches a file that changed in between.
 *
 * Fine blocks of a gap of `length` bytes: floor(length / f) blocks from its start, and, when f
 * does not divide it, one more full block ending exactly at its end (so every block has length f).
 * An answer is, per block, its weak hash (u32, big-endian) and the first `strongLength` bytes of
 * its seeded strong hash, with the delta's seed.
 */

/** What the sender needs to run the fine round with the receiver. */
export interface FineRoundSender {
  /** The new file's bytes [start, end) again. */
  readTarget(start: number, end: number): AsyncIterable<Uint8Array>;
  /** The receiver's answer to the next SIGN (in order), exactly `length` bytes. */
  nextAnswer(length: number): Promise<Uint8Array>;
}

/** Whether a transfer against `signature` gets a fine round (not for small files, nor without a basis). */
export function fineRoundApplies(signature: Signature): boolean {
  return signature.blockCount > 1 && signature.blockLength >= FINE_MIN_COARSE_BLOCK_LENGTH;
}

export function fineBlockCount(gapLength: number, blockLength: number): number {
  return Math.ceil(gapLength / blockLength);
}

/** Offset in the gap of fine block `index` (see the layout above). */
export function fineBlockOffset(index: number, gapLength: number, blockLength: number): number {
  return index < Math.floor(gapLength / blockLength) ? index * blockLength : gapLength - blockLength;
}

/** The answer to a SIGN: per fine block of `gap` (the basis bytes asked for), weak and truncated strong hash. */
export function signFineBlocks(gap: Uint8Array, blockLength: number, strongLength: number, hash: SeededHash): Uint8Array {
  const count = fineBlockCount(gap.length, blockLength);
  const recordLength = 4 + strongLength;
  const answer = new Uint8Array(count * recordLength);
  const view = new DataView(answer.buffer);
  for (let i = 0; i < count; i++) {
    const at = fineBlockOffset(i, gap.length, blockLength);
    view.setInt32(i * recordLength, weakHash(gap, at, at + blockLength));
    answer.set(hash.digest(gap, at, at + blockLength).subarray(0, strongLength), i * recordLength + 4);
  }
  return answer;
}

/** The fine signature an answer describes, as delta matches against it (blocks all full length). */
function fineSignature(answer: Uint8Array, blockLength: number, strongLength: number, seed: Uint8Array): Signature {
  const recordLength = 4 + strongLength;
  const count = answer.length / recordLength;
  const weak = new Int32Array(count);
  const strong = new Uint8Array(count * strongLength);
  const view = new DataView(answer.buffer, answer.byteOffset, answer.byteLength);
  for (let i = 0; i < count; i++) {
    weak[i] = view.getInt32(i * recordLength);
    strong.set(answer.subarray(i * recordLength + 4, (i + 1) * recordLength), i * strongLength);
  }
  return { blockLength, strongLength, seed, fileLength: count * blockLength, blockCount: count, weak, strong };
}

type Held =
  | { kind: 'ops'; bytes: Uint8Array }
  | { kind: 'literal'; start: number; end: number }
  | {
      kind: 'fine';
      start: number;
      end: number;
      gapStart: number;
      gapLength: number;
      strongLength: number;
      answer: Promise<Uint8Array>;
      answered: boolean;
    };

/** SIGNs sent together, at most... */
const SIGN_BATCH = 16;
/** ...or once the oldest of them was made this many bytes of input ago. */
const SIGN_FLUSH_BYTES = 4 * 1024 * 1024;

/** Fine blocks matched against a range re-read from the new file use a small window. */
const FINE_WINDOW_DATA_LENGTH = 256 * 1024;

/**
 * encodeDelta with the fine round (format version 2): the same matching, but literal ranges are
 * reported by offset, and those between two matches with a gap of FINE_BLOCK_LENGTH to
 * MAX_FINE_GAP_LENGTH bytes go through the fine round. The basis bytes signed in all add up to at
 * most the basis length (the receiver refuses more).
 */
export async function* encodeDeltaWithFineRound(
  signature: Signature,
  source: AsyncIterable<Uint8Array>,
  sender: FineRoundSender,
  stats: DeltaStats = newDeltaStats(),
  options: DeltaOptions = {},
): AsyncGenerator<Uint8Array> {
  if (!fineRoundApplies(signature)) {
    yield* encodeDelta(signature, source, stats, options);
    return;
  }
  const fileHash = await SeededHash.create(signature.seed);
  fileHash.begin();
  const fineHash = await SeededHash.create(signature.seed);
  // One kernel for every fine match, sized for the largest gap.
  let fineKernel: Kernel | undefined;
  // The matcher writes its COPYs to `out`; what goes on the wire, in order, is gathered in `wire`.
  const out = new ByteWriter(64 * 1024);
  const wire = new ByteWriter(OUTPUT_CHUNK_LENGTH + MAX_LITERAL_LENGTH + 64);
  const signs = new ByteWriter(1024);
  wire.bytes(encodeDeltaHeader(signature, FINE_FORMAT_VERSION));
  const held: Held[] = [];
  let pendingSigns = 0;
  let unsentSigns = 0;
  /** Bytes of the new file read when the oldest unsent SIGN was made. */
  let unsentSince = 0;
  let signBudget = signature.fileLength;
  const fullStrength = signature.strongLength === STRONG_HASH_FULL_LENGTH;

  const hold = (entry: Held) => {
    if (out.length > 0) held.push({ kind: 'ops', bytes: out.take() });
    held.push(entry);
  };
  const onLiteralRange = (start: number, end: number, gapStart: number, gapEnd: number) => {
    const gapLength = gapEnd - gapStart;
    if (end - start < FINE_BLOCK_LENGTH || gapLength < FINE_BLOCK_LENGTH || gapLength > MAX_FINE_GAP_LENGTH || gapLength > signBudget) {
      hold({ kind: 'literal', start, end });
      return;
    }
    signBudget -= gapLength;
    // rsync's formula for the comparisons of every range in the file, at most its positions (the
    // new file's length, known so far, or the basis's) x this gap's fine blocks.
    const positions = Math.max(signature.fileLength, end);
    const strongLength = fullStrength ? STRONG_HASH_FULL_LENGTH : strongLengthForComparisons(positions, fineBlockCount(gapLength, FINE_BLOCK_LENGTH));
    signs.u8(OP_SIGN);
    signs.varint(gapStart);
    signs.varint(gapLength);
    signs.varint(FINE_BLOCK_LENGTH);
    signs.u8(strongLength);
    if (unsentSigns++ === 0) unsentSince = stats.fileLength;
    const answer = sender.nextAnswer(fineBlockCount(gapLength, FINE_BLOCK_LENGTH) * (4 + strongLength));
    // Awaited when its turn comes; a transfer that fails before must not leave a rejection unhandled.
    answer.catch(() => undefined);
    const entry: Held = { kind: 'fine', start, end, gapStart, gapLength, strongLength, answer, answered: false };
    void answer.then(() => (entry.answered = true)).catch(() => undefined);
    pendingSigns++;
    hold(entry);
  };
  const matcher = new DeltaMatcher(signature, await SeededHash.create(signature.seed), out, stats, { onLiteralRange });

  /** Writes the literal bytes of [start, end), re-read from the file, yielding full output chunks. */
  async function* literal(start: number, end: number): AsyncGenerator<Uint8Array> {
    let at = start;
    for await (const chunk of sender.readTarget(start, end)) {
      for (let from = 0; from < chunk.length; from += MAX_LITERAL_LENGTH) {
        const piece = chunk.subarray(from, Math.min(chunk.length, from + MAX_LITERAL_LENGTH));
        wire.u8(OP_LITERAL);
        wire.varint(piece.length);
        wire.bytes(piece);
        if (wire.length >= OUTPUT_CHUNK_LENGTH) yield wire.take();
      }
      at += chunk.length;
    }
    if (at !== end) throw new RangeError(`the file ended at byte ${at} while re-reading ${start}..${end}: it changed during the transfer`);
    stats.literalBytes += end - start;
  }

  /** Matches [start, end) of the new file against the fine blocks of the answer: COPY_AT and LITERAL. */
  async function* fine(entry: Extract<Held, { kind: 'fine' }>, answer: Uint8Array): AsyncGenerator<Uint8Array> {
    const { gapStart, gapLength } = entry;
    const fineStats = newDeltaStats();
    // Runs of fine blocks as byte ranges of the basis; adjacent ones merge (the last block may overlap).
    const writeCopy = (writer: ByteWriter, first: number, count: number) => {
      let from = -1;
      let to = -1;
      const flush = () => {
        if (from < 0) return;
        writer.u8(OP_COPY_AT);
        writer.varint(gapStart + from);
        writer.varint(to - from);
      };
      for (let block = first; block < first + count; block++) {
        const at = fineBlockOffset(block, gapLength, FINE_BLOCK_LENGTH);
        if (at === to) {
          to += FINE_BLOCK_LENGTH;
          continue;
        }
        flush();
        from = at;
        to = at + FINE_BLOCK_LENGTH;
      }
      flush();
    };
    const fineMatcher = new DeltaMatcher(fineSignature(answer, FINE_BLOCK_LENGTH, entry.strongLength, signature.seed), fineHash, wire, fineStats, {
      writeCopy,
      adjacentChecks: fineBlockCount(signature.fileLength, FINE_BLOCK_LENGTH),
      windowDataLength: FINE_WINDOW_DATA_LENGTH,
      kernel: (fineKernel ??= new Kernel(
        matcherKernelBytes(fineBlockCount(MAX_FINE_GAP_LENGTH, FINE_BLOCK_LENGTH), FINE_BLOCK_LENGTH, FINE_WINDOW_DATA_LENGTH),
      )),
    });
    let at = entry.start;
    for await (const chunk of sender.readTarget(entry.start, entry.end)) {
      at += chunk.length;
      for (let from = 0; from < chunk.length; ) {
        const take = Math.min(chunk.length - from, fineMatcher.makeRoom());
        fineMatcher.window.set(chunk.subarray(from, from + take), fineMatcher.filled);
        fineMatcher.filled += take;
        from += take;
        if (fineMatcher.filled < fineMatcher.window.length) break;
        while (!fineMatcher.scan(false)) yield wire.take();
      }
    }
    if (at !== entry.end) throw new RangeError(`the file ended at byte ${at} while re-reading ${entry.start}..${entry.end}: it changed during the transfer`);
    while (!fineMatcher.scan(true)) yield wire.take();
    // The range ends where the next match starts: its last bytes may be the tail of the gap's last block.
    const tail = fineMatcher.matchTailOf(fineBlockCount(gapLength, FINE_BLOCK_LENGTH) - 1);
    if (tail > 0) {
      wire.u8(OP_COPY_AT);
      wire.varint(gapStart + gapLength - tail);
      wire.varint(tail);
    }
    fineMatcher.finishMatching();
    stats.literalBytes += fineStats.literalBytes;
    stats.copiedBytes += fineStats.copiedBytes;
    stats.strongHashes += fineStats.strongHashes;
    stats.falseMatches += fineStats.falseMatches;
  }

  /** Puts the SIGNs made so far on the wire, and sends it: the receiver answers them as it reads them. */
  function* sendSigns(): Generator<Uint8Array> {
    if (unsentSigns > 0) {
      wire.bytes(signs.take());
      unsentSigns = 0;
    }
    if (wire.length > 0) yield wire.take();
  }

  /**
   * What is held goes on the wire, in order, as far as answers allow: all of it when `all`, else
   * until the head waits for an answer that has not come and the limits hold. SIGNs are sent in
   * batches (fewer, fuller packets), at the latest when an answer is awaited or when the oldest
   * was made SIGN_FLUSH_BYTES of input ago (the receiver has its answers in time).
   */
  async function* release(all: boolean): AsyncGenerator<Uint8Array> {
    if (unsentSigns >= SIGN_BATCH || (unsentSigns > 0 && stats.fileLength - unsentSince >= SIGN_FLUSH_BYTES)) yield* sendSigns();
    while (held.length > 0) {
      const head = held[0];
      const within = pendingSigns <= MAX_PENDING_SIGNS && held.length <= MAX_HELD_ENTRIES;
      if (head.kind === 'fine' && !head.answered && !all && within) break;
      held.shift();
      if (head.kind === 'ops') {
        wire.bytes(head.bytes);
      } else if (head.kind === 'literal') {
        yield* literal(head.start, head.end);
      } else {
        pendingSigns--;
        // About to wait: whatever the receiver needs to answer goes out first.
        if (!head.answered) yield* sendSigns();
        yield* fine(head, await head.answer);
      }
      if (wire.length >= OUTPUT_CHUNK_LENGTH) yield wire.take();
    }
  }

  /** The matcher's output so far: on the wire when nothing is held, else behind what is. */
  const park = () => {
    if (out.length === 0) return;
    if (held.length > 0) held.push({ kind: 'ops', bytes: out.take() });
    else wire.bytes(out.take());
  };

  for await (const stop of feedMatcher(matcher, source, fileHash, stats)) {
    park();
    yield* release(false);
    if (stop === 'chunk' && wire.length >= OUTPUT_CHUNK_LENGTH) yield wire.take();
  }
  matcher.finishMatching();
  park();
  yield* sendSigns();
  yield* release(true);
  wire.u8(OP_END);
  wire.varint(stats.fileLength);
  wire.bytes(fileHash.final());
  yield wire.take();
}
