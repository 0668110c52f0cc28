/**
 * What a running node tells `mesh status`, `mesh peers`, `mesh conflicts` and the dashboard: plain
 * JSON, versioned so a newer command can tell an older node.
 */
export const STATUS_VERSION = 2;

export interface PeerStatus {
  readonly id: string;
  readonly address: string;
  /** ISO time the connection came up. */
  readonly connectedSince: string;
  /** Bytes of mesh's protocols (index and transfers) received from and sent to the peer since then. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /**
   * How far this node has read the peer's index: the last of the peer's sequences handled, and the
   * peer's highest sequence as of its latest batch (null until one came). Caught up when
   * `received >= head`.
   */
  readonly index: { readonly received: number; readonly head: number | null };
}

export interface TransferStatus {
  readonly path: string;
  readonly peer: string;
  /** Bytes of the file written so far (from the peer or reused from a local basis). */
  readonly bytes: number;
  readonly size: number;
  readonly startedAt: string;
}

export interface FolderStatus {
  readonly root: string;
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly bytes: number;
  /** Versions peers announced that this node has not applied yet (files and their bytes). */
  readonly needFiles: number;
  readonly needBytes: number;
  /** Connected peers whose index this node has not read all of yet (it may announce more). */
  readonly receivingIndexes: number;
  /** Nothing is needed, nothing is being pulled, and every connected peer's index is read. */
  readonly inSync: boolean;
}

export interface ConflictStatus {
  /** The conflict copy (folder-relative). */
  readonly path: string;
  /** The path whose losing version it keeps. */
  readonly original: string;
  /** The first 7 hex digits of the device that made the version it keeps (compare node.device). */
  readonly device: string;
  readonly size: number;
  /** ISO modification time of the copy (the losing version's). */
  readonly modified: string;
}

export interface NodeStatus {
  readonly version: typeof STATUS_VERSION;
  readonly node: {
    readonly id: string;
    /** This device's id in version vectors (16 hex digits); conflict copies name its first 7. */
    readonly device: string;
    readonly addresses: readonly string[];
    readonly startedAt: string;
  };
  readonly folder: FolderStatus;
  readonly peers: readonly PeerStatus[];
  readonly transfers: readonly TransferStatus[];
  /** Bytes pulled from peers since the node started (its change over time is the download rate). */
  readonly received: number;
  readonly conflicts: readonly ConflictStatus[];
}
