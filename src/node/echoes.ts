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

/** What a peer announced of a path, as compared with what this node would send. */
interface Announced {
  readonly fingerprint: string;
  readonly mtimeNs: bigint;
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
 */
export class Echoes {
  readonly #byPeer = new Map<string, Map<string, Announced>>();

  /** `peer` announced something of `path`: what it held before no longer says what it holds. */
  announced(peer: string, path: string): void {
    this.#byPeer.get(peer)?.delete(path);
  }

  /** This node applied `record`, as `peer` announced it. */
  applied(peer: string, record: AnnouncedFields): void {
    let paths = this.#byPeer.get(peer);
    if (paths === undefined) this.#byPeer.set(peer, (paths = new Map<string, Announced>()));
    paths.delete(record.path); // re-inserted last: the oldest entries are dropped first
    paths.set(record.path, { fingerprint: fingerprint(record), mtimeNs: record.mtimeNs });
    if (paths.size > MAX_ECHOES_PER_PEER) paths.delete(paths.keys().next().value as string);
  }

  /**
   * Whether `record` is exactly what `peer` announced last for its path (then it need not be sent
   * to it). Asked once per record sent: the entry is used up either way.
   */
  isEcho(peer: string, record: AnnouncedFields): boolean {
    const paths = this.#byPeer.get(peer);
    const announced = paths?.get(record.path);
    if (announced === undefined) return false;
    paths?.delete(record.path);
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
