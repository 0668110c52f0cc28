import { setTimeout as sleep } from 'node:timers/promises';

/** What a limiter lets through at once: a quarter second of its rate, so bursts stay short. */
const BURST_SECONDS = 0.25;

/**
 * A token bucket shared by every transfer in one direction (as Syncthing's send and receive
 * limits are): take(n) resolves once n bytes fit the rate. Callers take before they move a
 * chunk, so a stream slows down and backpressure reaches the peer.
 */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();
  private readonly burst: number;

  /** `bytesPerSecond` above 0. */
  constructor(private readonly bytesPerSecond: number) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate limit must be above 0, not ${bytesPerSecond}`);
    this.burst = Math.max(1, bytesPerSecond * BURST_SECONDS);
    this.tokens = this.burst;
  }

  /** Waits until `bytes` may pass; takers are served in order. */
  take(bytes: number): Promise<void> {
    const turn = this.queue.then(() => this.wait(bytes));
    this.queue = turn;
    return turn;
  }

  private async wait(bytes: number): Promise<void> {
    this.refill();
    this.tokens -= bytes;
    // In debt: wait until the bucket would be back at zero (a chunk larger than the burst is paid off over time).
    if (this.tokens < 0) {
      await sleep((-this.tokens / this.bytesPerSecond) * 1000);
      this.refill();
    }
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }
}

/** The chunks of `source`, each let through by `limiter` first (none: as they come). */
export async function* limited(source: AsyncIterable<Uint8Array>, limiter: RateLimiter | undefined): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    await limiter?.take(chunk.length);
    yield chunk;
  }
}
