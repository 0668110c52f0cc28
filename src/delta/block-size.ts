import {
  BLOCK_SQRT_THRESHOLD,
  MAX_BLOCK_LENGTH,
  MIN_BLOCK_LENGTH,
  STRONG_HASH_BIAS_BITS,
  STRONG_HASH_FULL_LENGTH,
  STRONG_HASH_MIN_LENGTH,
} from './constants.js';

/**
 * Block length for a file of `fileLength` bytes, by rsync's rule: 700 bytes for files up to 490,000
 * bytes, then the square root rounded down to a multiple of 8, at most 128 KiB. The square root keeps
 * both the signature (blocks) and the literal cost of an edit (block length) growing as sqrt(size).
 */
export function blockLengthFor(fileLength: number): number {
  if (fileLength <= BLOCK_SQRT_THRESHOLD) return MIN_BLOCK_LENGTH;
  const root = Math.floor(Math.sqrt(fileLength)) & ~7;
  return Math.min(MAX_BLOCK_LENGTH, Math.max(MIN_BLOCK_LENGTH, root));
}

/**
 * Bytes of strong hash to keep per block, by rsync's formula: enough bits that a false match over the
 * whole file is unlikely (about 2^-10), given the 32-bit weak hash already had to match. A false match
 * is caught by the content hash and the transfer is redone with full-length hashes.
 */
export function strongLengthFor(fileLength: number, blockLength: number): number {
  let bits = STRONG_HASH_BIAS_BITS;
  for (let l = fileLength; (l = Math.floor(l / 2)) > 0; ) bits += 2;
  for (let b = blockLength; (b = Math.floor(b / 2)) > 0 && bits > 0; ) bits--;
  return strongBytesFor(bits);
}

/**
 * Bytes of strong hash for matching at `positions` positions against `blocks` blocks, by the same
 * formula: the fine round matches each gap separately, but its odds must hold for the whole file,
 * so it counts the file's positions against each gap's blocks.
 */
export function strongLengthForComparisons(positions: number, blocks: number): number {
  return strongBytesFor(STRONG_HASH_BIAS_BITS + floorLog2(positions) + floorLog2(blocks));
}

/** rsync's rounding: the bits beyond the 32 of the weak hash, in whole bytes, within our bounds. */
function strongBytesFor(bits: number): number {
  const bytes = Math.floor((bits + 1 - 32 + 7) / 8);
  return Math.min(STRONG_HASH_FULL_LENGTH, Math.max(STRONG_HASH_MIN_LENGTH, bytes));
}

function floorLog2(n: number): number {
  let bits = 0;
  for (let l = n; (l = Math.floor(l / 2)) > 0; ) bits++;
  return bits;
}

/** Number of blocks covering `fileLength` bytes. */
export function blockCount(fileLength: number, blockLength: number): number {
  return Math.ceil(fileLength / blockLength);
}
