/** Base class of every error the node layer (keys, network) throws on purpose. */
export class NodeError extends Error {
  override name = 'NodeError';
}

/** What a mesh key looks like, for messages that refuse one. */
export const MESH_KEY_SHAPE = '"mesh1" followed by 64 hex digits (as printed by `mesh keygen`)';

/**
 * Text that is not a mesh key. The message says what is wrong and what a key looks like, but never
 * repeats the text: it may be a real key with a typo, and keys are secrets.
 */
export class InvalidMeshKeyError extends NodeError {
  override name = 'InvalidMeshKeyError';
  constructor(
    readonly reason: string,
    readonly where?: string,
  ) {
    super(`${where === undefined ? 'invalid mesh key' : `invalid mesh key in ${where}`}: ${reason}; a mesh key is ${MESH_KEY_SHAPE}`);
  }
}

/** A key was given (flag or MESH_KEY) for a folder that already belongs to a mesh with another key. */
export class MeshKeyMismatchError extends NodeError {
  override name = 'MeshKeyMismatchError';
  constructor(
    readonly root: string,
    readonly source: 'flag' | 'env',
  ) {
    super(
      `the folder ${JSON.stringify(root)} belongs to another mesh: the key given ${source === 'flag' ? 'with --key' : 'in MESH_KEY'} ` +
        `differs from the one stored in its .mesh/mesh.key (use --replace-key to move the folder to the new mesh)`,
    );
  }
}

/** `.mesh/peer.key` exists but does not hold a private key libp2p can read. */
export class PeerKeyError extends NodeError {
  override name = 'PeerKeyError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`the node's identity ${JSON.stringify(path)} cannot be used (${reason}); remove it to give this folder a new peer id`);
  }
}

/** A `--peer` address that is not a multiaddr libp2p can dial. */
export class InvalidPeerAddressError extends NodeError {
  override name = 'InvalidPeerAddressError';
  constructor(
    readonly address: string,
    readonly reason: string,
  ) {
    super(`invalid peer address ${JSON.stringify(address)}: ${reason}; expected a multiaddr such as /ip4/192.168.1.20/tcp/4001`);
  }
}

/** A `--port` or listen host that the node cannot listen on. */
export class InvalidListenAddressError extends NodeError {
  override name = 'InvalidListenAddressError';
  constructor(readonly reason: string) {
    super(`cannot listen there: ${reason}`);
  }
}

/** Base class of every error the planner and applier throw on purpose. */
export class ApplyError extends NodeError {
  override name = 'ApplyError';
}

/** A peer's record cannot be acted on: a hostile or malformed path, or content that contradicts itself. */
export class InvalidRemoteRecordError extends ApplyError {
  override name = 'InvalidRemoteRecordError';
}

/** The bytes a peer delivered do not hash to the content it announced: nothing was applied. */
export class ContentMismatchError extends ApplyError {
  override name = 'ContentMismatchError';
}

/**
 * A path that cannot be written or deleted safely: one of its parents is a symlink or not a folder
 * (nothing is ever written or deleted through a symlink), or a folder sits at a temp file's name.
 */
export class UnsafePathError extends ApplyError {
  override name = 'UnsafePathError';
}

/** The name the losing version of a conflict would be kept under is already taken. */
export class ConflictCopyExistsError extends ApplyError {
  override name = 'ConflictCopyExistsError';
}

/** The folder's disk has too little room for a pull: nothing was written; it is pulled again later. */
export class InsufficientSpaceError extends ApplyError {
  override name = 'InsufficientSpaceError';
}
