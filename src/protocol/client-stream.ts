import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { TRANSFER_IDLE_TIMEOUT } from './constants.js';
import { asError, StreamEndedError } from './errors.js';
import { guardStream, IdleTimeout, StreamReader, StreamWriter } from './streams.js';
import { metered, type TrafficMeter } from './traffic.js';

/** What a protocol client needs of a libp2p node. */
export type ClientHost = Pick<Libp2p, 'dialProtocol'>;

export interface ClientStreamOptions {
  signal?: AbortSignal;
  /** Abort when nothing moves for this long, a consumer that stops asking included (ms; default 30 s). */
  idleTimeout?: number;
  /** Told the bytes the stream moves. */
  traffic?: TrafficMeter;
}

/** A client's stream to a peer, with its reader, writer and idle timeout. */
export interface ClientStream {
  readonly stream: Stream;
  /** Its idle timeout (ms), and the timeout itself. */
  readonly idleTimeout: number;
  readonly idle: IdleTimeout;
  readonly reader: StreamReader;
  readonly writer: StreamWriter;
  /**
   * Lets go of the stream: unless the exchange `completed`, it is aborted (the peer learns the
   * client gave up, as `abandoned`); the timeout stops and the reader's buffers are released.
   */
  finish(completed: boolean, abandoned: string): void;
}

/**
 * Opens `protocol` to `peer` for one exchange: the dial and every later stall are bounded by the
 * idle timeout, the caller's signal aborts the stream, and the bytes are metered as the peer's.
 */
export async function openClientStream(libp2p: ClientHost, peer: PeerId, protocol: string, what: string, options: ClientStreamOptions): Promise<ClientStream> {
  const idleTimeout = options.idleTimeout ?? TRANSFER_IDLE_TIMEOUT;
  const signals = [AbortSignal.timeout(idleTimeout), ...(options.signal ? [options.signal] : [])];
  const stream = await libp2p.dialProtocol(peer, protocol, { signal: AbortSignal.any(signals) });
  const idle = guardStream(stream, new IdleTimeout(idleTimeout, `${what} stream to ${peer.toString()}`));
  idle.touch();
  const onAbort = () => stream.abort(asError(options.signal?.reason));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();
  const meter = metered(options.traffic, peer.toString());
  const reader = new StreamReader(stream, { onActivity: () => idle.touch(), ...meter });
  const writer = new StreamWriter(stream, { onActivity: () => idle.touch(), ...meter });
  return {
    stream,
    idleTimeout,
    idle,
    reader,
    writer,
    finish(completed, abandoned) {
      options.signal?.removeEventListener('abort', onAbort);
      if (!completed) stream.abort(new StreamEndedError(abandoned));
      idle.stop();
      reader.release();
    },
  };
}
