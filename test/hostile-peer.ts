// A hostile peer: a real libp2p node built by src/node's createMeshNetwork (TCP on 127.0.0.1,
// noise, yamux, the mesh key's private network), holding the mesh key, that speaks /mesh/index
// and /mesh/transfer with whatever bytes a test crafts. And the victim: a real MeshNode on
// loopback (real folder, LevelDB, transfer server), its events collected.
import '../src/polyfills.js';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { decodeSignature, encodeDelta } from '../src/delta/index.js';
import { createMeshNetwork, type MeshNetwork } from '../src/node/network.js';
import { formatMeshKey, generateMeshKey, parseMeshKey } from '../src/node/keys.js';
import { MeshNode, type MeshNodeEvent, type MeshNodeInit } from '../src/node/mesh-node.js';
import { FETCH_PROTOCOL, INDEX_PROTOCOL, MAX_FETCH_REQUEST_BYTES, TRANSFER_PROTOCOL } from '../src/protocol/constants.js';
import { EntryType, IndexBatch, WireRecord } from '../src/protocol/messages.js';
import { decodeFetchRequest, decodeIndexRequest, decodeTransferRequest, encodeFetchReply, encodeTransferResponse, type TransferRequest } from '../src/protocol/messages-codec.js';
import { expectMessage, readChunks, StreamReader, StreamWriter, writeChunks } from '../src/protocol/streams.js';
import { encodeVarint } from '../src/protocol/varint.js';
import { BLOCK_HASH_LENGTH } from '../src/store/types.js';
import { eventually, type Teardown } from './protocol-helpers.js';

/** A device id (8 bytes) that no real node has. */
export const HOSTILE_DEVICE = 'baadf00dbaadf00d';

const sha256 = (bytes: Uint8Array | string): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());

/** Block hashes and content hash of `content`, as the scanner computes them. */
export function hashesOf(content: Uint8Array): { blockHashes: Uint8Array; contentHash: Uint8Array } {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < content.length; at += BLOCK_HASH_LENGTH) parts.push(sha256(content.subarray(at, at + BLOCK_HASH_LENGTH)));
  const blockHashes = new Uint8Array(Buffer.concat(parts));
  return { blockHashes, contentHash: sha256(blockHashes) };
}

/**
 * A WireRecord exactly as the generated codec takes it: nothing is checked, so any field may be
 * hostile. Defaults describe a valid file with `content` (empty by default) at `path`.
 */
export function wireFile(path: string, content: Uint8Array = new Uint8Array(0), overrides: Partial<WireRecord> = {}): WireRecord {
  const { blockHashes, contentHash } = hashesOf(content);
  return {
    path,
    type: EntryType.FILE,
    size: content.length,
    mtimeNs: 1_700_000_000_000_000_000n,
    mode: 0o644,
    blockHashes: blockHashes as Uint8Array<ArrayBuffer>,
    contentHash: contentHash as Uint8Array<ArrayBuffer>,
    symlinkTarget: '',
    version: [{ device: Buffer.from(HOSTILE_DEVICE, 'hex'), value: 1 }],
    deleted: false,
    modifiedBy: Buffer.from(HOSTILE_DEVICE, 'hex'),
    sequence: 1,
    ...overrides,
  };
}

export function wireDirectory(path: string, overrides: Partial<WireRecord> = {}): WireRecord {
  const empty = new Uint8Array(0);
  return wireFile(path, undefined, { type: EntryType.DIRECTORY, mode: 0o755, blockHashes: empty, contentHash: empty, ...overrides });
}

export function wireSymlink(path: string, target: string, overrides: Partial<WireRecord> = {}): WireRecord {
  const empty = new Uint8Array(0);
  return wireFile(path, undefined, {
    type: EntryType.SYMLINK,
    mode: 0o777,
    blockHashes: empty,
    contentHash: sha256(target) as Uint8Array<ArrayBuffer>,
    symlinkTarget: target,
    ...overrides,
  });
}

/** An IndexBatch's bytes; records get sequences 1, 2, ... unless they carry their own. */
export function batchOf(records: WireRecord[], lastSequence = records.length): Uint8Array {
  return IndexBatch.encode({ records, lastSequence });
}

/** `bytes` behind its varint length, as every message of both protocols travels. */
export function framed(bytes: Uint8Array): Uint8Array {
  return Buffer.concat([Uint8Array.from(encodeVarint(bytes.length)), bytes]);
}

/** A stream the hostile peer opened or accepted, for sending raw bytes and reading what comes back. */
export class RawStream {
  readonly reader: StreamReader;
  readonly writer: StreamWriter;
  constructor(readonly stream: Stream) {
    this.reader = new StreamReader(stream);
    this.writer = new StreamWriter(stream);
  }

  /** Sends bytes exactly as given (no framing). */
  async send(bytes: Uint8Array): Promise<void> {
    await this.writer.write(bytes);
  }

  /** Everything the other side sends until it closes or resets the stream (or `ms` pass). */
  async readToEnd(ms = 10_000): Promise<{ bytes: Uint8Array; end: 'closed' | 'reset' | 'timeout' }> {
    const parts: Uint8Array[] = [];
    const timer = setTimeout(() => this.stream.abort(new Error('readToEnd timed out')), ms);
    let end: 'closed' | 'reset' | 'timeout' = 'closed';
    try {
      for (let chunk = await this.reader.next(); chunk !== undefined; chunk = await this.reader.next()) parts.push(chunk);
    } catch (error) {
      end = (error as Error).message.includes('readToEnd timed out') ? 'timeout' : 'reset';
    } finally {
      clearTimeout(timer);
    }
    return { bytes: new Uint8Array(Buffer.concat(parts)), end };
  }
}

/** How the hostile peer answers a transfer request from `peer`: bytes to send back, written by the test. */
export type TransferScript = (io: RawStream, request: TransferRequest, peer: string) => Promise<void>;
/** The bytes a fetch batch (/mesh/fetch) answers for one requested file. */
export type FetchContent = (request: TransferRequest, peer: string) => Uint8Array | Promise<Uint8Array>;

/**
 * A node holding the mesh key that answers with crafted bytes. Build with HostilePeer.start();
 * stopped when the test ends.
 */
export class HostilePeer {
  /** Raw index batches (message bodies) sent, in order, on each index stream a victim opens. */
  indexBatches: Uint8Array[] = [];
  /** When set, sent instead of the batches exactly as given (no framing): broken frames. */
  indexRawBytes: Uint8Array | undefined;
  /** Index streams open now: `push()` sends more batches on them. */
  private readonly indexStreams = new Set<RawStream>();
  /** Transfer requests received (decoded), and each file of the fetch batches received. */
  readonly transferRequests: TransferRequest[] = [];
  private transferScript: TransferScript | undefined;
  private fetchContent: FetchContent | undefined;

  private constructor(readonly network: MeshNetwork) {}

  static async start(t: Teardown, meshKey: Uint8Array): Promise<HostilePeer> {
    const network = await createMeshNetwork({ meshKey, privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', mdns: false });
    const peer = new HostilePeer(network);
    await network.start();
    t.after(() => network.stop());
    await network.handle(INDEX_PROTOCOL, (stream) => void peer.serveIndex(stream), { maxInboundStreams: 64 });
    await network.handle(TRANSFER_PROTOCOL, (stream, connection) => void peer.serveTransfer(stream, connection.remotePeer.toString()), {
      maxInboundStreams: 1024,
    });
    await network.handle(FETCH_PROTOCOL, (stream, connection) => void peer.serveFetch(stream, connection.remotePeer.toString()), {
      maxInboundStreams: 1024,
    });
    return peer;
  }

  get peerId(): string {
    return this.network.peerId;
  }

  /**
   * Dials the victim (its /ip4/127.0.0.1/tcp/PORT/p2p/ID address), again for up to `ms` when it is
   * refused: libp2p accepts at most 5 inbound connections per second from one host.
   */
  async connect(address: string, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms;
    for (;;) {
      try {
        await this.network.libp2p.dial(multiaddr(address));
        return;
      } catch (error) {
        if (performance.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /** Opens a stream on the existing connection to `peerId`. */
  async open(peerId: string, protocol: string): Promise<RawStream> {
    // No limit of our own on streams: the victim's limits are what is tested.
    const stream = await this.network.libp2p.dialProtocol(peerIdFromString(peerId), protocol, { signal: AbortSignal.timeout(10_000), maxOutboundStreams: 100_000 });
    return new RawStream(stream);
  }

  /** Index streams the victim has open to this peer (it follows this peer's index on each). */
  get followers(): number {
    return this.indexStreams.size;
  }

  /** Sends one more batch on every open index stream. */
  async push(batch: Uint8Array): Promise<void> {
    for (const io of this.indexStreams) await io.send(framed(batch));
  }

  /** Answers transfer requests with `script` (default: refuse nothing, send nothing, hang up). */
  onTransfer(script: TransferScript): void {
    this.transferScript = script;
  }

  /** Answers each file of a fetch batch with `content` (OK, uncompressed; default: hang up). */
  onFetch(content: FetchContent): void {
    this.fetchContent = content;
  }

  private async serveIndex(stream: Stream): Promise<void> {
    const io = new RawStream(stream);
    try {
      decodeIndexRequest(await expectMessage(io.reader, 64, 'the index request'));
      this.indexStreams.add(io);
      if (this.indexRawBytes !== undefined) await io.send(this.indexRawBytes);
      else for (const batch of this.indexBatches) await io.send(framed(batch));
      // The victim closed its side after the request; ours stays open for push() until it hangs up.
      if (stream.status === 'open') await new Promise((resolve) => stream.addEventListener('close', resolve, { once: true }));
    } catch {
      // The victim hung up on us: expected.
    } finally {
      this.indexStreams.delete(io);
    }
  }

  private async serveFetch(stream: Stream, from: string): Promise<void> {
    const io = new RawStream(stream);
    try {
      const requests = decodeFetchRequest(await expectMessage(io.reader, MAX_FETCH_REQUEST_BYTES, 'the fetch request'));
      this.transferRequests.push(...requests);
      if (this.fetchContent === undefined) throw new Error('no fetch script');
      for (const request of requests) {
        await io.writer.writeMessage(encodeFetchReply({ status: 'OK', content: await this.fetchContent(request, from), compressed: false }));
      }
      await io.writer.end();
    } catch {
      stream.abort(new Error('hostile peer: done'));
    }
  }

  private async serveTransfer(stream: Stream, from: string): Promise<void> {
    const io = new RawStream(stream);
    try {
      const request = decodeTransferRequest(await expectMessage(io.reader, 64 * 1024, 'the transfer request'));
      this.transferRequests.push(request);
      if (this.transferScript === undefined) stream.abort(new Error('hostile peer: no transfer script'));
      else await this.transferScript(io, request, from);
    } catch {
      stream.abort(new Error('hostile peer: done'));
    }
  }
}

/** A transfer script that serves `content` as an honest server would: OK, then a real delta of it against the victim's signature. */
export function serveBytes(content: (request: TransferRequest, peer: string) => Uint8Array | Promise<Uint8Array>): TransferScript {
  return async (io, request, peer) => {
    await io.writer.writeMessage(encodeTransferResponse({ status: 'OK', message: '' }));
    const signature = await decodeSignature(readChunks(io.reader, 'the signature'));
    await io.reader.expectEnd('the signature');
    await writeChunks(io.writer, encodeDelta(signature, oneChunk(await content(request, peer))));
    await io.writer.end();
  };
}

async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A real MeshNode on loopback (no mDNS, no control socket), with its events. */
export interface Victim {
  readonly node: MeshNode;
  readonly root: string;
  readonly meshKey: Uint8Array;
  /** /ip4/127.0.0.1/tcp/PORT/p2p/ID */
  readonly address: string;
  readonly events: MeshNodeEvent[];
  /** The 'error' events' messages (what the log prints). */
  errors(peer?: string): string[];
}

/** A fresh directory holding `folder` (the synced folder) and `outside` (must never be touched); removed when the test ends. */
export async function sandbox(t: Teardown): Promise<{ base: string; folder: string; outside: string }> {
  const base = await mkdtemp(join(tmpdir(), 'mesh-hostile-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(base, 'folder'));
  await mkdir(join(base, 'outside'));
  return { base, folder: join(base, 'folder'), outside: join(base, 'outside') };
}

export async function startVictim(t: Teardown, dir: string, meshKey?: Uint8Array, init: Partial<MeshNodeInit> = {}): Promise<Victim> {
  const key = meshKey ?? parseMeshKey(generateMeshKey());
  const events: MeshNodeEvent[] = [];
  const node = await MeshNode.open({
    dir,
    key: formatMeshKey(key),
    env: {},
    host: '127.0.0.1',
    port: 0,
    mdns: false,
    control: false,
    ...init,
    onEvent: (event) => events.push(event),
  });
  t.after(() => node.stop());
  await node.start();
  const address = node.network.listenAddresses[0];
  return {
    node,
    root: node.root,
    meshKey: key,
    address,
    events,
    errors: (peer) => events.flatMap((e) => (e.kind === 'error' && (peer === undefined || e.peer === peer) ? [e.message] : [])),
  };
}

/** Waits until `victim` has banned `peer`: said so in its log, and no connection left. */
export async function waitForBan(victim: Victim, peer: string, ms = 20_000): Promise<void> {
  await eventually(
    () => victim.errors(peer).some((m) => m.includes('disconnected for')) && !victim.node.network.isConnected(peer),
    ms,
    `the victim to ban ${peer}`,
  );
}
