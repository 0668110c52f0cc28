import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, brotliDecompress, brotliDecompressSync, constants as zlib, type BrotliOptions } from 'node:zlib';
import type { PeerId, Stream } from '@libp2p/interface';
import {
  BROTLI_QUALITY,
  FETCH_PROTOCOL,
  INCOMPRESSIBLE_SKIP_CHUNKS,
  MAX_FETCH_FILE_BYTES,
  MAX_FETCH_FILES,
  MAX_FETCH_REPLY_BYTES,
  MAX_FETCH_REQUEST_BYTES,
  MIN_COMPRESSION_SAVING,
} from './constants.js';
import { openClientStream, type ClientHost, type ClientStreamOptions } from './client-stream.js';
import { asError, ProtocolError, type RefusalStatus } from './errors.js';
import { decodeFetchReply, decodeFetchRequest, encodeFetchReply, encodeFetchRequest, type FetchReply, type TransferRequest } from './messages-codec.js';
import { expectMessage, guardStream, IdleTimeout, StreamReader, StreamWriter } from './streams.js';
import { encodeVarint } from './varint.js';
import { metered, type TrafficMeter } from './traffic.js';

/**
 * `/mesh/fetch/1.0.0`: many whole files on one stream, for files a delta cannot pay for (small
 * ones, or new ones with nothing locally to build on): no signature, no delta engine, one stream
 * and one protocol negotiation for up to MAX_FETCH_FILES files (docs/mesh-design.md, "Fetch").
 *
 *   client -> server   FetchRequest { files: exact versions (path, version, content hash) }, end
 *   server -> client   one FetchReply per file, in the order asked: OK with the file's bytes (brotli
 *                      when that saves 10%), or NOT_FOUND / CHANGED / BUSY with a reason; end
 *
 * The server serves exactly what transfer serves: a path whose current record has that version
 * and content hash and whose file on disk still matches the record. The client checks nothing but
 * the framing and bounds: the applier verifies every file's hash before it is placed.
 */

const compressOnPool = promisify(brotliCompress);
const decompressOnPool = promisify(brotliDecompress);

/**
 * Files up to this size are compressed and decompressed in place: a thread-pool round trip costs
 * more than the work (2.7 KiB: 34 us in place, ~200 us round trip here), and while the node scans,
 * each round trip waits a turn of its busy event loop.
 */
const IN_PLACE_BROTLI_MAX_BYTES = 64 * 1024;

function compress(content: Uint8Array): Uint8Array | Promise<Uint8Array> {
  const options: BrotliOptions = { params: { [zlib.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: content.length } };
  return content.length <= IN_PLACE_BROTLI_MAX_BYTES ? brotliCompressSync(content, options) : compressOnPool(content, options);
}

/** Decompresses a file of at most `size` bytes (more is an error, not an allocation). */
function decompress(content: Uint8Array, size: number): Uint8Array | Promise<Uint8Array> {
  const options: BrotliOptions = { maxOutputLength: Math.max(size, 1) };
  return size <= IN_PLACE_BROTLI_MAX_BYTES ? brotliDecompressSync(content, options) : decompressOnPool(content, options);
}

/** Replies gathered into one send (a muxer frame): small files cost a frame each otherwise. */
const COALESCE_BYTES = 64 * 1024;
/** Work done in place (file reads) before the event loop gets a turn. */
const YIELD_AFTER_MS = 10;
/** Smallest file worth trying to compress. */
const MIN_COMPRESS_BYTES = 64;
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const OPEN_FOR_READING = fsConstants.O_RDONLY | O_NOFOLLOW | (fsConstants.O_NONBLOCK ?? 0);

/** What the disk must still show for a resolved file to be served (the record's metadata). */
export interface ExpectedFile {
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly inode: bigint;
}

/** The node's answer to one requested file: the file to serve (and what it must still be), or why not. */
export type FetchResolution = { readonly path: string; readonly expect?: ExpectedFile } | { readonly status: RefusalStatus; readonly message: string };

/** What a fetch stream's server needs (TransferServer provides it). */
export interface FetchServeContext {
  readonly peer: string;
  readonly idleTimeout: number;
  /** Resolves every requested file at once (one batch read of the index). */
  resolve(requests: readonly TransferRequest[]): Promise<readonly FetchResolution[]>;
  /** Takes one of the server's transfer slots: false when all are taken (the batch is answered BUSY). */
  admit(): boolean;
  release(): void;
  /** An upload rate limit on each file's bytes. */
  throttle?(content: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array>;
  traffic?: TrafficMeter;
}

type ReadFile = { content: Uint8Array } | { status: RefusalStatus; message: string };

/**
 * Reads a resolved file whole, never through a symlink, only while it is still what was resolved.
 * The calls are made in place: for small files a thread-pool round trip costs more than the call
 * (as in the scanner); the server yields to the event loop between files.
 */
function readResolved(path: string, expect: ExpectedFile | undefined): ReadFile {
  let fd;
  try {
    fd = openSync(path, OPEN_FOR_READING);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { status: 'CHANGED', message: 'the file is gone since it was scanned' } : { status: 'NOT_FOUND', message: `cannot open: ${code ?? 'error'}` };
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) return { status: 'NOT_FOUND', message: 'no longer a file' };
    if (expect !== undefined && (stats.size !== BigInt(expect.size) || stats.mtimeNs !== expect.mtimeNs || stats.ino !== expect.inode)) {
      return { status: 'CHANGED', message: 'the file changed on disk since it was scanned' };
    }
    if (stats.size > BigInt(MAX_FETCH_FILE_BYTES)) return { status: 'NOT_FOUND', message: `larger than ${MAX_FETCH_FILE_BYTES} bytes: ask by transfer` };
    const size = Number(stats.size);
    const content = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const bytesRead = readSync(fd, content, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got !== size) return { status: 'CHANGED', message: 'the file shrank while it was read' };
    return { content };
  } catch (error) {
    return { status: 'NOT_FOUND', message: `cannot read: ${(error as NodeJS.ErrnoException).code ?? asError(error).message}` };
  } finally {
    closeSync(fd);
  }
}

/** Serves one fetch stream: reads the request, answers every file in order, closes. */
export async function serveFetch(stream: Stream, context: FetchServeContext): Promise<void> {
  const { peer } = context;
  const idle = guardStream(stream, new IdleTimeout(context.idleTimeout, `fetch stream from ${peer}`));
  idle.touch();
  const meter = metered(context.traffic, peer);
  const reader = new StreamReader(stream, { onActivity: () => idle.touch(), ...meter });
  const writer = new StreamWriter(stream, { onActivity: () => idle.touch(), ...meter });
  let admitted = false;
  try {
    const requests = decodeFetchRequest(await expectMessage(reader, MAX_FETCH_REQUEST_BYTES, 'the fetch request'));
    await reader.expectEnd('the fetch request');
    admitted = context.admit();
    if (!admitted) {
      const busy = encodeFetchReply({ status: 'BUSY', message: 'serving as many transfers as it will' });
      const framed = Buffer.concat([Uint8Array.from(encodeVarint(busy.length)), busy]);
      await writer.write(Buffer.concat(requests.map(() => framed)));
      await writer.end(idle.signal);
      return;
    }
    const resolutions = await context.resolve(requests);
    if (resolutions.length !== requests.length) throw new Error(`resolved ${resolutions.length} of ${requests.length} files`);
    // Replies are gathered into sends of about COALESCE_BYTES: one muxer frame (and one encryption)
    // for many small files instead of two per file.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const parts = pending;
      pending = [];
      pendingBytes = 0;
      await writer.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    };
    let skipCompression = 0;
    let worked = performance.now();
    for (const [k, resolution] of resolutions.entries()) {
      const read = 'status' in resolution ? resolution : readResolved(resolution.path, resolution.expect);
      let reply: FetchReply;
      if ('status' in read) {
        reply = read;
      } else {
        let content = read.content;
        if (context.throttle !== undefined) for await (const part of context.throttle(one(content))) content = part;
        let compressed = false;
        if (skipCompression > 0) {
          skipCompression--;
        } else if (content.length >= MIN_COMPRESS_BYTES) {
          const packed = await compress(content);
          if (packed.length <= content.length * (1 - MIN_COMPRESSION_SAVING)) {
            content = packed;
            compressed = true;
          } else {
            skipCompression = INCOMPRESSIBLE_SKIP_CHUNKS;
          }
        }
        reply = { status: 'OK', content, compressed };
      }
      const message = encodeFetchReply(reply);
      pending.push(Uint8Array.from(encodeVarint(message.length)), message);
      pendingBytes += message.length;
      if (pendingBytes >= COALESCE_BYTES || k === resolutions.length - 1) {
        await flush();
        worked = performance.now();
      } else if (performance.now() - worked > YIELD_AFTER_MS) {
        // Reads are made in place: let the event loop turn (other streams, timers).
        await flush();
        await new Promise((resolve) => setImmediate(resolve));
        worked = performance.now();
      }
    }
    await writer.end(idle.signal);
  } catch (error) {
    stream.abort(asError(error));
    throw error;
  } finally {
    if (admitted) context.release();
    idle.stop();
    reader.release();
  }
}

async function* one(content: Uint8Array): AsyncGenerator<Uint8Array> {
  yield content;
}

/** What the fetch client needs of a libp2p node. */
export type FetchClientHost = ClientHost;

/** One file to fetch: its exact version, and its size (bounds what the reply may inflate to). */
export interface FetchItem {
  readonly request: TransferRequest;
  readonly size: number;
}

/** One fetched file as the client yields it: the bytes (unverified), or the server's refusal. */
export type FetchedFile = { readonly status: 'OK'; readonly content: Uint8Array } | { readonly status: RefusalStatus; readonly message: string };

export type FetchFilesOptions = ClientStreamOptions;

/**
 * Asks `peer` for `items` (1 to MAX_FETCH_FILES, at most MAX_FETCH_REQUEST_BYTES encoded) on one
 * stream and yields one FetchedFile per item, in order. The content is what the peer sent,
 * inflated: the caller verifies its hash. Throws ProtocolError when the peer breaks the protocol
 * (a reply over the limits, a file larger than asked, more replies than files), StreamTimeoutError
 * or StreamEndedError when the stream stalls or goes: the files not yielded yet were not fetched.
 * Stopping early aborts the stream.
 */
export async function* fetchFiles(libp2p: FetchClientHost, peer: PeerId, items: readonly FetchItem[], options: FetchFilesOptions = {}): AsyncGenerator<FetchedFile> {
  if (items.length === 0) return;
  if (items.length > MAX_FETCH_FILES) throw new RangeError(`a fetch asks for at most ${MAX_FETCH_FILES} files, not ${items.length}`);
  const requestBytes = encodeFetchRequest(items.map((item) => item.request));
  if (requestBytes.length > MAX_FETCH_REQUEST_BYTES) throw new RangeError(`a fetch request of ${requestBytes.length} bytes is over ${MAX_FETCH_REQUEST_BYTES}`);
  const client = await openClientStream(libp2p, peer, FETCH_PROTOCOL, 'fetch', options);
  const { idle, reader, writer } = client;
  let completed = false;
  try {
    await writer.writeMessage(requestBytes);
    await writer.end(idle.signal);
    for (const item of items) {
      const reply = decodeFetchReply(await expectMessage(reader, MAX_FETCH_REPLY_BYTES, 'a fetch reply'));
      if (reply.status !== 'OK') {
        yield reply;
        continue;
      }
      let content = reply.content;
      if (reply.compressed) {
        try {
          content = await decompress(content, item.size);
        } catch (error) {
          throw new ProtocolError(`bad compressed file in a fetch reply: ${asError(error).message}`, { cause: error });
        }
      }
      if (content.length > item.size) throw new ProtocolError(`fetch reply of ${content.length} bytes for a file of ${item.size}`);
      yield { status: 'OK', content };
    }
    await reader.expectEnd('the fetch replies');
    completed = true;
  } finally {
    client.finish(completed, 'fetch abandoned');
  }
}
