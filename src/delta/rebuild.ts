import { stat } from 'node:fs/promises';
import { STRONG_HASH_FULL_LENGTH } from './constants.js';
import { VerificationError } from './errors.js';
import { openBasis, readFileChunks } from './files.js';
import { applyDelta, newPatchStats, type Basis, type PatchStats } from './patch.js';
import { encodeSignature, signatureOptionsFor, type SignatureOptions } from './signature.js';

/** What each attempt of a rebuild sends: rsync's economy first, then certainty. */
export type RebuildAttempt = 'truncated' | 'full' | 'whole';

export interface RebuildOptions {
  /** The local file to reuse blocks from; undefined when there is none. */
  basisPath: string | undefined;
  /** Sends our signature to the holder of the new version and returns its delta. */
  exchange(signature: AsyncIterable<Uint8Array>, attempt: RebuildAttempt): AsyncIterable<Uint8Array>;
  /** Writes the rebuilt bytes (to a temp file, say); must fail, not commit, if the chunks throw. */
  write(chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** Seed of the first attempt, for tests that need a known seed. */
  firstSeed?: Uint8Array;
}

export interface RebuildResult {
  attempts: RebuildAttempt[];
  stats: PatchStats;
}

const EMPTY_BASIS: Basis = { length: 0, read: () => Promise.resolve(0) };

async function* none(): AsyncGenerator<Uint8Array> {}

/**
 * Rebuilds a remote version locally with rsync's truncated-strong-hash economy: the first signature
 * carries only a few bytes of strong hash per block; if the rebuilt file fails the whole-file check
 * (a false block match), it is redone with full 16-byte hashes and a fresh seed, and as a last resort
 * with no basis at all, so a bad basis can cost bytes but never correctness.
 */
export async function rebuild(options: RebuildOptions): Promise<RebuildResult> {
  const attempts: RebuildAttempt[] = [];
  const basisLength = options.basisPath === undefined ? 0 : (await stat(options.basisPath)).size;
  const plan: RebuildAttempt[] = options.basisPath === undefined ? ['whole'] : ['truncated', 'full', 'whole'];

  for (const attempt of plan) {
    attempts.push(attempt);
    const sizing = signatureOptionsFor(basisLength);
    const signatureOptions: SignatureOptions =
      attempt === 'truncated'
        ? { ...sizing, ...(options.firstSeed ? { seed: options.firstSeed } : {}) }
        : { ...sizing, strongLength: STRONG_HASH_FULL_LENGTH };
    const basis = attempt === 'whole' || options.basisPath === undefined ? undefined : await openBasis(options.basisPath);
    try {
      const signature = encodeSignature(basis && options.basisPath ? readFileChunks(options.basisPath, { recycle: true }) : none(), signatureOptions);
      const delta = options.exchange(signature, attempt);
      const stats = newPatchStats();
      await options.write(applyDelta(basis ?? EMPTY_BASIS, delta, stats));
      return { attempts, stats };
    } catch (error) {
      if (!(error instanceof VerificationError) || attempt === 'whole') throw error;
    } finally {
      await basis?.close();
    }
  }
  throw new Error('unreachable: the last attempt returns or throws');
}
