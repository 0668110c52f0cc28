import { stat } from 'node:fs/promises';
import { STRONG_HASH_FULL_LENGTH } from './constants.js';
import { VerificationError } from './errors.js';
import { chunksOf, openBasis, readFileChunks } from './files.js';
import { applyDelta, newPatchStats, type Basis, type FineRoundReceiver, type PatchStats } from './patch.js';
import { encodeSignature, signatureOptionsFor, type SignatureOptions } from './signature.js';

/** What each attempt of a rebuild sends: rsync's economy first, then certainty. */
export type RebuildAttempt = 'truncated' | 'full' | 'whole';

export interface RebuildOptions {
  /** The local file to reuse blocks from; undefined when there is none. */
  basisPath: string | undefined;
  /**
   * Sends our signature to the holder of the new version and returns its delta. `answers` is the
   * byte stream of the patch's answers to the delta's SIGN instructions (the fine round), to be
   * sent back as it comes; an exchange that ignores it must not offer the fine round to its sender.
   * `contentChecked` is contentCheckedByCaller: the exchange may tell the sender that a delta
   * against an empty signature can leave out its file hash, which the patch will not check.
   */
  exchange(signature: AsyncIterable<Uint8Array>, attempt: RebuildAttempt, answers: AsyncIterable<Uint8Array>, contentChecked: boolean): AsyncIterable<Uint8Array>;
  /** Writes the rebuilt bytes (to a temp file, say); must fail, not commit, if the chunks throw. */
  write(chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** `write` is done with each chunk when it asks for the next: the patch may reuse its buffers (PatchOptions). */
  recycle?: boolean;
  /**
   * `write` checks what it wrote against a stronger hash of its own, and the caller fails it
   * (PatchOptions.contentCheckedByCaller): an attempt without a basis skips the delta's file hash.
   */
  contentCheckedByCaller?: boolean;
  /** Seed of the first attempt, for tests that need a known seed. */
  firstSeed?: Uint8Array;
  /**
   * An encoded signature of the basis to send in the first attempt instead of computing one (a
   * cached one, made with signatureOptionsFor(its length)). If it does not describe the basis,
   * the patch finds out (BasisMismatchError, or the whole-file check and the next attempt).
   */
  firstSignature?: Uint8Array;
  /**
   * Called after an attempt fails the whole-file check (a false block match): moves what that
   * attempt wrote aside and returns its path, to be the next attempt's basis, or undefined to keep
   * the basis. What it wrote is the new version but for the wrongly matched blocks, so the next
   * attempt moves about a block, where against the old basis it would move every literal again.
   */
  setAsideFailed?: () => Promise<string | undefined>;
}

export interface RebuildResult {
  attempts: RebuildAttempt[];
  /** The last attempt's. */
  stats: PatchStats;
  /** Literal bytes received by the attempts before it, which failed the whole-file check. */
  failedLiteralBytes: number;
}

/** Answer bytes the patch may queue before it waits for the exchange to send them. */
const MAX_QUEUED_ANSWER_BYTES = 256 * 1024;

/**
 * The patch's answers to the fine round's SIGNs, as the byte stream the exchange sends back:
 * answers are only concatenated (the sender knows each one's length), and those given while the
 * exchange is busy go out together, so a burst of SIGNs costs one write rather than one each.
 * `answer` waits only while more than MAX_QUEUED_ANSWER_BYTES are queued; iteration ends at `close`.
 */
export class FineRoundAnswers implements FineRoundReceiver, AsyncIterable<Uint8Array> {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private wake: (() => void) | undefined;
  private drained: (() => void)[] = [];
  private closed = false;

  answer(bytes: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error('fine round answers are closed'));
    this.queue.push(bytes);
    this.queued += bytes.length;
    this.wake?.();
    if (this.queued <= MAX_QUEUED_ANSWER_BYTES) return Promise.resolve();
    return new Promise<void>((resolve) => this.drained.push(resolve));
  }

  close(): void {
    this.closed = true;
    this.wake?.();
    // Answers nobody will take: release their senders (the transfer has failed or ended).
    for (const resolve of this.drained.splice(0)) resolve();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (this.queue.length === 0 && !this.closed) await new Promise<void>((resolve) => (this.wake = resolve));
      if (this.queue.length === 0) return;
      const batch = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue);
      this.queue = [];
      this.queued = 0;
      for (const resolve of this.drained.splice(0)) resolve();
      yield batch;
    }
  }
}

const EMPTY_BASIS: Basis = { length: 0, read: () => Promise.resolve(0) };

async function* none(): AsyncGenerator<Uint8Array> {}

/**
 * Rebuilds a remote version locally with rsync's truncated-strong-hash economy: the first signature
 * carries only a few bytes of strong hash per block; if the rebuilt file fails the whole-file check
 * (a false block match), it is redone with full 16-byte hashes and a fresh seed (against what the
 * failed attempt wrote, when setAsideFailed gives it), and as a last resort with no basis at all, so
 * a bad basis can cost bytes but never correctness.
 */
export async function rebuild(options: RebuildOptions): Promise<RebuildResult> {
  const attempts: RebuildAttempt[] = [];
  const plan: RebuildAttempt[] = options.basisPath === undefined ? ['whole'] : ['truncated', 'full', 'whole'];
  const contentCheckedByCaller = options.contentCheckedByCaller === true;
  let basisPath = options.basisPath;
  let failedLiteralBytes = 0;

  for (const attempt of plan) {
    attempts.push(attempt);
    const attemptBasis = attempt === 'whole' ? undefined : basisPath;
    const sizing = signatureOptionsFor(attemptBasis === undefined ? 0 : (await stat(attemptBasis)).size);
    const signatureOptions: SignatureOptions =
      attempt === 'truncated'
        ? { ...sizing, ...(options.firstSeed ? { seed: options.firstSeed } : {}) }
        : { ...sizing, strongLength: STRONG_HASH_FULL_LENGTH };
    const basis = attemptBasis === undefined ? undefined : await openBasis(attemptBasis);
    const stats = newPatchStats();
    try {
      const signature =
        attempt === 'truncated' && options.firstSignature !== undefined
          ? chunksOf(options.firstSignature)
          : encodeSignature(attemptBasis === undefined ? none() : readFileChunks(attemptBasis, { recycle: true }), signatureOptions);
      const answers = new FineRoundAnswers();
      const delta = options.exchange(signature, attempt, answers, contentCheckedByCaller);
      await options.write(applyDelta(basis ?? EMPTY_BASIS, delta, { stats, receiver: answers, recycle: options.recycle, contentCheckedByCaller }));
      return { attempts, stats, failedLiteralBytes };
    } catch (error) {
      if (!(error instanceof VerificationError) || attempt === 'whole') throw error;
      failedLiteralBytes += stats.literalBytes;
    } finally {
      await basis?.close();
    }
    basisPath = (await options.setAsideFailed?.()) ?? basisPath;
  }
  throw new Error('unreachable: the last attempt returns or throws');
}
