/**
 * The weak rolling hash: librsync's RabinKarp polynomial, h = sum(b[i] * M^(n-1-i)) + M^n (mod 2^32),
 * with the start value 1 so that runs of zeros of different lengths hash differently. Measured here
 * it gives the ideal number of false matches, half of rsync's Adler-style sum at 16 KiB blocks.
 */

export const RK_MULT = 0x08104225;
/** M - 1: removes the start value's contribution when the window slides. */
const RK_ADJ = 0x08104224;
const RK_START = 1;

const M2 = Math.imul(RK_MULT, RK_MULT);
const M3 = Math.imul(M2, RK_MULT);
const M4 = Math.imul(M3, RK_MULT);
const M5 = Math.imul(M4, RK_MULT);
const M6 = Math.imul(M5, RK_MULT);
const M7 = Math.imul(M6, RK_MULT);
const M8 = Math.imul(M7, RK_MULT);

/**
 * Weak hash of bytes[start, end). Eight bytes per step: the multiplications of one step do not depend
 * on each other, which doubles the speed of the byte-at-a-time loop (1.9 vs 0.8 GB/s here).
 */
export function weakHash(bytes: Uint8Array, start: number, end: number): number {
  let h = RK_START;
  let i = start;
  for (const last = end - 8; i <= last; i += 8) {
    h =
      (Math.imul(h, M8) +
        Math.imul(bytes[i], M7) +
        Math.imul(bytes[i + 1], M6) +
        Math.imul(bytes[i + 2], M5) +
        Math.imul(bytes[i + 3], M4) +
        Math.imul(bytes[i + 4], M3) +
        Math.imul(bytes[i + 5], M2) +
        Math.imul(bytes[i + 6], RK_MULT) +
        bytes[i + 7]) |
      0;
  }
  for (; i < end; i++) h = (Math.imul(h, RK_MULT) + bytes[i]) | 0;
  return h;
}

/** M^length (mod 2^32): the factor `roll` needs for a window of that length. */
export function rollFactor(length: number): number {
  let result = 1;
  let base = RK_MULT;
  for (let e = length; e > 0; e >>>= 1) {
    if (e & 1) result = Math.imul(result, base);
    base = Math.imul(base, base);
  }
  return result;
}

/** Slides a window one byte: drops `out` from the front, appends `in` at the back. */
export function roll(hash: number, factor: number, out: number, inByte: number): number {
  return (Math.imul(hash, RK_MULT) + inByte - Math.imul(factor, out + RK_ADJ)) | 0;
}

/** Adds RK_ADJ so hot loops can inline `roll` without a call; exported for them only. */
export const RK_ROLL_ADJ = RK_ADJ;
