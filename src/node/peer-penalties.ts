import { MalformedDeltaError, VerificationError } from '../delta/errors.js';
import { ProtocolError } from '../protocol/errors.js';
import { ContentMismatchError, InvalidRemoteRecordError } from './errors.js';

/** How long a peer that misbehaved is refused: its connections closed, its dials and ours denied. */
export const MISBEHAVING_PEER_BAN_MS = 60_000;
/**
 * Files a peer may deliver with the wrong bytes within CONTENT_MISMATCH_WINDOW_MS before it is
 * banned. Not at once: an honest peer's file can change while it is being read for a transfer.
 */
export const MAX_CONTENT_MISMATCHES = 3;
export const CONTENT_MISMATCH_WINDOW_MS = 10 * 60_000;
/** Peers whose mismatches are remembered at once (input from peers is bounded too). */
const MAX_TRACKED_PEERS = 1024;

/**
 * What a failure says about the peer: 'broke-protocol' when it sent what no honest mesh node sends
 * (a malformed or oversized message, an invalid record, a hostile path, a delta that does not
 * parse), 'wrong-content' when the bytes it delivered do not hash to what it announced (an honest
 * peer's file may have changed while being read), undefined when it is not the peer's doing or an
 * honest peer does the same (a stream that ends early, a StreamEndedError: its connection closed).
 */
export function misbehaviourOf(error: unknown): 'broke-protocol' | 'wrong-content' | undefined {
  if (error instanceof ProtocolError || error instanceof InvalidRemoteRecordError || error instanceof MalformedDeltaError) return 'broke-protocol';
  if (error instanceof ContentMismatchError || error instanceof VerificationError) return 'wrong-content';
  return undefined;
}

/**
 * Decides when a peer is banned: at once when it broke the protocol, after MAX_CONTENT_MISMATCHES
 * wrong files within the window otherwise. `now` is injectable for tests.
 */
export class PeerPenalties {
  private readonly mismatches = new Map<string, number[]>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records `error` against `peer`; true if the peer is to be banned now. */
  misbehaved(peer: string, error: unknown): boolean {
    const kind = misbehaviourOf(error);
    if (kind === undefined) return false;
    if (kind === 'broke-protocol') return true;
    const now = this.now();
    const recent = (this.mismatches.get(peer) ?? []).filter((at) => now - at < CONTENT_MISMATCH_WINDOW_MS);
    recent.push(now);
    this.mismatches.delete(peer);
    if (recent.length >= MAX_CONTENT_MISMATCHES) return true;
    this.mismatches.set(peer, recent);
    // The oldest entry first out (a Map iterates in insertion order).
    if (this.mismatches.size > MAX_TRACKED_PEERS) this.mismatches.delete(this.mismatches.keys().next().value!);
    return false;
  }
}
