import { blockCount } from './block-size.js';
import { ByteReader } from './byte-reader.js';
import {
  BLOCK_LENGTH_LIMITS,
  DELTA_MAGIC,
  FINE_BLOCK_LENGTH_LIMITS,
  FINE_FORMAT_VERSION,
  FORMAT_VERSION,
  MAX_FINE_GAP_LENGTH,
  IO_CHUNK_LENGTH,
  MAX_FILE_LENGTH,
  MAX_LITERAL_LENGTH,
  OP_COPY,
  OP_COPY_AT,
  OP_END,
  OP_LITERAL,
  OP_SIGN,
  SEED_LENGTH,
  STRONG_HASH_FULL_LENGTH,
  STRONG_HASH_MIN_LENGTH,
} from './constants.js';
import { DELTA_HEADER_LENGTH } from './delta.js';
import { BasisMismatchError, MalformedDeltaError, VerificationError } from './errors.js';
import { signFineBlocks } from './fine-round.js';
import { SeededHash } from './strong-hash.js';

/** Random-access reads of the basis file (a FileHandle fits). */
export interface Basis {
  readonly length: number;
  /** Reads up to target.length bytes at `position`; resolves to the count read. */
  read(target: Uint8Array, position: number): Promise<number>;
}

/** Output bytes queued ahead of the consumer (basis reads in flight, literals parsed). */
const MAX_BYTES_IN_FLIGHT = 4 * IO_CHUNK_LENGTH;
/**
 * With `recycle`, pieces at least this long go to the consumer as they are, not gathered: its own
 * copy of them is the only one (a received literal arrives in pieces of up to 64 KiB).
 */
const PASS_THROUGH_MIN_LENGTH = 16 * 1024;

export interface PatchStats {
  fileLength: number;
  literalBytes: number;
  copiedBytes: number;
}

/**
 * Where applyDelta sends its answers to the sender's SIGN instructions (the fine round,
 * fine-round.ts): the transfer's way back to the sender. Without one, a SIGN is malformed.
 */
export interface FineRoundReceiver {
  /** Sends one answer, in order; resolves once the transport has taken it. */
  answer(bytes: Uint8Array): Promise<void>;
  /** No answer will follow: the delta ended or failed. Called at least once. */
  close(): void;
}

export interface PatchOptions {
  /** Counts filled in as the patch goes (the caller's, to read even after a failure). */
  readonly stats?: PatchStats;
  /** The fine round's way back to the sender; without one, a SIGN is malformed. */
  readonly receiver?: FineRoundReceiver;
  /**
   * The consumer is done with each yielded piece once it asks for the next (it copies it into
   * buffers of its own first): the patch then reuses its basis and gather buffers instead of
   * allocating 1 MiB per read, and gathers only pieces under PASS_THROUGH_MIN_LENGTH. Every fresh
   * buffer is external memory that drives V8 into a full garbage collection each few dozen MiB,
   * which was a third of a receiver's CPU in a 1% edit of a 256 MiB file.
   */
  readonly recycle?: boolean;
  /**
   * The caller checks the rebuilt bytes against a stronger hash of its own and fails them there
   * (the puller: SHA-256 against the record it pulls): the delta's seeded whole-file hash is then
   * not computed (the promised length still is). Only for a delta with nothing to copy from a basis:
   * where blocks matched by truncated hashes can be wrong, this check is what makes rebuild() try
   * again with full hashes.
   */
  readonly contentCheckedByCaller?: boolean;
}

export function newPatchStats(): PatchStats {
  return { fileLength: 0, literalBytes: 0, copiedBytes: 0 };
}

/**
 * Rebuilds the new file from `basis` and a delta, yielding its bytes in order. Literal data is
 * passed on as views of the delta's chunks, so the delta source must hand out fresh buffers (not a
 * recycling reader). The output is
 * tentative until the generator finishes: only then has the length and seeded whole-file hash been
 * checked (VerificationError otherwise). Write it to a temp file and rename on success.
 */
export async function* applyDelta(basis: Basis, delta: AsyncIterable<Uint8Array>, options: PatchOptions = {}): AsyncGenerator<Uint8Array> {
  const reader = new ByteReader(delta, malformed);
  try {
    const checkFileHash = !(options.contentCheckedByCaller === true && basis.length === 0);
    yield* patch(basis, reader, options.stats ?? newPatchStats(), options.receiver, options.recycle === true, checkFileHash);
  } catch (error) {
    // The delta's source is let go now (a file closed), not when the collector finds it.
    await reader.close();
    throw error;
  } finally {
    options.receiver?.close();
  }
}

const malformed = (message: string) => new MalformedDeltaError(`malformed delta: ${message}`);

async function* patch(
  basis: Basis,
  reader: ByteReader,
  stats: PatchStats,
  receiver: FineRoundReceiver | undefined,
  recycle: boolean,
  checkFileHash: boolean,
): AsyncGenerator<Uint8Array> {
  const fail = malformed;
  // The magic first, so that any other file is named as such rather than as a short delta.
  if ((await reader.u32('the magic number')) !== DELTA_MAGIC) throw fail('not a mesh delta (bad magic)');
  const header = new Uint8Array(DELTA_HEADER_LENGTH);
  header.set(await reader.bytes(DELTA_HEADER_LENGTH - 4, 'the header'), 4);
  const view = new DataView(header.buffer);
  const version = header[4];
  if (version !== FORMAT_VERSION && version !== FINE_FORMAT_VERSION) {
    throw fail(`unsupported version ${version} (this mesh reads versions ${FORMAT_VERSION} and ${FINE_FORMAT_VERSION})`);
  }
  if (header[5] !== 0 || view.getUint16(6) !== 0) throw fail('reserved header bits are set');
  const blockLength = view.getUint32(8);
  if (blockLength < BLOCK_LENGTH_LIMITS.min || blockLength > BLOCK_LENGTH_LIMITS.max) {
    throw fail(`block length ${blockLength} outside ${BLOCK_LENGTH_LIMITS.min}..${BLOCK_LENGTH_LIMITS.max}`);
  }
  const seed = header.slice(12, 12 + SEED_LENGTH);
  const basisLength = view.getUint32(20) * 2 ** 32 + view.getUint32(24);
  if (basisLength > MAX_FILE_LENGTH) throw fail(`basis length ${basisLength} is too large`);
  if (basisLength !== basis.length) {
    throw new BasisMismatchError(
      `the basis has ${basis.length} bytes but the delta was made for one of ${basisLength}: it is not the file the signature was made from`,
    );
  }
  const basisBlocks = blockCount(basisLength, blockLength);
  const fileHash = checkFileHash ? await SeededHash.create(seed) : undefined;
  fileHash?.begin();
  let fineHash: SeededHash | undefined;
  // A sender may have the receiver hash each basis byte once in all (gaps do not overlap).
  let signBudget = basisLength;

  // With `recycle`: IO_CHUNK_LENGTH buffers handed back once their bytes are passed on.
  const spare: Buffer[] = [];
  const bufferFor = (length: number): Buffer =>
    // Not zero-filled: every byte is read into, or we throw.
    recycle && length <= IO_CHUNK_LENGTH ? (spare.pop() ?? Buffer.allocUnsafe(IO_CHUNK_LENGTH)).subarray(0, length) : Buffer.allocUnsafe(length);
  const release = (piece: Uint8Array) => {
    if (recycle && piece.buffer.byteLength === IO_CHUNK_LENGTH && piece.byteOffset === 0) spare.push(Buffer.from(piece.buffer, 0, IO_CHUNK_LENGTH));
  };

  const readBasis = async (position: number, length: number): Promise<Uint8Array> => {
    const piece = bufferFor(length);
    let got = 0;
    while (got < length) {
      const n = await basis.read(piece.subarray(got), position + got);
      if (n === 0) throw new BasisMismatchError(`the basis ended at byte ${position + got}: it changed after the signature was made`);
      got += n;
    }
    return piece;
  };

  // Output pieces in order: basis reads still in flight, or literal bytes already here. Instructions
  // are parsed ahead until MAX_BYTES_IN_FLIGHT are queued, so reads of the next COPY overlap the
  // hashing and writing of this one (a 1% edit makes hundreds of short COPY runs).
  const queue: { piece: Promise<Uint8Array>; length: number; owned: boolean }[] = [];
  let queuedBytes = 0;
  let copyAt = 0;
  let copyTo = 0;
  let ended = false;
  let promisedLength = 0;
  let promisedHash: Uint8Array = new Uint8Array(0);
  const enqueue = (piece: Promise<Uint8Array>, length: number, owned: boolean) => {
    // A read still in flight when the consumer stops early must not become an unhandled rejection.
    piece.catch(() => undefined);
    queue.push({ piece, length, owned });
    queuedBytes += length;
    if (stats.fileLength + queuedBytes > MAX_FILE_LENGTH) throw fail('output too long');
  };

  /** Parses one instruction; COPY only sets the range that `fill` then reads piece by piece. */
  const parse = async (): Promise<void> => {
    const op = await reader.u8('an instruction');
    if (op === OP_COPY) {
      const start = await reader.varint('a copy start');
      const count = await reader.varint('a copy count');
      if (count === 0) throw fail('copy of zero blocks');
      if (start >= basisBlocks || count > basisBlocks - start) {
        throw fail(`copy of blocks ${start}..${start + count - 1} but the basis has ${basisBlocks}`);
      }
      copyAt = start * blockLength;
      copyTo = Math.min((start + count) * blockLength, basisLength);
    } else if (op === OP_LITERAL) {
      const length = await reader.varint('a literal length');
      if (length === 0 || length > MAX_LITERAL_LENGTH) throw fail(`literal of ${length} bytes (1..${MAX_LITERAL_LENGTH})`);
      // Views of the delta's own chunks, no copy: a literal often straddles two of them.
      for await (const view of reader.views(length, 'literal data')) enqueue(Promise.resolve(view), view.length, false);
      stats.literalBytes += length;
    } else if (op === OP_COPY_AT && version === FINE_FORMAT_VERSION) {
      const start = await reader.varint('a copy offset');
      const length = await reader.varint('a copy length');
      if (length === 0) throw fail('copy of zero bytes');
      if (start >= basisLength || length > basisLength - start) {
        throw fail(`copy of bytes ${start}..${start + length - 1} but the basis has ${basisLength}`);
      }
      copyAt = start;
      copyTo = start + length;
    } else if (op === OP_SIGN && version === FINE_FORMAT_VERSION) {
      const start = await reader.varint('a fine gap offset');
      const length = await reader.varint('a fine gap length');
      const fineLength = await reader.varint('a fine block length');
      const strongLength = await reader.u8('a fine strong hash length');
      if (receiver === undefined) throw fail('asks for fine block hashes, but this delta has no way back to its sender');
      if (fineLength < FINE_BLOCK_LENGTH_LIMITS.min || fineLength > FINE_BLOCK_LENGTH_LIMITS.max) {
        throw fail(`fine block length ${fineLength} outside ${FINE_BLOCK_LENGTH_LIMITS.min}..${FINE_BLOCK_LENGTH_LIMITS.max}`);
      }
      if (strongLength < STRONG_HASH_MIN_LENGTH || strongLength > STRONG_HASH_FULL_LENGTH) {
        throw fail(`fine strong hash length ${strongLength} outside ${STRONG_HASH_MIN_LENGTH}..${STRONG_HASH_FULL_LENGTH}`);
      }
      if (length < fineLength || length > MAX_FINE_GAP_LENGTH) throw fail(`fine gap of ${length} bytes (${fineLength}..${MAX_FINE_GAP_LENGTH})`);
      if (start >= basisLength || length > basisLength - start) {
        throw fail(`fine gap ${start}..${start + length - 1} but the basis has ${basisLength} bytes`);
      }
      if (length > signBudget) throw fail('asks for fine hashes of more bytes than the basis has');
      signBudget -= length;
      fineHash ??= await SeededHash.create(seed);
      const gap = await readBasis(start, length);
      await receiver.answer(signFineBlocks(gap, fineLength, strongLength, fineHash));
      release(gap);
    } else if (op === OP_END) {
      // No SIGN can follow: the sender may stop waiting for answers.
      receiver?.close();
      promisedLength = await reader.varint('the file length');
      promisedHash = await reader.bytes(STRONG_HASH_FULL_LENGTH, 'the file hash');
      await reader.expectEnd('delta');
      ended = true;
    } else {
      throw fail(`unknown instruction 0x${op.toString(16).padStart(2, '0')} at byte ${reader.position - 1}`);
    }
  };

  const fill = async (): Promise<void> => {
    while (queuedBytes < MAX_BYTES_IN_FLIGHT) {
      if (copyAt < copyTo) {
        const length = Math.min(IO_CHUNK_LENGTH, copyTo - copyAt);
        enqueue(readBasis(copyAt, length), length, true);
        stats.copiedBytes += length;
        copyAt += length;
      } else if (ended) {
        return;
      } else {
        await parse();
      }
    }
  };

  // Small pieces (short COPY runs, literals) are gathered into one buffer: a write per piece would
  // cost a system call per few KiB, which is most of the time of patching a scattered edit. A
  // consumer that recycles copies each piece into buffers of its own anyway: only the smallest
  // are gathered for it, the rest would be copied twice.
  const largeLength = recycle ? PASS_THROUGH_MIN_LENGTH : IO_CHUNK_LENGTH / 2;
  let gather = Buffer.allocUnsafe(IO_CHUNK_LENGTH);
  let gathered = 0;
  // When the delta breaks off (a lost connection, or a malformed instruction), what was queued
  // before it is still passed on, then the error: an interrupted pull keeps every byte it received
  // as the next attempt's basis instead of losing up to MAX_BYTES_IN_FLIGHT.
  let failure: { error: unknown } | undefined;
  for (;;) {
    if (failure === undefined) {
      try {
        await fill();
      } catch (error) {
        failure = { error };
      }
    }
    const next = queue.shift();
    if (next === undefined) break;
    queuedBytes -= next.length;
    const piece = await next.piece;
    fileHash?.update(piece);
    stats.fileLength += piece.length;
    const large = piece.length >= largeLength;
    if (gathered > 0 && (large || gathered + piece.length > gather.length)) {
      yield gather.subarray(0, gathered);
      if (!recycle) gather = Buffer.allocUnsafe(IO_CHUNK_LENGTH);
      gathered = 0;
    }
    if (large) {
      yield piece;
    } else {
      gather.set(piece, gathered);
      gathered += piece.length;
    }
    if (next.owned) release(piece);
  }
  if (gathered > 0) yield gather.subarray(0, gathered);
  if (failure !== undefined) throw failure.error;
  if (promisedLength !== stats.fileLength) {
    throw new VerificationError(`the delta promised ${promisedLength} bytes but rebuilt ${stats.fileLength}`);
  }
  const actual = fileHash?.final();
  if (actual !== undefined && !actual.every((byte, i) => byte === promisedHash[i])) {
    throw new VerificationError('the rebuilt file does not match the hash of the new file');
  }
}
