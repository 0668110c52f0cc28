/**
 * The edit pair of the benchmarks: NEW is OLD with one byte inserted near the start and 256
 * scattered overwrites of 10 KiB (about 1% of a 256 MiB file), streamed, never held whole.
 */
import { open } from 'node:fs/promises';
import { keystream, xorshift32 } from './common.js';

const CHUNK_LENGTH = 1024 * 1024; // files are streamed in 1 MiB pieces

export const INSERT_OFFSET = 4096;
const INSERT_BYTE = 0x5a;
/** Bytes the insertion adds. */
export const INSERT_LENGTH = 1;
export const OVERWRITE_COUNT = 256;
export const OVERWRITE_LENGTH = 10 * 1024; // 256 × 10 KiB ≈ 1% of 256 MiB
const OFFSET_SEED = 0x9e3779b9;

export const EDIT_DESCRIPTION = `${INSERT_LENGTH}-byte insertion at ${INSERT_OFFSET} + ${OVERWRITE_COUNT} overwrites of ${OVERWRITE_LENGTH} bytes`;

/** Bytes the edit changes: inserted plus overwritten. */
export const EDIT_CHANGED_BYTES = INSERT_LENGTH + OVERWRITE_COUNT * OVERWRITE_LENGTH;

export async function* readChunks(file: string): AsyncGenerator<Buffer> {
  const handle = await open(file, 'r');
  try {
    for (;;) {
      // A fresh buffer each time: the consumer may keep or modify what it is given.
      const buffer = Buffer.allocUnsafe(CHUNK_LENGTH);
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_LENGTH, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

export interface Overwrite {
  offset: number;
  bytes: Buffer;
}

/** The overwrites of a NEW of `newLength` bytes: one in each 1/256th of NEW, so they are spread over the whole file and never overlap. */
export function planOverwrites(newLength: number): Overwrite[] {
  const random = xorshift32(OFFSET_SEED);
  const content = keystream('mesh bench delta: overwrites').update(Buffer.alloc(OVERWRITE_COUNT * OVERWRITE_LENGTH)); // 2.6 MB
  const stratum = Math.floor(newLength / OVERWRITE_COUNT);
  return Array.from({ length: OVERWRITE_COUNT }, (_, i) => ({
    offset: i * stratum + (random() % (stratum - OVERWRITE_LENGTH + 1)),
    bytes: content.subarray(i * OVERWRITE_LENGTH, (i + 1) * OVERWRITE_LENGTH),
  }));
}

async function* withInsertion(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let position = 0; // in OLD
  for await (const chunk of chunks) {
    const split = INSERT_OFFSET - position;
    if (split >= 0 && split < chunk.length) {
      yield chunk.subarray(0, split);
      yield Buffer.alloc(INSERT_LENGTH, INSERT_BYTE);
      yield chunk.subarray(split);
    } else {
      yield chunk;
    }
    position += chunk.length;
  }
}

/** Lays the parts of the overwrites that fall in [position, position + piece.length) over piece. */
function applyOverwrites(piece: Buffer, position: number, overwrites: readonly Overwrite[]): void {
  const end = position + piece.length;
  for (const { offset, bytes } of overwrites) {
    const from = Math.max(offset, position);
    const to = Math.min(offset + bytes.length, end);
    if (from < to) bytes.copy(piece, from - position, from - offset, to - offset);
  }
}

/** NEW of the edit pair, streamed from OLD: one byte inserted, then the overwrites (in NEW's offsets). */
export async function* editedChunks(oldFile: string, overwrites: readonly Overwrite[]): AsyncGenerator<Buffer> {
  let position = 0; // in NEW
  for await (const piece of withInsertion(readChunks(oldFile))) {
    applyOverwrites(piece, position, overwrites);
    position += piece.length;
    yield piece;
  }
}
