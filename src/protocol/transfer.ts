import { lstat, open, type FileHandle } from 'node:fs/promises';
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import {
  decodeSignature,
  encodeDelta,
  encodeDeltaWithFineRound,
  MalformedSignatureError,
  readFileChunks,
  readFileRange,
  type FineRoundSender,
  type Signature,
} from '../delta/index.js';
import {
  CHUNK_KEEP_ALIVE_INTERVAL,
  FETCH_MAX_INBOUND_STREAMS,
  FETCH_MAX_OUTBOUND_STREAMS,
  FETCH_PROTOCOL,
  MAX_ACTIVE_TRANSFERS,
  MAX_ACTIVE_TRANSFERS_PER_PEER,
  MAX_SIGNATURE_BYTES,
  MAX_TRANSFER_REQUEST_BYTES,
  MAX_TRANSFER_RESPONSE_BYTES,
  TRANSFER_IDLE_TIMEOUT,
  TRANSFER_MAX_INBOUND_STREAMS,
  TRANSFER_MAX_OUTBOUND_STREAMS,
  TRANSFER_PROTOCOL,
} from './constants.js';
import {
  asError,
  ProtocolError,
  StreamEndedError,
  TransferBusyError,
  TransferChangedError,
  TransferNotFoundError,
  type RefusalStatus,
  type TransferRefusedError,
} from './errors.js';
import { openClientStream, type ClientStreamOptions } from './client-stream.js';
import {
  decodeTransferRequest,
  decodeTransferResponse,
  encodeTransferRequest,
  encodeTransferResponse,
  type TransferRequest,
  type TransferResponse,
} from './messages-codec.js';
import {
  expectMessage,
  guardStream,
  IdleTimeout,
  newChunkStats,
  readChunks,
  StreamReader,
  StreamWriter,
  writeChunks,
  type ChunkStats,
} from './streams.js';
import { metered, type TrafficMeter } from './traffic.js';
import { serveFetch, type FetchResolution } from './fetch.js';

/**
 * `/mesh/transfer/2.0.0`: one file version, rsync-style (docs/mesh-design.md, "Transfer").
 *
 *   client -> server   TransferRequest, then the signature of its basis as chunks (streams.ts), end;
 *                      with `fineRound`, then the answers to the delta's SIGNs, concatenated, close
 *   server -> client   TransferResponse; if OK, the delta as chunks (brotli where it pays), end
 *
 * The fine round (src/delta/fine-round.ts): the delta may ask, by SIGN instructions, for hashes
 * of fine blocks of ranges of the client's basis; the client answers each in order on its side of
 * the stream while it goes on reading the delta (each answer's length follows from its SIGN, so
 * they are only concatenated), and closes its side once the delta has ended.
 *
 * The client sends the signature right behind the request without waiting for the answer (one
 * round trip saved; a refusal costs a signature, a few bytes per block of the basis). Both sides
 * close their write side after their end marker. Every read is bounded, every write waits for the
 * stream to drain, and a stream on which nothing moves for the idle timeout (30 s) is aborted:
 * that also reclaims a transfer whose consumer stopped reading without telling us.
 */

/** What the server needs of a libp2p node. */
export type TransferServerHost = Pick<Libp2p, 'handle' | 'unhandle'>;
/** What the client needs of a libp2p node. */
export type TransferClientHost = Pick<Libp2p, 'dialProtocol'>;

/** The node's answer to a request: the file to serve, or why not. */
export type Resolution = { path: string } | { status: RefusalStatus; message: string };

/** One transfer as the server runs it; the counters move while it runs. */
export interface ServedTransfer {
  readonly peer: string;
  readonly request: TransferRequest;
  /** The delta's payload bytes (before compression) and wire bytes, chunk counts. */
  readonly delta: ChunkStats;
  /** Bytes handed to the stream, and the most it ever held unsent (bounded by the writer). */
  readonly writer: { readonly bytesWritten: number; readonly peakBuffered: number };
}

export interface TransferServerInit {
  libp2p: TransferServerHost;
  /**
   * Decides whether to serve `request`: the absolute path of the file to read, when the node's
   * current record of that path has exactly the requested version and content hash and the file
   * on disk still matches the record; otherwise NOT_FOUND, CHANGED or BUSY with a reason.
   */
  resolve(request: TransferRequest, peer: string): Promise<Resolution>;
  /**
   * The same decision for every file of a fetch batch (`/mesh/fetch/1.0.0`, fetch.ts) at once;
   * a file resolved with `expect` is served only while the open file still shows that metadata.
   * Default: `resolve` for each.
   */
  resolveMany?(requests: readonly TransferRequest[], peer: string): Promise<readonly FetchResolution[]>;
  /** Transfers (and fetch batches) served at once over all peers; more are answered BUSY (default 8). */
  maxActive?: number;
  /** Transfers served at once for one peer; more are answered BUSY (default 4). */
  maxActivePerPeer?: number;
  /** Abort a stream on which nothing moved for this long (ms; default 30 s). */
  idleTimeout?: number;
  /** A delta transfer starts (its counters move until it ends). */
  onTransferStart?(transfer: ServedTransfer): void;
  /** A delta transfer ended: completely, or with `error`. */
  onTransferEnd?(transfer: ServedTransfer, error?: Error): void;
  /** A stream failed before a transfer started (ProtocolError: the peer misbehaved). */
  onError?(peer: string, error: Error): void;
  /**
   * The delta's chunks (literal data and block references, before compression) pass through this
   * before they are sent: an upload rate limit. Default: as they come.
   */
  throttle?(delta: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array>;
  /** Told the bytes each peer's streams move. */
  traffic?: TrafficMeter;
}

/** Most bytes a refused client may still send (the rest of its signature) before the stream is cut. */
const MAX_DRAIN_BYTES = 4 * 1024 * 1024;

export class TransferServer {
  private readonly tasks = new Set<Promise<void>>();
  private readonly streams = new Set<Stream>();
  private active = 0;
  /** Transfers being served, per peer (peers with none are not kept). */
  private readonly activeByPeer = new Map<string, number>();
  private running = false;
  private readonly maxActive: number;
  private readonly maxActivePerPeer: number;
  private readonly idleTimeout: number;

  constructor(private readonly init: TransferServerInit) {
    this.maxActive = init.maxActive ?? MAX_ACTIVE_TRANSFERS;
    this.maxActivePerPeer = init.maxActivePerPeer ?? MAX_ACTIVE_TRANSFERS_PER_PEER;
    this.idleTimeout = init.idleTimeout ?? TRANSFER_IDLE_TIMEOUT;
  }

  /** Transfers being served now. */
  get activeTransfers(): number {
    return this.active;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.init.libp2p.handle(
      TRANSFER_PROTOCOL,
      (stream, connection) => {
        const task = this.serve(stream, connection);
        this.tasks.add(task);
        void task.finally(() => this.tasks.delete(task));
      },
      { maxInboundStreams: TRANSFER_MAX_INBOUND_STREAMS, maxOutboundStreams: TRANSFER_MAX_OUTBOUND_STREAMS },
    );
    await this.init.libp2p.handle(
      FETCH_PROTOCOL,
      (stream, connection) => {
        const task = this.serveFetch(stream, connection);
        this.tasks.add(task);
        void task.finally(() => this.tasks.delete(task));
      },
      { maxInboundStreams: FETCH_MAX_INBOUND_STREAMS, maxOutboundStreams: FETCH_MAX_OUTBOUND_STREAMS },
    );
  }

  /** A fetch batch: many whole files on one stream (fetch.ts), sharing the transfers' slots. */
  private async serveFetch(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString();
    this.streams.add(stream);
    try {
      if (!this.running) throw new StreamEndedError('transfer server stopped');
      await serveFetch(stream, {
        peer,
        idleTimeout: this.idleTimeout,
        resolve: (requests) => this.init.resolveMany?.(requests, peer) ?? Promise.all(requests.map((request) => this.init.resolve(request, peer))),
        admit: () => {
          if (this.active >= this.maxActive) return false;
          this.active++;
          return true;
        },
        release: () => this.active--,
        ...(this.init.throttle === undefined ? {} : { throttle: (content) => this.init.throttle!(content) }),
        ...(this.init.traffic === undefined ? {} : { traffic: this.init.traffic }),
      });
    } catch (error) {
      stream.abort(asError(error));
      if (this.running) this.init.onError?.(peer, asError(error));
    } finally {
      this.streams.delete(stream);
    }
  }

  /** Aborts every transfer and waits for them to end. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.init.libp2p.unhandle(TRANSFER_PROTOCOL);
    await this.init.libp2p.unhandle(FETCH_PROTOCOL);
    for (const stream of this.streams) stream.abort(new StreamEndedError('transfer server stopped'));
    await Promise.allSettled([...this.tasks]);
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString();
    const idle = guardStream(stream, new IdleTimeout(this.idleTimeout, `transfer stream from ${peer}`));
    idle.touch();
    const meter = metered(this.init.traffic, peer);
    const reader = new StreamReader(stream, { onActivity: () => idle.touch(), ...meter });
    const writer = new StreamWriter(stream, { onActivity: () => idle.touch(), ...meter });
    this.streams.add(stream);
    let admitted = false;
    let transfer: ServedTransfer | undefined;
    try {
      if (!this.running) throw new StreamEndedError('transfer server stopped');
      const request = decodeTransferRequest(await expectMessage(reader, MAX_TRANSFER_REQUEST_BYTES, 'the transfer request'));
      if (this.active >= this.maxActive) {
        await this.refuse(reader, writer, idle, { status: 'BUSY', message: `serving ${this.active} transfers already` });
        return;
      }
      const mine = this.activeByPeer.get(peer) ?? 0;
      if (mine >= this.maxActivePerPeer) {
        await this.refuse(reader, writer, idle, { status: 'BUSY', message: `serving ${mine} transfers to you already` });
        return;
      }
      this.active++;
      this.activeByPeer.set(peer, mine + 1);
      admitted = true;
      const resolution = await this.init.resolve(request, peer);
      if ('status' in resolution) {
        await this.refuse(reader, writer, idle, resolution);
        return;
      }
      // A file gone (or turned into something else) since the node looked is not found, not a reset.
      const info = await lstat(resolution.path).catch(() => undefined);
      if (info === undefined || !info.isFile()) {
        await this.refuse(reader, writer, idle, { status: 'NOT_FOUND', message: 'no longer a file' });
        return;
      }
      await writer.writeMessage(encodeTransferResponse({ status: 'OK', message: '' }));
      const fineRound = request.fineRound === true;
      const signature = await readSignature(reader, fineRound);
      transfer = { peer, request, delta: newChunkStats(), writer };
      this.init.onTransferStart?.(transfer);
      const target = fineRound ? await open(resolution.path, 'r') : undefined;
      try {
        const source = readFileChunks(resolution.path, { recycle: true });
        const options = { receiverChecksContent: request.contentChecked === true };
        const delta =
          target === undefined ? encodeDelta(signature, source, undefined, options) : encodeDeltaWithFineRound(signature, source, fineRoundSender(reader, target), undefined, options);
        await writeChunks(writer, this.init.throttle?.(delta) ?? delta, {
          compress: true,
          keepAliveInterval: Math.min(CHUNK_KEEP_ALIVE_INTERVAL, this.idleTimeout / 3),
          stats: transfer.delta,
        });
        await writer.end(idle.signal);
        // The client closes its side once it has read the delta's end; anything else is a fault.
        if (fineRound) await reader.expectEnd('the answers to the fine round');
      } finally {
        await target?.close();
      }
      this.init.onTransferEnd?.(transfer);
    } catch (error) {
      stream.abort(asError(error));
      if (transfer !== undefined) this.init.onTransferEnd?.(transfer, asError(error));
      else if (this.running) this.init.onError?.(peer, asError(error));
    } finally {
      if (admitted) {
        this.active--;
        const left = (this.activeByPeer.get(peer) ?? 1) - 1;
        if (left > 0) this.activeByPeer.set(peer, left);
        else this.activeByPeer.delete(peer);
      }
      idle.stop();
      reader.release();
      this.streams.delete(stream);
    }
  }

  /**
   * Answers with a refusal and closes our side, then reads (and drops) what the client still sends
   * of its signature until it closes or aborts, so that it reads the answer rather than a reset.
   */
  private async refuse(reader: StreamReader, writer: StreamWriter, idle: IdleTimeout, response: TransferResponse): Promise<void> {
    await writer.writeMessage(encodeTransferResponse(response));
    await writer.end(idle.signal);
    let dropped = 0;
    try {
      for (let chunk = await reader.next(); chunk !== undefined; chunk = await reader.next()) {
        dropped += chunk.length;
        if (dropped > MAX_DRAIN_BYTES) throw new ProtocolError(`kept sending ${dropped} bytes after a refusal`);
      }
    } catch (error) {
      // A client that aborts after reading the answer does what it should; one that keeps sending does not.
      if (error instanceof ProtocolError) throw error;
    }
  }
}

/** The client's signature, read and checked: a malformed one is the peer's fault. */
async function readSignature(reader: StreamReader, answersFollow: boolean): Promise<Signature> {
  let signature: Signature;
  try {
    signature = await decodeSignature(readChunks(reader, 'the signature', { maxBytes: MAX_SIGNATURE_BYTES }));
  } catch (error) {
    if (error instanceof MalformedSignatureError) throw new ProtocolError(error.message, { cause: error });
    throw error;
  }
  if (!answersFollow) await reader.expectEnd('the signature');
  return signature;
}

/**
 * The server's side of the fine round: answers read in order from the client (each the length its
 * SIGN implies; a stream that ends first is a ProtocolError), and the file re-read by offset.
 */
function fineRoundSender(reader: StreamReader, target: FileHandle): FineRoundSender {
  let previous: Promise<unknown> = Promise.resolve();
  return {
    nextAnswer(length: number): Promise<Uint8Array> {
      const answer = previous.then(async () => {
        // Answers are concatenated: each is exactly as long as its SIGN implies.
        return reader.exactly(length, 'an answer to the fine round');
      });
      previous = answer.catch(() => undefined);
      return answer;
    },
    readTarget: (start, end) => readFileRange(target, start, end),
  };
}

/** What a fetch moved; filled in as it runs. */
export interface FetchStats {
  /** Bytes put on the stream: request and signature, framing included. */
  bytesSent: number;
  /** Bytes read from the stream: response and delta, framing included. */
  bytesReceived: number;
  /** Delta bytes yielded (inflated). */
  deltaBytes: number;
  /** The delta's chunks as received. */
  chunks: ChunkStats;
  /** The most received bytes ever queued unread (bounded by the reader's pause). */
  peakQueued: number;
}

export function newFetchStats(): FetchStats {
  return { bytesSent: 0, bytesReceived: 0, deltaBytes: 0, chunks: newChunkStats(), peakQueued: 0 };
}

export interface FetchOptions extends ClientStreamOptions {
  /** Most delta bytes accepted (say, the file's size plus a margin); default no limit. */
  maxBytes?: number;
  stats?: FetchStats;
  /**
   * The patch's answers to the delta's SIGN instructions (rebuild()'s `answers`, a byte stream):
   * given, the server is offered the fine round and they are sent back as they come until they end.
   */
  answers?: AsyncIterable<Uint8Array>;
}

function refusal(response: TransferResponse): TransferRefusedError {
  switch (response.status) {
    case 'NOT_FOUND':
      return new TransferNotFoundError(response.message);
    case 'CHANGED':
      return new TransferChangedError(response.message);
    case 'BUSY':
      return new TransferBusyError(response.message);
    case 'OK':
      throw new Error('unreachable: OK is no refusal');
  }
}

/**
 * Asks `peer` for the version `request` names, sending `signature` (of the local basis) and
 * yielding the delta's bytes, inflated, for applyDelta; it fits rebuild()'s `exchange`:
 * `exchange: (signature) => fetchDelta(libp2p, peer, request, signature)`.
 *
 * Throws TransferNotFoundError, TransferChangedError or TransferBusyError when refused,
 * ProtocolError when the peer breaks the protocol, StreamTimeoutError or StreamEndedError when the
 * stream stalls or goes, and the signature source's own error if reading the basis fails.
 * Stopping early (or the consumer not asking for the next chunk within the idle timeout) aborts
 * the stream.
 */
export async function* fetchDelta(
  libp2p: TransferClientHost,
  peer: PeerId,
  request: TransferRequest,
  signature: AsyncIterable<Uint8Array>,
  options: FetchOptions = {},
): AsyncGenerator<Uint8Array> {
  const requestBytes = encodeTransferRequest({ ...request, fineRound: options.answers !== undefined });
  const stats = options.stats ?? newFetchStats();
  const client = await openClientStream(libp2p, peer, TRANSFER_PROTOCOL, 'transfer', options);
  const { stream, idleTimeout, idle, reader, writer } = client;

  // The signature's own failure (reading the basis) is the error to report, not the abort it causes.
  let sourceError: Error | undefined;
  async function* watched(): AsyncGenerator<Uint8Array> {
    try {
      yield* signature;
    } catch (error) {
      sourceError = asError(error);
      throw error;
    }
  }
  const sending = (async () => {
    await writer.writeMessage(requestBytes);
    await writeChunks(writer, watched(), { keepAliveInterval: idleTimeout / 3 });
    // Until the patch has read the delta's end: the fine round's answers.
    if (options.answers !== undefined) for await (const answers of options.answers) await writer.write(answers);
    await writer.end(idle.signal);
  })();
  sending.catch((error: unknown) => stream.abort(asError(error)));

  let completed = false;
  try {
    const response = decodeTransferResponse(await expectMessage(reader, MAX_TRANSFER_RESPONSE_BYTES, 'the transfer response'));
    if (response.status !== 'OK') throw refusal(response);
    for await (const payload of readChunks(reader, 'the delta', { maxBytes: options.maxBytes, stats: stats.chunks })) {
      stats.deltaBytes += payload.length;
      stats.bytesReceived = reader.bytesRead;
      yield payload;
    }
    await reader.expectEnd('the delta');
    // The server read our end marker (and, in the fine round, the patch has read the delta's
    // end, which closes the answers) before it sent its own: sending is done, or about to be.
    await sending;
    completed = true;
  } catch (error) {
    if (sourceError !== undefined) throw sourceError;
    throw error;
  } finally {
    stats.bytesSent = writer.bytesWritten;
    stats.bytesReceived = reader.bytesRead;
    stats.peakQueued = reader.peakQueued;
    client.finish(completed, 'transfer abandoned');
    // Not after a failure: sending may be waiting for the fine round's next answer, and the answers
    // close only once the patch has seen this failure (it fails on the aborted stream then).
    if (completed) await sending.catch(() => undefined);
  }
}
