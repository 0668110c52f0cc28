import type { FileRecord } from '../store/types.js';
import { vectorToString } from '../store/version-vector.js';

/**
 * Most records remembered per peer until its next index sweep. Beyond it the oldest are dropped,
 * which only means sending those back after all.
 */
export const MAX_ECHOES_PER_PEER = 10_000;

/**
 * How far an applied file's mtime may be from the announced one and still be the same: Node sets
 * times as a double of seconds, about 0.2 us of precision today, and the record keeps what the disk
 * then reports.
 */
export const MTIME_TOLERANCE_NS = 1_000n;

/** The fields a peer learns from a record (sequence and the local inode aside). */
export type AnnouncedFields = Pick<
  FileRecord,
  'path' | 'type' | 'size' | 'mtimeNs' | 'mode' | 'contentHash' | 'symlinkTarget' | 'version' | 'deleted' | 'modifiedBy'
>;

/**
 * Everything of a record a peer would learn from it but the mtime (compared within a tolerance).
 * The block hashes are covered by the content hash (the hash of the block hashes).
 */
function fingerprint(record: AnnouncedFields): string {
  return [
    record.type,
    record.size,
    record.mode,
    Buffer.from(record.contentHash).toString('hex'),
    record.deleted ? 1 : 0,
    record.modifiedBy,
    vectorToString(record.version),
    record.symlinkTarget,
  ].join('\u0000');
}

/** What a peer holds of a path, as compared with what this node would send. */
interface Announced {
  readonly fingerprint: string;
  readonly mtimeNs: bigint;
  /** Held only once this server session of the index exchange delivers what it sent (see `merged`). */
  readonly session?: number;
}

/**
 * Records a peer announced and this node then applied. Once applied, the node's own record of the
 * path is usually the very record the peer sent, and announcing it back would tell the peer nothing
 * it does not hold: a 2,000-file burst sent back whole, a large file's 64 KiB of block hashes.
 * The index exchange asks `isEcho` for each record it is about to send to a peer and leaves out
 * the ones that are, in every field the peer would learn (the mtime within MTIME_TOLERANCE_NS),
 * what that peer announced last for the path (its progress still moves past them).
 *
 * What is remembered is the peer's latest announcement of a path only: a newer one from it
 * replaces or forgets it. Leaving a record out is therefore safe even when the entry is old: the
 * peer held that exact record, and its later records dominate it or beat it as a conflict's winner.
 *
 * Merges too (`merged`): two nodes holding the same files made apart each merge the other's
 * record of every path, merge(L, R), and sending it would tell the peer nothing once the session
 * has sent it L: the peer merges L with its own R (or a later version of it, which dominates R)
 * and so holds all merge(L, R) says, and it skipped every such record as equal on arrival. Such an
 * entry counts only in the server session that sent L: a stream that breaks before the peer
 * handled L is asked again from the peer's progress, where L is gone (replaced by the merge), so a
 * new session must send the merge.
 */
export class Echoes {
  readonly #byPeer = new Map<string, Map<string, Announced>>();

  /** `peer` announced something of `path`: what it held before no longer says what it holds. */
  announced(peer: string, path: string): void {
    this.#byPeer.get(peer)?.delete(path);
  }

  /** This node applied `record`, as `peer` announced it. */
  applied(peer: string, record: AnnouncedFields): void {
    this.remember(peer, record.path, { fingerprint: fingerprint(record), mtimeNs: record.mtimeNs });
  }

  private remember(peer: string, path: string, held: Announced): void {
    let paths = this.#byPeer.get(peer);
    if (paths === undefined) this.#byPeer.set(peer, (paths = new Map<string, Announced>()));
    paths.delete(path); // re-inserted last: the oldest entries are dropped first
    paths.set(path, held);
    if (paths.size > MAX_ECHOES_PER_PEER) paths.delete(paths.keys().next().value as string);
  }

  /**
   * This node recorded `merged`, the merge of a record `peer` announced with this node's own
   * record of the path, which index session `session` had already sent to the peer.
   */
  merged(peer: string, merged: AnnouncedFields, session: number): void {
    this.remember(peer, merged.path, { fingerprint: fingerprint(merged), mtimeNs: merged.mtimeNs, session });
  }

  /**
   * Whether `record` is exactly what `peer` announced last for its path, or the merge it learns
   * from what `session` sent it (then it need not be sent to it). Asked once per record sent: the
   * entry is used up either way.
   */
  isEcho(peer: string, record: AnnouncedFields, session?: number): boolean {
    const paths = this.#byPeer.get(peer);
    const announced = paths?.get(record.path);
    if (announced === undefined) return false;
    paths?.delete(record.path);
    if (announced.session !== undefined && announced.session !== session) return false;
    const drift = announced.mtimeNs - record.mtimeNs;
    return announced.fingerprint === fingerprint(record) && drift <= MTIME_TOLERANCE_NS && drift >= -MTIME_TOLERANCE_NS;
  }

  /** The peer disconnected: what it held may change without this node hearing of it. */
  peerGone(peer: string): void {
    this.#byPeer.delete(peer);
  }

  /** Records remembered for `peer`. */
  size(peer: string): number {
    return this.#byPeer.get(peer)?.size ?? 0;
  }
}
