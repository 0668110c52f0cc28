import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants as zlib } from 'node:zlib';
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface';
import {
  BROTLI_QUALITY,
  CHUNK_PAYLOAD_BYTES,
  INCOMPRESSIBLE_SKIP_CHUNKS,
  JOINED_PIECE_MAX_BYTES,
  MAX_INCOMPRESSIBLE_SKIP_CHUNKS,
  MAX_CHUNK_PAYLOAD_BYTES,
  MIN_COMPRESSION_SAVING,
  READ_HIGH_WATER,
  READ_LOW_WATER,
  WRITE_HIGH_WATER,
} from './constants.js';
import { MeshProtocolError, ProtocolError, StreamEndedError, StreamTimeoutError } from './errors.js';
import { encodeVarint } from './varint.js';

/**
 * The stream utilities both protocols use, on libp2p 3's message streams (EventTarget-style:
 * `send`, `close`, `abort`, `pause`/`resume`, 'message'/'drain'/'idle'/'close' events). Memory
 * stays bounded in both directions, which libp2p's own helpers do not do by themselves
 * (shared/notes/stack.md): the writer waits while the stream holds more than WRITE_HIGH_WATER
 * unsent bytes, and the reader pauses the stream (so the muxer stops granting window) when more
 * than READ_HIGH_WATER received bytes wait, resuming below READ_LOW_WATER.
 */

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);

/**
 * The stream's read buffer while paused may hold up to the muxer's window; yamux's default window
 * is 16 MiB while libp2p resets a stream whose paused buffer passes 4 MiB. Raising that limit makes
 * a pause safe whatever the window (mesh's node uses 2 MiB windows, so this is only a guard).
 */
const PAUSED_READ_BUFFER_LIMIT = 16 * 1024 * 1024 + READ_HIGH_WATER;

/** The error a failed stream reports: ours as they are, libp2p's as StreamEndedError. */
export function streamFailure(event: StreamCloseEvent | undefined, fallback: string): Error {
  const error = event?.error;
  if (error instanceof MeshProtocolError) return error;
  if (error === undefined) return new StreamEndedError(fallback);
  const how = event?.local === true ? 'aborted' : 'reset by the peer';
  return new StreamEndedError(`stream ${how}: ${error.message}`, { cause: error });
}

function formatMs(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms)} ms` : `${Math.round(ms / 1000)} s`;
}

/**
 * Aborts with StreamTimeoutError when nothing moved for `ms`. `touch()` records activity (cheap:
 * a timestamp, the timer re-arms itself when it fires early); `stop()` suspends the countdown
 * while this side is the one that is busy. Set `onTimeout` to act (abort the stream).
 */
export class IdleTimeout {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private limit: number;

  constructor(
    private readonly ms: number,
    private readonly what: string,
  ) {
    this.limit = ms;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Activity now; the next `limit` ms (default: the idle timeout) may pass in silence. */
  touch(limit = this.ms): void {
    if (this.controller.signal.aborted || !(limit > 0) || !Number.isFinite(limit)) return;
    this.last = performance.now();
    // A shorter limit than the armed one needs a timer that fires sooner.
    if (this.timer !== undefined && limit < this.limit) this.stop();
    this.limit = limit;
    if (this.timer === undefined) this.arm(limit);
  }

  /** No countdown until the next touch. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delay: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const silent = performance.now() - this.last;
      if (silent + 1 < this.limit) this.arm(this.limit - silent);
      else this.controller.abort(new StreamTimeoutError(`${this.what}: nothing moved for ${formatMs(this.limit)}`));
    }, delay);
    // A forgotten timeout must not keep the process alive.
    this.timer.unref();
  }
}

/** Aborts `stream` with the timeout's error when it fires; returns the timeout. */
export function guardStream(stream: Stream, idle: IdleTimeout): IdleTimeout {
  const onAbort = () => stream.abort(idle.signal.reason as Error);
  if (idle.signal.aborted) onAbort();
  else idle.signal.addEventListener('abort', onAbort, { once: true });
  stream.addEventListener('close', () => idle.stop(), { once: true });
  return idle;
}

export interface StreamReaderOptions {
  /** Pause the stream above this many queued bytes (default READ_HIGH_WATER). */
  highWater?: number;
  /** Resume below this (default READ_LOW_WATER). */
  lowWater?: number;
  /** Called whenever bytes arrive (an idle timeout's touch). */
  onActivity?: () => void;
  /** Told how many bytes arrived (a traffic meter). */
  onBytesRead?: (bytes: number) => void;
}

/**
 * Reads a libp2p stream with a bounded queue. Chunks are views of what the muxer delivered
 * (fresh buffers, never reused), so they stay valid after later reads. One read at a time.
 */
export class StreamReader {
  private readonly chunks: Uint8Array[] = [];
  private offset = 0;
  private queued = 0;
  private remoteClosed = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private paused = false;
  private pauseScheduled = false;
  private readonly highWater: number;
  private readonly lowWater: number;
  /** Bytes received so far. */
  bytesRead = 0;
  /** The most bytes that were ever queued here at once. */
  peakQueued = 0;

  constructor(
    private readonly stream: Stream,
    private readonly options: StreamReaderOptions = {},
  ) {
    this.highWater = options.highWater ?? READ_HIGH_WATER;
    this.lowWater = options.lowWater ?? READ_LOW_WATER;
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, PAUSED_READ_BUFFER_LIMIT);
    stream.addEventListener('message', this.onMessage);
    stream.addEventListener('remoteCloseWrite', this.onRemoteClose);
    stream.addEventListener('close', this.onClose);
    if (stream.remoteWriteStatus === 'closed') this.remoteClosed = true;
    if (stream.status !== 'open' && stream.status !== 'closing') this.failure ??= streamFailure(undefined, `stream is ${stream.status}`);
  }

  private readonly onMessage = (event: StreamMessageEvent): void => {
    const { data } = event;
    if (data instanceof Uint8Array) {
      if (data.length > 0) this.chunks.push(data);
    } else {
      for (const buffer of data) if (buffer.length > 0) this.chunks.push(buffer);
    }
    this.queued += data.byteLength;
    this.bytesRead += data.byteLength;
    this.options.onBytesRead?.(data.byteLength);
    this.peakQueued = Math.max(this.peakQueued, this.queued);
    this.options.onActivity?.();
    if (this.queued > this.highWater && !this.paused && !this.pauseScheduled) {
      // Not inside the 'message' dispatch itself (shared/notes/stack.md).
      this.pauseScheduled = true;
      queueMicrotask(() => {
        this.pauseScheduled = false;
        if (this.queued > this.lowWater && !this.paused && this.stream.readStatus === 'readable') {
          this.stream.pause();
          this.paused = true;
        }
      });
    }
    this.notify();
  };

  private readonly onRemoteClose = (): void => {
    this.remoteClosed = true;
    this.notify();
  };

  private readonly onClose = (event: StreamCloseEvent): void => {
    if (event.error !== undefined) this.failure ??= streamFailure(event, 'stream closed');
    this.remoteClosed = true;
    this.notify();
  };

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** No more bytes will come: the peer closed its side and libp2p holds nothing unread. */
  private get ended(): boolean {
    return this.remoteClosed && this.stream.readBufferLength === 0;
  }

  private resumeIfLow(): void {
    if (this.paused && this.queued < this.lowWater) {
      this.paused = false;
      // May deliver buffered messages synchronously (onMessage runs now): state is consistent here.
      if (this.stream.readStatus === 'paused') this.stream.resume();
    }
  }

  /** Waits until bytes are queued; false at the end of the stream. Throws the stream's failure. */
  private async fill(): Promise<boolean> {
    while (this.queued === 0) {
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return false;
      this.resumeIfLow();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return true;
  }

  /** At most `max` bytes as they arrived (a view), or undefined at the end of the stream. */
  async next(max = Infinity): Promise<Uint8Array | undefined> {
    if (!(await this.fill())) return undefined;
    return this.take(max);
  }

  /**
   * At most `max` of the bytes queued, or undefined at the end of the stream: a view when they are
   * in one piece, else copied into one new buffer. Waits only while nothing is queued. A bulk
   * reader then hands on one array where the muxer delivered many: each piece costs a step through
   * every stage of a pipeline after it, and the network delivers a large transfer in pieces of a
   * few KiB to 64 KiB.
   */
  async nextJoined(max: number): Promise<Uint8Array | undefined> {
    if (!(await this.fill())) return undefined;
    const length = Math.min(max, this.queued);
    if (this.chunks[0].length - this.offset >= length) return this.take(length);
    const joined = Buffer.allocUnsafe(length);
    for (let got = 0; got < length; ) {
      const part = this.take(length - got);
      joined.set(part, got);
      got += part.length;
    }
    return joined;
  }

  /** At most `max` of the queued bytes (a view); at least one byte must be queued. */
  private take(max: number): Uint8Array {
    const chunk = this.chunks[0];
    const take = Math.min(max, chunk.length - this.offset);
    const out = chunk.subarray(this.offset, this.offset + take);
    this.offset += take;
    if (this.offset === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    }
    this.queued -= take;
    this.resumeIfLow();
    return out;
  }

  /**
   * Whether a whole length-prefixed message (see readMessage) is queued already, so that reading
   * it will not wait. A malformed length counts as whole: reading it then throws.
   */
  messageQueued(): boolean {
    let length = 0;
    let scale = 1;
    let lengthBytes = 0;
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c];
      for (let at = c === 0 ? this.offset : 0; at < chunk.length; at++) {
        const byte = chunk[at];
        lengthBytes++;
        length += (byte & 0x7f) * scale;
        if ((byte & 0x80) === 0) return this.queued - lengthBytes >= length;
        if (lengthBytes >= MAX_LENGTH_BYTES) return true;
        scale *= 128;
      }
    }
    return false;
  }

  /** One byte, or undefined at the end of the stream. */
  async byte(): Promise<number | undefined> {
    const one = await this.next(1);
    return one?.[0];
  }

  /**
   * Exactly `length` bytes (the caller has bounded it), as one array; StreamEndedError if the stream
   * ends first (a peer that stops or loses its connection mid-message did nothing wrong). Memory
   * grows with the bytes that arrive, never with the length asked for.
   */
  async exactly(length: number, what: string): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < length) {
      const part = await this.next(length - got);
      if (part === undefined) throw new StreamEndedError(`stream ended after ${got} of the ${length} bytes of ${what}`);
      parts.push(part);
      got += part.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, length);
  }

  /** Throws ProtocolError unless the stream ends here. */
  async expectEnd(what: string): Promise<void> {
    if ((await this.next(1)) !== undefined) throw new ProtocolError(`unexpected bytes after ${what}`);
  }

  /** Stops listening: what is still queued is dropped, and a read still waiting fails. */
  release(): void {
    this.stream.removeEventListener('message', this.onMessage);
    this.stream.removeEventListener('remoteCloseWrite', this.onRemoteClose);
    this.stream.removeEventListener('close', this.onClose);
    this.chunks.length = 0;
    this.queued = 0;
    this.failure ??= new StreamEndedError('stream reader released');
    this.notify();
  }
}

export interface StreamWriterOptions {
  /** Wait while the stream holds more unsent bytes than this (default WRITE_HIGH_WATER). */
  highWater?: number;
  /** Called when a write is made or the stream drains (an idle timeout's touch). */
  onActivity?: () => void;
  /** Told how many bytes each write handed to the stream (a traffic meter). */
  onBytesWritten?: (bytes: number) => void;
}

/**
 * Writes to a libp2p stream without letting it buffer more than about `highWater` bytes: after
 * each send it waits for 'drain' or 'idle' while the stream's writeBufferLength is above it, and
 * fails as soon as the stream closes. The stream keeps the buffers it is given until they are
 * sent: never pass one that will be reused.
 */
export class StreamWriter {
  private readonly highWater: number;
  /** Bytes handed to the stream so far. */
  bytesWritten = 0;
  /** The most unsent bytes the stream ever held after one of our writes. */
  peakBuffered = 0;

  constructor(
    private readonly stream: Stream,
    private readonly options: StreamWriterOptions = {},
  ) {
    this.highWater = options.highWater ?? WRITE_HIGH_WATER;
  }

  private closedError(): Error {
    return streamFailure(undefined, `stream is ${this.stream.status} (write side ${this.stream.writeStatus})`);
  }

  /** Sends the parts in order, then waits until the stream's write buffer is back under highWater. */
  async write(...parts: Uint8Array[]): Promise<void> {
    if (this.stream.writeStatus !== 'writable') throw this.closedError();
    for (const part of parts) {
      if (part.length === 0) continue;
      try {
        this.stream.send(part);
      } catch (error) {
        throw new StreamEndedError(`cannot write: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
      this.bytesWritten += part.length;
      this.options.onBytesWritten?.(part.length);
    }
    this.peakBuffered = Math.max(this.peakBuffered, this.stream.writeBufferLength);
    this.options.onActivity?.();
    while (this.stream.writeBufferLength > this.highWater) await this.progress();
  }

  /** A length-prefixed message. */
  async writeMessage(message: Uint8Array): Promise<void> {
    await this.write(Uint8Array.from(encodeVarint(message.length)), message);
  }

  /** Resolves at the next 'drain' or 'idle'; rejects when the stream closes. */
  private progress(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const stream = this.stream;
      const done = (error?: Error) => {
        stream.removeEventListener('drain', onProgress);
        stream.removeEventListener('idle', onProgress);
        stream.removeEventListener('close', onClose);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onProgress = () => {
        this.options.onActivity?.();
        done();
      };
      const onClose = (event: StreamCloseEvent) => done(streamFailure(event, 'stream closed while writing'));
      if (stream.status !== 'open') {
        reject(this.closedError());
        return;
      }
      stream.addEventListener('drain', onProgress);
      stream.addEventListener('idle', onProgress);
      stream.addEventListener('close', onClose);
    });
  }

  /** Closes our side once everything is sent (the peer still reads to the end). */
  async end(signal?: AbortSignal): Promise<void> {
    try {
      await this.stream.close({ signal });
    } catch (error) {
      if (error instanceof MeshProtocolError) throw error;
      if (signal?.aborted === true && signal.reason instanceof MeshProtocolError) throw signal.reason;
      throw new StreamEndedError(`cannot close the stream: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}

// ---- Length-prefixed messages ----

/** Longest varint read as a length: 5 bytes hold 35 bits, far past any limit here. */
const MAX_LENGTH_BYTES = 5;

/**
 * The length of the next length-prefixed message (a varint), at most `maxLength`; undefined if the
 * stream ends cleanly before it, StreamEndedError if it ends inside the varint. An over-long or
 * non-minimal varint or a length over the limit is a ProtocolError.
 */
async function readLength(reader: StreamReader, maxLength: number, what: string): Promise<number | undefined> {
  let length = 0;
  let scale = 1;
  for (let i = 0; ; i++) {
    const byte = await reader.byte();
    if (byte === undefined) {
      if (i === 0) return undefined;
      throw new StreamEndedError(`stream ended inside the length of ${what}`);
    }
    length += (byte & 0x7f) * scale;
    if (length > maxLength) throw new ProtocolError(`${what} longer than ${maxLength} bytes`);
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) throw new ProtocolError(`length of ${what} has a redundant zero byte`);
      return length;
    }
    if (i + 1 >= MAX_LENGTH_BYTES) throw new ProtocolError(`length of ${what} is longer than ${MAX_LENGTH_BYTES} bytes`);
    scale *= 128;
  }
}

/**
 * The next length-prefixed message (varint length, then that many bytes), at most `maxLength`
 * bytes; undefined if the stream ends cleanly before it. Anything else (a length over the limit,
 * an over-long or non-minimal varint, a truncated message) is a ProtocolError.
 */
export async function readMessage(reader: StreamReader, maxLength: number, what: string): Promise<Uint8Array | undefined> {
  const length = await readLength(reader, maxLength, what);
  if (length === undefined) return undefined;
  return length === 0 ? new Uint8Array(0) : reader.exactly(length, what);
}

/** As readMessage, but the stream ending instead is a StreamEndedError. */
export async function expectMessage(reader: StreamReader, maxLength: number, what: string): Promise<Uint8Array> {
  const message = await readMessage(reader, maxLength, what);
  if (message === undefined) throw new StreamEndedError(`stream ended before ${what}`);
  return message;
}

// ---- Chunked byte streams ----

/**
 * A byte stream of unknown length (a signature, a delta) as length-prefixed chunks, each a flag
 * byte and a payload: 0 raw, 1 brotli-compressed, 2 keep-alive (no payload, sent while the sender
 * is busy computing so that the receiver's idle timeout does not fire). An empty message (length
 * 0) ends the stream.
 */
export const CHUNK_RAW = 0;
export const CHUNK_BROTLI = 1;
export const CHUNK_KEEP_ALIVE = 2;
const END_OF_CHUNKS = Uint8Array.of(0);

export interface ChunkStats {
  /** Payload bytes before compression. */
  payloadBytes: number;
  /** Bytes put on the stream (framing included). */
  wireBytes: number;
  /** Chunks sent compressed. */
  compressedChunks: number;
  /** Chunks sent raw. */
  rawChunks: number;
}

export function newChunkStats(): ChunkStats {
  return { payloadBytes: 0, wireBytes: 0, compressedChunks: 0, rawChunks: 0 };
}

export interface WriteChunksOptions {
  /** Try brotli on each chunk (default false: signatures are hashes, which never compress). */
  compress?: boolean;
  /** Send a keep-alive chunk when the source is silent this long (ms; default none). */
  keepAliveInterval?: number;
  stats?: ChunkStats;
}

/**
 * Pieces of at most CHUNK_PAYLOAD_BYTES, as views of the source's chunks. Each chunk is cut into
 * pieces of equal length, so that none is a few bytes long: a delta's 1 MiB literal and the few
 * bytes of its instruction would otherwise leave a piece sent raw and framed on its own.
 */
async function* pieces(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    const length = Math.ceil(chunk.length / Math.ceil(chunk.length / CHUNK_PAYLOAD_BYTES));
    for (let at = 0; at < chunk.length; at += length) yield chunk.subarray(at, at + length);
  }
}

const TIMED_OUT = Symbol('timed out');

function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (!(ms > 0) || !Number.isFinite(ms)) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Sends `source` as chunks, then the end marker. The source must hand out buffers it will not
 * reuse (the stream holds them until sent); encodeSignature and encodeDelta do. With `compress`,
 * a chunk goes out brotli-compressed (quality 1) when that saves at least 10%; after one that did
 * not, the next INCOMPRESSIBLE_SKIP_CHUNKS go raw untried, twice as many after each further failure
 * (up to MAX_INCOMPRESSIBLE_SKIP_CHUNKS), so incompressible data costs little CPU.
 */
export async function writeChunks(writer: StreamWriter, source: AsyncIterable<Uint8Array>, options: WriteChunksOptions = {}): Promise<void> {
  const stats = options.stats ?? newChunkStats();
  const iterator = pieces(source)[Symbol.asyncIterator]();
  let skip = 0;
  let nextSkip = INCOMPRESSIBLE_SKIP_CHUNKS;
  let finished = false;
  let pending: Promise<IteratorResult<Uint8Array>> | undefined;
  const send = async (flag: number, payload: Uint8Array) => {
    const header = Uint8Array.from([...encodeVarint(payload.length + 1), flag]);
    stats.wireBytes += header.length + payload.length;
    await writer.write(header, payload);
  };
  try {
    for (;;) {
      pending ??= iterator.next();
      const next = await within(pending, options.keepAliveInterval ?? 0);
      if (next === TIMED_OUT) {
        await send(CHUNK_KEEP_ALIVE, new Uint8Array(0));
        continue;
      }
      pending = undefined;
      if (next.done === true) break;
      const piece = next.value;
      stats.payloadBytes += piece.length;
      if (options.compress === true && skip === 0 && piece.length >= 64) {
        const packed = await compress(piece, {
          params: { [zlib.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: piece.length },
        });
        if (packed.length <= piece.length * (1 - MIN_COMPRESSION_SAVING)) {
          stats.compressedChunks++;
          nextSkip = INCOMPRESSIBLE_SKIP_CHUNKS;
          await send(CHUNK_BROTLI, packed);
          continue;
        }
        skip = nextSkip;
        nextSkip = Math.min(2 * nextSkip, MAX_INCOMPRESSIBLE_SKIP_CHUNKS);
      } else if (skip > 0) {
        skip--;
      }
      stats.rawChunks++;
      await send(CHUNK_RAW, piece);
    }
    stats.wireBytes += END_OF_CHUNKS.length;
    await writer.write(END_OF_CHUNKS);
    finished = true;
  } finally {
    if (!finished) {
      // Stop the source (close its files); a next() still running finishes first, so do not wait.
      const stopping: Promise<unknown> = pending === undefined ? iterator.return(undefined) : pending.then(() => iterator.return(undefined));
      stopping.catch(() => undefined);
    }
  }
}

export interface ReadChunksOptions {
  /** Most payload bytes in all (inflated), or ProtocolError; default no limit. */
  maxBytes?: number;
  stats?: ChunkStats;
}

/**
 * The payloads of a chunked byte stream, inflated, up to its end marker. A chunk over
 * MAX_CHUNK_PAYLOAD_BYTES (as sent or once inflated), bad brotli data or an unknown flag is a
 * ProtocolError; a stream that ends before the marker a StreamEndedError. Yields fresh buffers or views of received ones
 * (never reused), as applyDelta requires.
 */
export async function* readChunks(reader: StreamReader, what: string, options: ReadChunksOptions = {}): AsyncGenerator<Uint8Array> {
  const { stats, maxBytes = Infinity } = options;
  let total = 0;
  const count = (length: number) => {
    total += length;
    if (total > maxBytes) throw new ProtocolError(`${what} is longer than ${maxBytes} bytes`);
  };
  for (;;) {
    const chunk = `a chunk of ${what}`;
    const length = await readLength(reader, MAX_CHUNK_PAYLOAD_BYTES + 1, chunk);
    if (length === undefined) throw new StreamEndedError(`stream ended before ${chunk}`);
    if (stats !== undefined) stats.wireBytes += length + encodeVarint(length).length;
    if (length === 0) return;
    const flag = await reader.byte();
    if (flag === undefined) throw new StreamEndedError(`stream ended after 0 of the ${length} bytes of ${chunk}`);
    const payloadLength = length - 1;
    switch (flag) {
      case CHUNK_RAW:
        count(payloadLength);
        if (stats !== undefined) {
          stats.rawChunks++;
          stats.payloadBytes += payloadLength;
        }
        // As the bytes arrive, what came in several pieces joined: not a whole chunk held back.
        for (let left = payloadLength; left > 0; ) {
          const piece = await reader.nextJoined(Math.min(left, JOINED_PIECE_MAX_BYTES));
          if (piece === undefined) throw new StreamEndedError(`stream ended after ${length - left} of the ${length} bytes of ${chunk}`);
          left -= piece.length;
          yield piece;
        }
        break;
      case CHUNK_BROTLI: {
        const payload = await reader.exactly(payloadLength, chunk);
        let inflated: Buffer;
        try {
          inflated = await decompress(payload, { maxOutputLength: MAX_CHUNK_PAYLOAD_BYTES });
        } catch (error) {
          throw new ProtocolError(`bad compressed chunk of ${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
        count(inflated.length);
        if (stats !== undefined) {
          stats.compressedChunks++;
          stats.payloadBytes += inflated.length;
        }
        if (inflated.length > 0) yield inflated;
        break;
      }
      case CHUNK_KEEP_ALIVE:
        if (payloadLength > 0) throw new ProtocolError(`keep-alive chunk of ${what} with a payload`);
        break;
      default:
        throw new ProtocolError(`chunk of ${what} with unknown flag ${flag}`);
    }
  }
}
