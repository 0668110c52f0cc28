import { blockCount } from './block-size.js';
import { ByteReader } from './byte-reader.js';
import {
  BLOCK_LENGTH_LIMITS,
  DELTA_MAGIC,
  FORMAT_VERSION,
  IO_CHUNK_LENGTH,
  MAX_FILE_LENGTH,
  MAX_LITERAL_LENGTH,
  OP_COPY,
  OP_END,
  OP_LITERAL,
  SEED_LENGTH,
  STRONG_HASH_FULL_LENGTH,
} from './constants.js';
import { DELTA_HEADER_LENGTH } from './delta.js';
import { BasisMismatchError, MalformedDeltaError, VerificationError } from './errors.js';
import { SeededHash } from './strong-hash.js';

/** Random-access reads of the basis file (a FileHandle fits). */
export interface Basis {
  readonly length: number;
  /** Reads up to target.length bytes at `position`; resolves to the count read. */
  read(target: Uint8Array, position: number): Promise<number>;
}

/** Output bytes queued ahead of the consumer (basis reads in flight, literals parsed). */
const MAX_BYTES_IN_FLIGHT = 4 * IO_CHUNK_LENGTH;

export interface PatchStats {
  fileLength: number;
  literalBytes: number;
  copiedBytes: number;
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
export async function* applyDelta(
  basis: Basis,
  delta: AsyncIterable<Uint8Array>,
  stats: PatchStats = newPatchStats(),
): AsyncGenerator<Uint8Array> {
  const fail = (message: string) => new MalformedDeltaError(`malformed delta: ${message}`);
  const reader = new ByteReader(delta, fail);
  // The magic first, so that any other file is named as such rather than as a short delta.
  if ((await reader.u32('the magic number')) !== DELTA_MAGIC) throw fail('not a mesh delta (bad magic)');
  const header = new Uint8Array(DELTA_HEADER_LENGTH);
  header.set(await reader.bytes(DELTA_HEADER_LENGTH - 4, 'the header'), 4);
  const view = new DataView(header.buffer);
  if (header[4] !== FORMAT_VERSION) throw fail(`unsupported version ${header[4]} (this mesh reads version ${FORMAT_VERSION})`);
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
  const fileHash = await SeededHash.create(seed);
  fileHash.begin();

  const readBasis = async (position: number, length: number): Promise<Uint8Array> => {
    // Not zero-filled: every byte is read into, or we throw.
    const piece = Buffer.allocUnsafe(length);
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
  const queue: { piece: Promise<Uint8Array>; length: number }[] = [];
  let queuedBytes = 0;
  let copyAt = 0;
  let copyTo = 0;
  let ended = false;
  let promisedLength = 0;
  let promisedHash: Uint8Array = new Uint8Array(0);
  const enqueue = (piece: Promise<Uint8Array>, length: number) => {
    // A read still in flight when the consumer stops early must not become an unhandled rejection.
    piece.catch(() => undefined);
    queue.push({ piece, length });
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
      for await (const view of reader.views(length, 'literal data')) enqueue(Promise.resolve(view), view.length);
      stats.literalBytes += length;
    } else if (op === OP_END) {
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
        enqueue(readBasis(copyAt, length), length);
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
  // cost a system call per few KiB, which is most of the time of patching a scattered edit.
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
    fileHash.update(piece);
    stats.fileLength += piece.length;
    const large = piece.length >= IO_CHUNK_LENGTH / 2;
    if (gathered > 0 && (large || gathered + piece.length > gather.length)) {
      yield gather.subarray(0, gathered);
      gather = Buffer.allocUnsafe(IO_CHUNK_LENGTH);
      gathered = 0;
    }
    if (large) {
      yield piece;
    } else {
      gather.set(piece, gathered);
      gathered += piece.length;
    }
  }
  if (gathered > 0) yield gather.subarray(0, gathered);
  if (failure !== undefined) throw failure.error;
  if (promisedLength !== stats.fileLength) {
    throw new VerificationError(`the delta promised ${promisedLength} bytes but rebuilt ${stats.fileLength}`);
  }
  const actual = fileHash.final();
  if (!actual.every((byte, i) => byte === promisedHash[i])) {
    throw new VerificationError('the rebuilt file does not match the hash of the new file');
  }
}
