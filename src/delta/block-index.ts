import { MAX_CHAIN_WALK } from './constants.js';
import type { Signature } from './signature.js';

/** Spreads weak hashes over buckets (the prefilter uses their top bits directly). */
const GOLDEN = 0x85ebca6b | 0;
/** Prefilter bits per indexed block: about 1 in 32 positions passes it when nothing matches. */
const PREFILTER_BITS_PER_BLOCK = 1024;
const PREFILTER_MIN_BITS_LOG2 = 10;
/** 2^23 bits = 1 MiB: the prefilter stays cache-friendly even for the largest signatures. */
const PREFILTER_MAX_BITS_LOG2 = 23;

function ceilLog2(n: number): number {
  return n <= 1 ? 0 : 32 - Math.clz32(n - 1);
}

/** Bytes of prefilter bitset for an index of `blocks` blocks. */
export function prefilterBytes(blocks: number): number {
  return 1 << (prefilterBitsLog2(blocks) - 3);
}

function prefilterBitsLog2(blocks: number): number {
  return Math.min(PREFILTER_MAX_BITS_LOG2, Math.max(PREFILTER_MIN_BITS_LOG2, ceilLog2(blocks * PREFILTER_BITS_PER_BLOCK)));
}

/**
 * Finds signature blocks by weak hash. A bitset prefilter, keyed by the top bits of the weak hash,
 * rejects most positions with one load (the common case when scanning data that matches nothing);
 * behind it, blocks sorted by hash bucket (compressed rows: `heads[b]..heads[b+1]` index into
 * `order`). Lookups walk at most MAX_CHAIN_WALK candidates, so a signature full of equal weak hashes
 * cannot make delta quadratic.
 */
export class BlockIndex {
  /** Prefilter bitset (bit k is bit k&7 of byte k>>>3), and the shift that maps a hash to a bit. */
  readonly bits: Uint8Array;
  readonly bitShift: number;
  private readonly heads: Int32Array;
  private readonly order: Int32Array;
  private readonly bucketShift: number;

  /**
   * Indexes the first `blocks` blocks of `signature` (the full-length ones). `bits` receives the
   * prefilter (prefilterBytes(blocks) zeroed bytes, in the scan kernel's memory).
   */
  constructor(
    private readonly signature: Signature,
    blocks: number,
    bits: Uint8Array,
  ) {
    const bitsLog2 = prefilterBitsLog2(blocks);
    if (bits.length !== 1 << (bitsLog2 - 3)) throw new RangeError('prefilter bitset has the wrong size');
    this.bits = bits;
    this.bitShift = 32 - bitsLog2;
    const bucketsLog2 = Math.max(4, ceilLog2(blocks * 2));
    this.bucketShift = 32 - bucketsLog2;
    const buckets = 1 << bucketsLog2;
    this.heads = new Int32Array(buckets + 1);
    this.order = new Int32Array(blocks);

    const { weak } = signature;
    for (let i = 0; i < blocks; i++) {
      const k = weak[i] >>> this.bitShift;
      bits[k >>> 3] |= 1 << (k & 7);
      this.heads[(Math.imul(weak[i], GOLDEN) >>> this.bucketShift) + 1]++;
    }
    for (let b = 0; b < buckets; b++) this.heads[b + 1] += this.heads[b];
    const fill = this.heads.slice(0, buckets);
    for (let i = 0; i < blocks; i++) this.order[fill[Math.imul(weak[i], GOLDEN) >>> this.bucketShift]++] = i;
  }

  /** The prefilter: false means no block has this weak hash. */
  mayContain(weak: number): boolean {
    const k = weak >>> this.bitShift;
    return (this.bits[k >>> 3] & (1 << (k & 7))) !== 0;
  }

  /**
   * Writes into `into` the blocks whose weak hash is `weak` (lowest-numbered first, at most
   * MAX_CHAIN_WALK examined) and returns how many there are. No allocation: this runs at every
   * position that passes the prefilter.
   */
  candidates(weak: number, into: Int32Array): number {
    const bucket = Math.imul(weak, GOLDEN) >>> this.bucketShift;
    const weaks = this.signature.weak;
    const end = Math.min(this.heads[bucket + 1], this.heads[bucket] + MAX_CHAIN_WALK);
    let found = 0;
    for (let c = this.heads[bucket]; c < end; c++) {
      const block = this.order[c];
      if (weaks[block] === weak) into[found++] = block;
    }
    return found;
  }
}

export function strongEquals(strongs: Uint8Array, at: number, hash: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (strongs[at + i] !== hash[i]) return false;
  return true;
}

