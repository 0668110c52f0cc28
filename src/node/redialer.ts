/**
 * Dials a lost peer again, soon and often, for a while after it disconnected. A partition or a
 * pulled cable kills the connection (the ping times out) but not the peer: when the network heals
 * the peer is there again, and waiting for its next mDNS answer (every 10 s) or for a static peer's
 * long backoff would leave the folders apart for that long. After `windowMs` the peer is given up
 * to mDNS and the static peers' own backoff.
 */
export interface RedialerInit {
  /** Dials the peer; resolves when connected, rejects when the dial failed. */
  dial(peerId: string): Promise<void>;
  isConnected(peerId: string): boolean;
  /** Longest delay between two dials of a lost peer (the delay doubles from the first one). */
  maxDelayMs: number;
  /** How long after the loss the peer is redialled. */
  windowMs: number;
  onError?(peerId: string, error: unknown): void;
}

interface LostPeer {
  readonly since: number;
  delayMs: number;
  timer?: NodeJS.Timeout;
}

export class Redialer {
  readonly #init: RedialerInit;
  readonly #lost = new Map<string, LostPeer>();

  constructor(init: RedialerInit) {
    this.#init = init;
  }

  /** The peer disconnected: dial it in `firstDelayMs`, then ever less often up to `maxDelayMs`. */
  lost(peerId: string, firstDelayMs: number): void {
    if (this.#lost.has(peerId)) return;
    const peer: LostPeer = { since: Date.now(), delayMs: firstDelayMs };
    this.#lost.set(peerId, peer);
    this.#schedule(peerId, peer);
  }

  /** The peer is connected again (whoever dialled): nothing more to do. */
  found(peerId: string): void {
    const peer = this.#lost.get(peerId);
    if (peer === undefined) return;
    clearTimeout(peer.timer);
    this.#lost.delete(peerId);
  }

  /** Forgets every lost peer (a timer that already fired finds its peer gone and stops). */
  stop(): void {
    for (const peer of this.#lost.values()) clearTimeout(peer.timer);
    this.#lost.clear();
  }

  #schedule(peerId: string, peer: LostPeer): void {
    if (Date.now() - peer.since > this.#init.windowMs) {
      this.#lost.delete(peerId);
      return;
    }
    peer.timer = setTimeout(() => void this.#attempt(peerId, peer), peer.delayMs);
    peer.delayMs = Math.min(peer.delayMs * 2, this.#init.maxDelayMs);
  }

  async #attempt(peerId: string, peer: LostPeer): Promise<void> {
    if (this.#lost.get(peerId) !== peer) return;
    if (this.#init.isConnected(peerId)) {
      this.found(peerId);
      return;
    }
    try {
      await this.#init.dial(peerId);
    } catch (error) {
      this.#init.onError?.(peerId, error);
    }
    if (this.#lost.get(peerId) !== peer) return;
    if (this.#init.isConnected(peerId)) this.found(peerId);
    else this.#schedule(peerId, peer);
  }
}
