import { blockCount as countBlocks, blockLengthFor, strongLengthFor } from './block-size.js';
import { ByteReader } from './byte-reader.js';
import {
  BLOCK_LENGTH_LIMITS,
  DEFAULT_STREAM_BLOCK_LENGTH,
  FORMAT_VERSION,
  IO_CHUNK_LENGTH,
  MAX_FILE_LENGTH,
  MAX_SIGNATURE_BLOCKS,
  SEED_LENGTH,
  SIGNATURE_CHUNK_RECORDS,
  SIGNATURE_MAGIC,
  STRONG_HASH_FULL_LENGTH,
  STRONG_HASH_MIN_LENGTH,
} from './constants.js';
import { MalformedSignatureError } from './errors.js';
import { newSeed, SeededHash } from './strong-hash.js';
import { Kernel, KERNEL_SCRATCH_BYTES } from './wasm-kernel.js';

/**
 * What a receiver tells a sender about its basis file: per block a weak rolling hash and a
 * (possibly truncated) seeded strong hash.
 *
 * Encoding (big-endian):
 *   header  "MSIG" | version u8 | strongLength u8 | 0 u16 | blockLength u32 | seed 8 bytes
 *   chunks  count u32 (1..4096) | count x (weak u32 | strong strongLength bytes)
 *   end     0 u32 | fileLength u64
 * Chunking lets a signature be written while the file is still being read (a pipe has no size),
 * and lets a reader check every count before it reads the records.
 */
export interface Signature {
  readonly blockLength: number;
  readonly strongLength: number;
  readonly seed: Uint8Array;
  /** Length of the basis file the signature describes. */
  readonly fileLength: number;
  readonly blockCount: number;
  /** Weak hash of each block (blockCount entries). */
  readonly weak: Int32Array;
  /** Strong hash of each block, strongLength bytes each. */
  readonly strong: Uint8Array;
}

export interface SignatureOptions {
  blockLength: number;
  strongLength: number;
  /** Per-transfer seed of the strong hash; random when absent. */
  seed?: Uint8Array;
}

const HEADER_LENGTH = 20;

/** Block and strong-hash lengths for a basis of known length, or the pipe defaults when unknown. */
export function signatureOptionsFor(fileLength: number | undefined): SignatureOptions {
  if (fileLength === undefined) {
    return { blockLength: DEFAULT_STREAM_BLOCK_LENGTH, strongLength: STRONG_HASH_FULL_LENGTH };
  }
  const blockLength = blockLengthFor(fileLength);
  return { blockLength, strongLength: strongLengthFor(fileLength, blockLength) };
}

export function checkSignatureOptions(options: SignatureOptions): void {
  const { blockLength, strongLength } = options;
  if (!Number.isInteger(blockLength) || blockLength < BLOCK_LENGTH_LIMITS.min || blockLength > BLOCK_LENGTH_LIMITS.max) {
    throw new RangeError(`block length must be an integer from ${BLOCK_LENGTH_LIMITS.min} to ${BLOCK_LENGTH_LIMITS.max}`);
  }
  if (!Number.isInteger(strongLength) || strongLength < STRONG_HASH_MIN_LENGTH || strongLength > STRONG_HASH_FULL_LENGTH) {
    throw new RangeError(`strong hash length must be an integer from ${STRONG_HASH_MIN_LENGTH} to ${STRONG_HASH_FULL_LENGTH}`);
  }
}

/**
 * Cuts a stream into views holding whole blocks (only the very last may be short), copying only the
 * pieces of blocks that straddle two input chunks.
 */
async function* wholeBlocks(source: AsyncIterable<Uint8Array>, blockLength: number): AsyncGenerator<Uint8Array> {
  const carry = new Uint8Array(blockLength);
  let carried = 0;
  for await (const chunk of source) {
    let offset = 0;
    if (carried > 0) {
      const take = Math.min(blockLength - carried, chunk.length);
      carry.set(chunk.subarray(0, take), carried);
      carried += take;
      offset = take;
      if (carried < blockLength) continue;
      yield carry;
      carried = 0;
    }
    const aligned = offset + Math.floor((chunk.length - offset) / blockLength) * blockLength;
    if (aligned > offset) yield chunk.subarray(offset, aligned);
    if (aligned < chunk.length) {
      carry.set(chunk.subarray(aligned), 0);
      carried = chunk.length - aligned;
    }
  }
  if (carried > 0) yield carry.subarray(0, carried);
}

/**
 * Streams the encoded signature of `source`. Memory: one block plus one chunk of records. Each
 * input chunk is finished with before the next is asked for (a recycling reader is safe).
 */
export async function* encodeSignature(
  source: AsyncIterable<Uint8Array>,
  options: SignatureOptions,
): AsyncGenerator<Uint8Array> {
  checkSignatureOptions(options);
  const { blockLength, strongLength } = options;
  const seed = options.seed ?? newSeed();
  if (seed.length !== SEED_LENGTH) throw new RangeError(`seed must be ${SEED_LENGTH} bytes`);
  const strongHash = await SeededHash.create(seed);
  // Weak hashes are computed in the kernel's memory, a whole number of blocks at a time.
  const kernelSpan = Math.max(1, Math.floor(IO_CHUNK_LENGTH / blockLength)) * blockLength;
  const kernel = new Kernel(kernelSpan);
  const data = KERNEL_SCRATCH_BYTES;

  const header = new Uint8Array(HEADER_LENGTH);
  const headerView = new DataView(header.buffer);
  headerView.setUint32(0, SIGNATURE_MAGIC);
  header[4] = FORMAT_VERSION;
  header[5] = strongLength;
  headerView.setUint32(8, blockLength);
  header.set(seed, 12);
  yield header;

  const recordLength = 4 + strongLength;
  let chunk = new Uint8Array(4 + SIGNATURE_CHUNK_RECORDS * recordLength);
  let records = 0;
  let fileLength = 0;
  const finishChunk = (): Uint8Array => {
    new DataView(chunk.buffer).setUint32(0, records);
    const done = chunk.subarray(0, 4 + records * recordLength);
    chunk = new Uint8Array(chunk.length);
    records = 0;
    return done;
  };

  for await (const blocks of wholeBlocks(source, blockLength)) {
    fileLength += blocks.length;
    for (let start = 0; start < blocks.length; start += blockLength) {
      const end = Math.min(start + blockLength, blocks.length);
      const inKernel = start % kernelSpan;
      if (inKernel === 0) kernel.bytes.set(blocks.subarray(start, Math.min(start + kernelSpan, blocks.length)), data);
      const at = 4 + records * recordLength;
      const weak = kernel.weak(data + inKernel, data + inKernel + (end - start));
      chunk[at] = weak >>> 24;
      chunk[at + 1] = weak >>> 16;
      chunk[at + 2] = weak >>> 8;
      chunk[at + 3] = weak;
      chunk.set(strongHash.digest(blocks, start, end).subarray(0, strongLength), at + 4);
      if (++records === SIGNATURE_CHUNK_RECORDS) yield finishChunk();
    }
  }
  if (records > 0) yield finishChunk();

  const end = new Uint8Array(12);
  const endView = new DataView(end.buffer);
  endView.setUint32(0, 0);
  endView.setUint32(4, Math.floor(fileLength / 2 ** 32));
  endView.setUint32(8, fileLength >>> 0);
  yield end;
}

/**
 * Reads an encoded signature, checking it all: magic, version, lengths within limits, every chunk
 * count, the total against MAX_SIGNATURE_BLOCKS and against the file length at the end. Memory
 * grows with the records actually received, never with a count the input claims.
 */
export async function decodeSignature(source: AsyncIterable<Uint8Array>): Promise<Signature> {
  const fail = (message: string) => new MalformedSignatureError(`malformed signature: ${message}`);
  const reader = new ByteReader(source, fail);
  try {
    return await decodeFrom(reader, fail);
  } catch (error) {
    await reader.close();
    throw error;
  }
}

async function decodeFrom(reader: ByteReader, fail: (message: string) => Error): Promise<Signature> {
  // The magic first, so that any other file is named as such rather than as a short signature.
  if ((await reader.u32('the magic number')) !== SIGNATURE_MAGIC) throw fail('not a mesh signature (bad magic)');
  const header = new Uint8Array(HEADER_LENGTH);
  header.set(await reader.bytes(HEADER_LENGTH - 4, 'the header'), 4);
  const view = new DataView(header.buffer);
  if (header[4] !== FORMAT_VERSION) throw fail(`unsupported version ${header[4]} (this mesh reads version ${FORMAT_VERSION})`);
  const strongLength = header[5];
  if (strongLength < STRONG_HASH_MIN_LENGTH || strongLength > STRONG_HASH_FULL_LENGTH) {
    throw fail(`strong hash length ${strongLength} outside ${STRONG_HASH_MIN_LENGTH}..${STRONG_HASH_FULL_LENGTH}`);
  }
  if (view.getUint16(6) !== 0) throw fail('reserved header bits are set');
  const blockLength = view.getUint32(8);
  if (blockLength < BLOCK_LENGTH_LIMITS.min || blockLength > BLOCK_LENGTH_LIMITS.max) {
    throw fail(`block length ${blockLength} outside ${BLOCK_LENGTH_LIMITS.min}..${BLOCK_LENGTH_LIMITS.max}`);
  }
  const seed = header.slice(12, 12 + SEED_LENGTH);

  const recordLength = 4 + strongLength;
  let weak = new Int32Array(64);
  let strong = new Uint8Array(64 * strongLength);
  let blocks = 0;
  for (;;) {
    const count = await reader.u32('a chunk count');
    if (count === 0) break;
    if (count > SIGNATURE_CHUNK_RECORDS) throw fail(`chunk of ${count} records (at most ${SIGNATURE_CHUNK_RECORDS})`);
    if (blocks + count > MAX_SIGNATURE_BLOCKS) throw fail(`more than ${MAX_SIGNATURE_BLOCKS} blocks`);
    const records = await reader.bytes(count * recordLength, 'block records');
    if (blocks + count > weak.length) {
      const capacity = Math.min(MAX_SIGNATURE_BLOCKS, Math.max(weak.length * 2, blocks + count));
      const grownWeak = new Int32Array(capacity);
      grownWeak.set(weak.subarray(0, blocks));
      weak = grownWeak;
      const grownStrong = new Uint8Array(capacity * strongLength);
      grownStrong.set(strong.subarray(0, blocks * strongLength));
      strong = grownStrong;
    }
    for (let r = 0, at = 0; r < count; r++, at += recordLength) {
      weak[blocks + r] = (records[at] << 24) | (records[at + 1] << 16) | (records[at + 2] << 8) | records[at + 3];
      strong.set(records.subarray(at + 4, at + recordLength), (blocks + r) * strongLength);
    }
    blocks += count;
  }
  const high = await reader.u32('the file length');
  const low = await reader.u32('the file length');
  const fileLength = high * 2 ** 32 + low;
  if (fileLength > MAX_FILE_LENGTH) throw fail(`file length ${fileLength} is too large`);
  if (countBlocks(fileLength, blockLength) !== blocks) {
    throw fail(`${blocks} blocks do not cover a file of ${fileLength} bytes in blocks of ${blockLength}`);
  }
  await reader.expectEnd('signature');
  return {
    blockLength,
    strongLength,
    seed,
    fileLength,
    blockCount: blocks,
    weak: weak.subarray(0, blocks),
    strong: strong.subarray(0, blocks * strongLength),
  };
}
