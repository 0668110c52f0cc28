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

export interface PatchStats {
  fileLength: number;
  literalBytes: number;
  copiedBytes: number;
}

export function newPatchStats(): PatchStats {
  return { fileLength: 0, literalBytes: 0, copiedBytes: 0 };
}

/**
 * Rebuilds the new file from `basis` and a delta, yielding its bytes in order. The output is
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
    const piece = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = await basis.read(piece.subarray(got), position + got);
      if (n === 0) throw new BasisMismatchError(`the basis ended at byte ${position + got}: it changed after the signature was made`);
      got += n;
    }
    return piece;
  };

  for (;;) {
    const op = await reader.u8('an instruction');
    if (op === OP_COPY) {
      const start = await reader.varint('a copy start');
      const count = await reader.varint('a copy count');
      if (count === 0) throw fail('copy of zero blocks');
      if (start >= basisBlocks || count > basisBlocks - start) {
        throw fail(`copy of blocks ${start}..${start + count - 1} but the basis has ${basisBlocks}`);
      }
      const from = start * blockLength;
      const to = Math.min((start + count) * blockLength, basisLength);
      if (stats.fileLength + (to - from) > MAX_FILE_LENGTH) throw fail('output too long');
      // Read the next piece while the current one is hashed and written.
      let next = readBasis(from, Math.min(IO_CHUNK_LENGTH, to - from));
      for (let at = from; at < to; ) {
        const piece = await next;
        at += piece.length;
        if (at < to) next = readBasis(at, Math.min(IO_CHUNK_LENGTH, to - at));
        fileHash.update(piece);
        stats.fileLength += piece.length;
        stats.copiedBytes += piece.length;
        yield piece;
      }
    } else if (op === OP_LITERAL) {
      const length = await reader.varint('a literal length');
      if (length === 0 || length > MAX_LITERAL_LENGTH) throw fail(`literal of ${length} bytes (1..${MAX_LITERAL_LENGTH})`);
      if (stats.fileLength + length > MAX_FILE_LENGTH) throw fail('output too long');
      for await (const piece of reader.views(length, 'literal data')) {
        fileHash.update(piece);
        stats.fileLength += piece.length;
        stats.literalBytes += piece.length;
        yield piece;
      }
    } else if (op === OP_END) {
      const fileLength = await reader.varint('the file length');
      const expected = await reader.bytes(STRONG_HASH_FULL_LENGTH, 'the file hash');
      await reader.expectEnd('delta');
      if (fileLength !== stats.fileLength) {
        throw new VerificationError(`the delta promised ${fileLength} bytes but rebuilt ${stats.fileLength}`);
      }
      const actual = fileHash.final();
      if (!actual.every((byte, i) => byte === expected[i])) {
        throw new VerificationError('the rebuilt file does not match the hash of the new file');
      }
      return;
    } else {
      throw fail(`unknown instruction 0x${op.toString(16).padStart(2, '0')} at byte ${reader.position - 1}`);
    }
  }
}
