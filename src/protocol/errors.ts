/**
 * Errors of mesh's protocols. Each has a stable `name`. ProtocolError is the one that says the peer
 * misbehaved (it sent what the protocol forbids); the others are the ordinary failures of a
 * network: a stream that ended or stalled, a request the peer refused.
 */

/** Base class of every error the protocols throw on purpose. */
export class MeshProtocolError extends Error {
  override name = 'MeshProtocolError';
}

/**
 * The peer broke the protocol: a malformed or oversized message, an invalid record, a hostile
 * path. (A stream that ends in the middle of a message is a StreamEndedError: a peer that stops or
 * loses its connection does that too.) Its `peerMisbehaved` is always true: the
 * caller may penalise the peer. The message starts with "peer misbehaved".
 */
export class ProtocolError extends MeshProtocolError {
  override name = 'ProtocolError';
  readonly peerMisbehaved = true;
  constructor(message: string, options?: ErrorOptions) {
    super(`peer misbehaved: ${message}`, options);
  }
}

/** Nothing moved on a stream for longer than its idle timeout (or its first message was late). */
export class StreamTimeoutError extends MeshProtocolError {
  override name = 'StreamTimeoutError';
}

/** The stream was closed, reset or aborted before the exchange was complete. */
export class StreamEndedError extends MeshProtocolError {
  override name = 'StreamEndedError';
}

/** A local record that cannot be announced as it is (e.g. more block hashes than the wire allows). */
export class UnsendableRecordError extends MeshProtocolError {
  override name = 'UnsendableRecordError';
}

/** Why a server did not serve a transfer. */
export type RefusalStatus = 'NOT_FOUND' | 'CHANGED' | 'BUSY';

/** The server answered a transfer request with something other than OK. */
export class TransferRefusedError extends MeshProtocolError {
  override name = 'TransferRefusedError';
  constructor(
    readonly status: RefusalStatus,
    /** The server's reason, as it gave it (untrusted text: printed with JSON.stringify). */
    readonly reason: string,
  ) {
    super(`transfer refused (${status}): ${JSON.stringify(reason)}`);
  }
}

/** The server has no such path, or not as a file it shares. */
export class TransferNotFoundError extends TransferRefusedError {
  override name = 'TransferNotFoundError';
  constructor(reason: string) {
    super('NOT_FOUND', reason);
  }
}

/** The server's record or file is no longer the requested version: ask again after the next index batch. */
export class TransferChangedError extends TransferRefusedError {
  override name = 'TransferChangedError';
  constructor(reason: string) {
    super('CHANGED', reason);
  }
}

/** The server serves as many transfers as it will: try later or elsewhere. */
export class TransferBusyError extends TransferRefusedError {
  override name = 'TransferBusyError';
  constructor(reason: string) {
    super('BUSY', reason);
  }
}

/** `error` as an Error (a thrown string or a signal's reason may be anything). */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
