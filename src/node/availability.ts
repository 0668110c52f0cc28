import { compare, type VersionVector } from '../store/version-vector.js';

/**
 * Which peers announced which version of each file: path -> version (vector and content hash) ->
 * peers. A pull asks the peer whose record it applies first, and falls back to the others that
 * announced the very same version when that one fails or goes away. Fed by every index batch,
 * pruned when a peer disconnects, when a peer announces another version of the path, when a newer
 * version supersedes, and when the path has been applied. Peers' input is hostile: the map holds at
 * most MAX_AVAILABLE_PATHS paths (the oldest announced go first) and MAX_SOURCES_PER_VERSION peers
 * for one version.
 */
export const MAX_AVAILABLE_PATHS = 100_000;
export const MAX_SOURCES_PER_VERSION = 8;

/** What identifies a version of a file, as announced. */
export interface AnnouncedVersion {
  readonly path: string;
  readonly version: VersionVector;
  readonly contentHash: Uint8Array;
}

interface Holders {
  readonly version: VersionVector;
  readonly contentHash: Uint8Array;
  readonly peers: Set<string>;
}

function sameVersion(a: Holders, b: AnnouncedVersion): boolean {
  return compare(a.version, b.version) === 'equal' && Buffer.from(a.contentHash).equals(b.contentHash);
}

export class Availability {
  readonly #paths = new Map<string, Holders[]>();

  /** `peer` announced `record`: it holds that version now, and no other of that path. */
  announced(peer: string, record: AnnouncedVersion & { readonly deleted: boolean; readonly type: string }): void {
    let holders = this.#paths.get(record.path) ?? [];
    // Its earlier version is gone from it; versions the new one dominates are of no use to anyone.
    for (const h of holders) h.peers.delete(peer);
    holders = holders.filter((h) => h.peers.size > 0 && compare(record.version, h.version) !== 'dominates');
    if (!record.deleted && record.type === 'file') {
      let entry = holders.find((h) => sameVersion(h, record));
      if (entry === undefined) {
        // A copy: the announced hash is a view of the peer's whole batch, which it must not keep alive.
        entry = { version: record.version, contentHash: Uint8Array.from(record.contentHash), peers: new Set() };
        holders.push(entry);
      }
      if (entry.peers.size < MAX_SOURCES_PER_VERSION) entry.peers.add(peer);
    }
    this.#paths.delete(record.path);
    if (holders.length === 0) return;
    this.#paths.set(record.path, holders);
    if (this.#paths.size > MAX_AVAILABLE_PATHS) this.#paths.delete(this.#paths.keys().next().value!);
  }

  /** Peers that announced exactly this version, in the order they did. */
  sources(version: AnnouncedVersion): string[] {
    const entry = this.#paths.get(version.path)?.find((h) => sameVersion(h, version));
    return entry === undefined ? [] : [...entry.peers];
  }

  /** The peer disconnected: it serves nothing until it announces again. */
  peerGone(peer: string): void {
    for (const [path, holders] of this.#paths) {
      for (const h of holders) h.peers.delete(peer);
      const left = holders.filter((h) => h.peers.size > 0);
      if (left.length === 0) this.#paths.delete(path);
      else if (left.length < holders.length) this.#paths.set(path, left);
    }
  }

  /** The path was applied (or decided): nothing of it left to pull. */
  settled(path: string): void {
    this.#paths.delete(path);
  }

  get size(): number {
    return this.#paths.size;
  }
}
