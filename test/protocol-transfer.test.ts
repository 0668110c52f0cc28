import './protocol-helpers.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliCompressSync, constants as zlib } from 'node:zlib';
import type { Libp2p, Stream } from '@libp2p/interface';
import { applyDelta, collect as collectBytes, encodeSignature, rebuild, signatureOptionsFor, STRONG_HASH_FULL_LENGTH, type RebuildAttempt } from '../src/delta/index.js';
import { TRANSFER_PROTOCOL } from '../src/protocol/constants.js';
import {
  ProtocolError,
  StreamEndedError,
  TransferBusyError,
  TransferChangedError,
  TransferNotFoundError,
} from '../src/protocol/errors.js';
import { decodeTransferRequest, encodeTransferResponse, type TransferRequest } from '../src/protocol/messages-codec.js';
import { CHUNK_BROTLI, expectMessage, StreamReader, StreamWriter } from '../src/protocol/streams.js';
import { fetchDelta, newFetchStats, TransferServer, type FetchStats, type Resolution, type ServedTransfer } from '../src/protocol/transfer.js';
import { encodeVarint } from '../src/protocol/varint.js';
import { compare, type VersionVector } from '../src/store/version-vector.js';
import { chunksOf, memoryBasis, writeChunks } from './helpers.js';
import { DEVICE_A, DEVICE_B, eventually, startNode } from './protocol-helpers.js';

const MiB = 1024 * 1024;

interface Shared {
  file: string;
  version: VersionVector;
  contentHash: Uint8Array;
}

const hashOf = (bytes: Uint8Array) => new Uint8Array(createHash('sha256').update(bytes).digest());

/** Deterministic text that compresses as source code or prose does (about 3x with brotli). */
function text(length: number): Buffer {
  const words = ['mesh', 'peer', 'folder', 'sync', 'version', 'vector', 'delta', 'block', 'hash', 'stream', 'record', 'index'];
  const out: string[] = [];
  let size = 0;
  let x = 12345;
  while (size < length) {
    x = (x * 1103515245 + 12345) >>> 0;
    const line = `${words[x % words.length]} ${x.toString(36)} ${words[(x >>> 8) % words.length]}\n`;
    out.push(line);
    size += line.length;
  }
  return Buffer.from(out.join('')).subarray(0, length);
}

describe('transfer', () => {
  let server: Libp2p;
  let client: Libp2p;
  let dir: string;
  const shared = new Map<string, Shared>();
  const served: ServedTransfer[] = [];
  const ended: { transfer: ServedTransfer; error?: Error }[] = [];
  const serverErrors: Error[] = [];
  /** Requests resolve() answers BUSY for, by path. */
  const busy = new Set<string>();
  // Teardown for what `before` makes: node:test's after() called inside a hook would run at once.
  const teardown: (() => unknown)[] = [];
  const suite = { after: (fn: () => unknown) => teardown.push(fn) };
  after(async () => {
    for (const fn of teardown.reverse()) await fn();
  });

  async function resolve(request: TransferRequest): Promise<Resolution> {
    if (busy.has(request.path)) return { status: 'BUSY', message: 'try later' };
    const entry = shared.get(request.path);
    if (entry === undefined) return { status: 'NOT_FOUND', message: 'no such path' };
    if (compare(entry.version, request.version) !== 'equal' || !Buffer.from(entry.contentHash).equals(request.contentHash)) {
      return { status: 'CHANGED', message: 'the version differs' };
    }
    return { path: entry.file };
  }

  async function share(path: string, bytes: Uint8Array, version: VersionVector = [{ device: DEVICE_A, value: 1 }]): Promise<TransferRequest> {
    const file = join(dir, 'served', path.replaceAll('/', '_'));
    await writeFile(file, bytes);
    const contentHash = hashOf(bytes);
    shared.set(path, { file, version, contentHash });
    return { path, version, contentHash };
  }

  /**
   * rebuild() of `request` from `basis` (or nothing) through fetchDelta; the rebuilt bytes and what
   * crossed. `fineRound`: offer the fine round, sending the patch's answers (or `answers` instead).
   */
  async function pull(
    request: TransferRequest,
    basis: Uint8Array | undefined,
    options: { fineRound?: boolean; answers?: AsyncIterable<Uint8Array>; contentCheckedByCaller?: boolean } = {},
  ) {
    const basisPath = basis === undefined ? undefined : join(dir, `basis-${Math.random()}`);
    if (basisPath !== undefined) await writeFile(basisPath, basis!);
    const out = join(dir, `out-${Math.random()}`);
    const stats: FetchStats[] = [];
    const contentChecked: boolean[] = [];
    const result = await rebuild({
      basisPath,
      contentCheckedByCaller: options.contentCheckedByCaller,
      exchange: (signature, _attempt: RebuildAttempt, answers, checked) => {
        const s = newFetchStats();
        stats.push(s);
        contentChecked.push(checked);
        const fine = options.fineRound === true ? { answers: options.answers ?? answers } : {};
        return fetchDelta(client, server.peerId, { ...request, contentChecked: checked }, signature, { stats: s, ...fine });
      },
      write: (chunks) => writeChunks(out, chunks),
    });
    return { rebuilt: await readFile(out), stats, result, contentChecked };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-transfer-'));
    await mkdir(join(dir, 'served'));
    server = await startNode(suite);
    client = await startNode(suite);
    const transfers = new TransferServer({
      libp2p: server,
      resolve,
      maxActive: 2,
      onTransferStart: (transfer) => served.push(transfer),
      onTransferEnd: (transfer, error) => ended.push({ transfer, error }),
      onError: (_peer, error) => serverErrors.push(error),
    });
    await transfers.start();
    suite.after(() => transfers.stop());
    await client.dial(server.getMultiaddrs()[0]);
  });

  suite.after(() => rm(dir, { recursive: true, force: true }));

  it('rebuilds a 16 MiB file with a small edit, only about the edited bytes crossing', async (t) => {
    const old = randomBytes(16 * MiB);
    const edited = Buffer.concat([old.subarray(0, 5 * MiB), randomBytes(1000), old.subarray(5 * MiB + 1000, 10 * MiB), randomBytes(100), old.subarray(10 * MiB)]);
    const request = await share('data/big.bin', edited);
    const { rebuilt, stats, result } = await pull(request, old);
    assert.ok(rebuilt.equals(edited), 'the rebuilt file is the new version');
    assert.deepEqual(result.attempts, ['truncated']);
    const [{ bytesReceived, bytesSent }] = stats;
    t.diagnostic(`16 MiB file: ${bytesReceived} bytes of delta received, ${bytesSent} bytes of signature sent`);
    assert.ok(bytesReceived < 0.05 * edited.length, `${bytesReceived} bytes received`);
    assert.ok(bytesReceived < 64 * 1024, `${bytesReceived} bytes received`);
  });

  it('leaves the file hash out of a delta without a basis only for a client that checks the content itself', async () => {
    const bytes = randomBytes(300_000);
    const request = await share('data/new.bin', bytes);
    const deltaFor = async (contentChecked: boolean, basis: Uint8Array) =>
      Buffer.from(await collectBytes(fetchDelta(client, server.peerId, { ...request, contentChecked }, encodeSignature(chunksOf(basis), signatureOptionsFor(basis.length)))));
    const rebuilt = async (delta: Uint8Array, basis: Uint8Array, contentCheckedByCaller: boolean) =>
      Buffer.from(await collectBytes(applyDelta(memoryBasis(basis), chunksOf(delta), { contentCheckedByCaller })));
    const zeros = Buffer.alloc(STRONG_HASH_FULL_LENGTH);
    const fileHashOf = (delta: Buffer) => delta.subarray(delta.length - STRONG_HASH_FULL_LENGTH);
    const empty = new Uint8Array(0);
    // An older node does not say it checks the content: it gets the hash, and its patch checks it.
    const older = await deltaFor(false, empty);
    assert.ok(!fileHashOf(older).equals(zeros));
    assert.ok((await rebuilt(older, empty, false)).equals(bytes));
    // A mesh puller checks every byte's SHA-256 against the record: the sender spares the hash.
    const checked = await deltaFor(true, empty);
    assert.ok(fileHashOf(checked).equals(zeros));
    assert.ok((await rebuilt(checked, empty, true)).equals(bytes));
    // With a basis, blocks may match falsely: the hash is always sent, and checked.
    const basis = bytes.subarray(0, 200_000);
    assert.ok((await rebuilt(await deltaFor(true, basis), basis, true)).equals(bytes));
  });

  it("asks the sender to spare the file hash exactly when rebuild's caller checks the content, and rebuilds either way", async () => {
    const bytes = randomBytes(300_000);
    const request = await share('data/flagged.bin', bytes);
    const basis = bytes.subarray(0, 200_000);
    for (const contentCheckedByCaller of [false, true]) {
      for (const from of [undefined, basis]) {
        const pulled = await pull(request, from, { contentCheckedByCaller });
        assert.ok(pulled.rebuilt.equals(bytes), `rebuilt (caller checks: ${contentCheckedByCaller}, basis: ${from !== undefined})`);
        assert.deepEqual(pulled.contentChecked, [contentCheckedByCaller]);
        assert.deepEqual(pulled.result.attempts, [from === undefined ? 'whole' : 'truncated']);
      }
    }
  });

  it('in the fine round, a scattered edit crosses as about the bytes changed, not the blocks they touch', async (t) => {
    const old = randomBytes(32 * MiB);
    const edited = Buffer.from(old);
    for (let i = 0; i < 32; i++) randomBytes(10 * 1024).copy(edited, i * MiB + 4321 * (i + 1));
    const changed = 32 * 10 * 1024;
    const request = await share('data/scattered.bin', edited);
    const plain = await pull(request, old);
    const fine = await pull(request, old, { fineRound: true });
    assert.ok(fine.rebuilt.equals(edited), 'the rebuilt file is the new version');
    assert.deepEqual(fine.result.attempts, ['truncated']);
    const crossed = (stats: FetchStats[]) => stats[0].bytesReceived + stats[0].bytesSent;
    t.diagnostic(`32 MiB, 32 x 10 KiB: ${crossed(plain.stats)} bytes both ways without the fine round, ${crossed(fine.stats)} with it`);
    assert.ok(crossed(fine.stats) < 1.3 * changed, `${crossed(fine.stats)} bytes for ${changed} changed`);
    assert.ok(crossed(plain.stats) > 1.5 * changed);
  });

  it('ends the transfer of a client whose fine-round answers are short, and cuts off one that sends more than was asked', async () => {
    const old = randomBytes(8 * MiB);
    const edited = Buffer.from(old);
    randomBytes(10 * 1024).copy(edited, 3 * MiB);
    const request = await share('data/answers.bin', edited);
    const endedBefore = ended.length;
    async function* short() {
      yield Uint8Array.of(1, 2, 3);
    }
    await assert.rejects(pull(request, old, { fineRound: true, answers: short() }), StreamEndedError);
    async function* tooMuch() {
      yield randomBytes(64 * 1024);
    }
    // The delta may be complete before the server sees the rest: what matters is that it refuses it.
    await pull(request, old, { fineRound: true, answers: tooMuch() }).catch(() => undefined);
    await eventually(() => ended.length >= endedBefore + 2, 5000, 'both transfers to end');
    const errors = ended.slice(endedBefore).map((e) => e.error);
    // In either order (the servers' sides end independently). Short answers and then the end: what
    // a client that stops or loses its connection sends too; more than was asked: a broken protocol.
    const cutShort = errors.find((error) => /answer to the fine round/.test(String(error?.message)));
    const extra = errors.find((error) => /unexpected bytes after the answers to the fine round/.test(String(error?.message)));
    assert.ok(cutShort instanceof StreamEndedError, errors.map((e) => String(e)).join('; '));
    assert.ok(extra instanceof ProtocolError, errors.map((e) => String(e)).join('; '));
    assert.ok((await pull(request, old, { fineRound: true })).rebuilt.equals(edited), 'and it goes on serving');
  });

  it('sends compressible literal data compressed and incompressible data raw', async (t) => {
    const prose = text(4 * MiB);
    const { rebuilt, stats } = await pull(await share('docs/prose.txt', prose), undefined);
    assert.ok(rebuilt.equals(prose));
    t.diagnostic(`4 MiB of text, no basis: ${stats[0].bytesReceived} bytes received, ${stats[0].chunks.compressedChunks} chunks compressed`);
    assert.ok(stats[0].bytesReceived < 0.5 * prose.length, `${stats[0].bytesReceived} bytes for ${prose.length}`);
    assert.equal(stats[0].chunks.rawChunks, 0);

    const noise = randomBytes(4 * MiB);
    const raw = await pull(await share('docs/noise.bin', noise), undefined);
    assert.ok(raw.rebuilt.equals(noise));
    assert.equal(raw.stats[0].chunks.compressedChunks, 0);
    assert.ok(raw.stats[0].bytesReceived >= noise.length && raw.stats[0].bytesReceived < noise.length * 1.01);
  });

  it('refuses a path it does not serve (NOT_FOUND), another version (CHANGED) and when busy (BUSY)', async () => {
    const request = await share('docs/served.txt', text(10_000), [{ device: DEVICE_A, value: 2 }]);
    await assert.rejects(pull({ ...request, path: 'docs/missing.txt' }, undefined), TransferNotFoundError);
    await assert.rejects(pull({ ...request, version: [{ device: DEVICE_A, value: 1 }] }, undefined), TransferChangedError);
    await assert.rejects(pull({ ...request, contentHash: new Uint8Array(32) }, undefined), TransferChangedError);
    await assert.rejects(pull({ ...request, version: [{ device: DEVICE_A, value: 2 }, { device: DEVICE_B, value: 1 }] }, undefined), TransferChangedError);
    busy.add(request.path);
    await assert.rejects(pull(request, undefined), (error: Error) => error instanceof TransferBusyError && /try later/.test(error.message));
    busy.delete(request.path);
    // A refusal while the client is still sending its signature: it reads the answer, not a reset.
    async function* endless() {
      for (;;) {
        yield randomBytes(64 * 1024);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    await assert.rejects(collect(fetchDelta(client, server.peerId, { ...request, path: 'docs/missing.txt' }, endless())), TransferNotFoundError);
    // And the server still serves.
    assert.ok((await pull(request, undefined)).rebuilt.equals(await readFile(shared.get(request.path)!.file)));
  });

  it('answers BUSY beyond its active transfers, and frees a transfer the client abandons', async () => {
    const request = await share('data/busy.bin', randomBytes(8 * MiB));
    const started = served.length;
    const holders = [0, 1].map(() => fetchDelta(client, server.peerId, request, emptySignature())[Symbol.asyncIterator]());
    // Each takes one chunk and then stops reading: two transfers held open.
    for (const holder of holders) await holder.next();
    await assert.rejects(pull(request, undefined), TransferBusyError);
    for (const holder of holders) await holder.return(undefined);
    await eventually(() => ended.filter((e) => served.indexOf(e.transfer) >= started).length === 2, 5000, 'the abandoned transfers to end');
    assert.ok(ended.slice(-2).every((e) => e.error !== undefined));
    assert.ok((await pull(request, undefined)).rebuilt.length === 8 * MiB);
  });

  it('answers BUSY to a peer holding its share of transfers, and goes on serving another peer', async (t) => {
    const request = await share('data/greedy.bin', randomBytes(8 * MiB));
    const fair = await startNode(t);
    const transfers = new TransferServer({ libp2p: fair, resolve, maxActive: 4, maxActivePerPeer: 2 });
    await transfers.start();
    t.after(() => transfers.stop());
    const greedy = await startNode(t);
    const honest = await startNode(t);
    await greedy.dial(fair.getMultiaddrs()[0]);
    await honest.dial(fair.getMultiaddrs()[0]);
    // The greedy peer holds two transfers open without reading past their first chunk.
    const holders = [0, 1].map(() => fetchDelta(greedy, fair.peerId, request, emptySignature())[Symbol.asyncIterator]());
    for (const holder of holders) await holder.next();
    await assert.rejects(collect(fetchDelta(greedy, fair.peerId, request, emptySignature())), TransferBusyError);
    const received = await collect(fetchDelta(honest, fair.peerId, request, emptySignature()));
    assert.ok(received >= 8 * MiB, `the other peer is served in full (${received} bytes)`);
    for (const holder of holders) await holder.return(undefined);
  });

  it('aborts on a hostile signature without crashing, and goes on serving', async () => {
    const request = await share('docs/hostile.txt', text(100_000));
    const errorsBefore = serverErrors.length;
    async function* garbage() {
      yield randomBytes(5000);
    }
    await assert.rejects(collect(fetchDelta(client, server.peerId, request, garbage())), StreamEndedError);
    async function* claimsAMillionBlocks() {
      // A valid header (block length 4096, strong length 8), then a chunk claiming 2^32 - 1 records.
      yield Uint8Array.from([0x4d, 0x53, 0x49, 0x47, 1, 8, 0, 0, 0, 0, 0x10, 0, ...new Uint8Array(8), 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    }
    await assert.rejects(collect(fetchDelta(client, server.peerId, request, claimsAMillionBlocks())), StreamEndedError);
    await eventually(() => serverErrors.length === errorsBefore + 2, 2000, 'the server to report both');
    for (const error of serverErrors.slice(errorsBefore)) {
      assert.ok(error instanceof ProtocolError, `${error.name}: ${error.message}`);
      assert.match(error.message, /malformed signature/);
    }
    assert.ok((await pull(request, undefined)).rebuilt.equals(text(100_000)));
  });

  it('takes at most 8 transfer streams per connection: a 9th is reset', async () => {
    // Streams that never send their request hold their slot until the idle timeout.
    const streams = await Promise.all(Array.from({ length: 8 }, () => client.dialProtocol(server.peerId, TRANSFER_PROTOCOL)));
    const ninth = await client.dialProtocol(server.peerId, TRANSFER_PROTOCOL);
    await assert.rejects(new StreamReader(ninth).next(), StreamEndedError);
    for (const stream of streams) stream.abort(new Error('done'));
    const open = () => server.getConnections(client.peerId).flatMap((c) => c.streams).filter((s) => s.protocol === TRANSFER_PROTOCOL);
    await eventually(() => open().length === 0, 5000, 'the server to see the streams go');
  });

  it('reports a failure to read the basis as that failure, not as a broken stream', async () => {
    const request = await share('docs/eio.txt', text(10_000));
    async function* failing() {
      yield* emptySignature();
      throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    }
    await assert.rejects(collect(fetchDelta(client, server.peerId, request, failing())), { code: 'EIO' });
  });

  it('bounds memory when the client reads slowly: the server waits instead of buffering a 64 MiB delta', async (t) => {
    const size = 64 * MiB;
    const request = await share('data/huge.bin', randomBytes(size));
    const startedBefore = served.length;
    const stats = newFetchStats();
    let consumed = 0;
    let maxAhead = 0;
    let chunks = 0;
    for await (const chunk of fetchDelta(client, server.peerId, request, emptySignature(), { stats })) {
      consumed += chunk.length;
      const transfer = served[startedBefore];
      // What the server produced that the client has not consumed: in the stream's buffers and windows.
      if (transfer !== undefined) maxAhead = Math.max(maxAhead, transfer.writer.bytesWritten - consumed);
      if (++chunks % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 15));
    }
    const transfer = served[startedBefore];
    t.diagnostic(
      `64 MiB delta read slowly: server at most ${(maxAhead / MiB).toFixed(2)} MiB ahead of the consumer, ` +
        `its write buffer peaked at ${(transfer.writer.peakBuffered / MiB).toFixed(2)} MiB, the client's queue at ${(stats.peakQueued / MiB).toFixed(2)} MiB`,
    );
    assert.ok(consumed > size);
    assert.ok(transfer.writer.peakBuffered <= 1.5 * MiB, `write buffer peaked at ${transfer.writer.peakBuffered}`);
    assert.ok(stats.peakQueued <= 4 * MiB, `client queue peaked at ${stats.peakQueued}`);
    assert.ok(maxAhead <= 8 * MiB, `server ran ${maxAhead} bytes ahead`);
  });

  describe('a client facing a hostile server', () => {
    let hostile: Libp2p;
    let behaviour: (stream: Stream) => Promise<void>;
    const request: TransferRequest = { path: 'x', version: [{ device: DEVICE_A, value: 1 }], contentHash: new Uint8Array(32) };

    before(async () => {
      hostile = await startNode(suite);
      await hostile.handle(TRANSFER_PROTOCOL, async (stream) => {
        const reader = new StreamReader(stream);
        decodeTransferRequest(await expectMessage(reader, 65536, 'request'));
        await behaviour(stream).catch(() => undefined);
      });
      await client.dial(hostile.getMultiaddrs()[0]);
    });

    /** Makes the hostile server answer OK and then send `bytes` raw, and returns what fetchDelta throws. */
    async function fetchAfter(bytes: Uint8Array, close = true): Promise<unknown> {
      behaviour = async (stream) => {
        const writer = new StreamWriter(stream);
        await writer.writeMessage(encodeTransferResponse({ status: 'OK', message: '' }));
        await writer.write(bytes);
        if (close) await writer.end();
      };
      try {
        await collect(fetchDelta(client, hostile.peerId, request, emptySignature(), { idleTimeout: 1000 }));
      } catch (error) {
        return error;
      }
      return undefined;
    }

    const frame = (flag: number, payload: Uint8Array) => Uint8Array.from([...encodeVarint(payload.length + 1), flag, ...payload]);

    it('refuses a chunk longer than 1 MiB before reading it', async () => {
      const error = await fetchAfter(Uint8Array.from([...encodeVarint(64 * MiB), 0]));
      assert.ok(error instanceof ProtocolError && /longer than/.test(error.message), String(error));
    });

    it('refuses a decompression bomb', async () => {
      const bomb = brotliCompressSync(new Uint8Array(10 * MiB), { params: { [zlib.BROTLI_PARAM_QUALITY]: 1 } });
      const error = await fetchAfter(Uint8Array.from([...frame(CHUNK_BROTLI, bomb), 0]));
      assert.ok(error instanceof ProtocolError && /compressed chunk/.test(error.message), String(error));
    });

    it('refuses garbage brotli data and unknown flags', async () => {
      // Not brotli: random bytes decode as an empty brotli stream about one time in 30; these never do.
      for (const bytes of [frame(CHUNK_BROTLI, new Uint8Array(100).fill(0xff)), frame(7, randomBytes(10))]) {
        const error = await fetchAfter(bytes);
        assert.ok(error instanceof ProtocolError, String(error));
      }
    });

    it('fails a delta whose stream ends before its end marker, without blaming the peer (it may have stopped)', async () => {
      for (const bytes of [frame(0, randomBytes(10)), Uint8Array.of(0x85)]) {
        const error = await fetchAfter(bytes);
        assert.ok(error instanceof StreamEndedError, String(error));
      }
    });

    it('a delta that is no delta is the delta engine\'s MalformedDeltaError', async () => {
      const error = await fetchAfter(Uint8Array.from([...frame(0, randomBytes(100)), 0]));
      assert.equal(error, undefined, 'fetchDelta only carries bytes');
      const rebuilt = rebuild({
        basisPath: undefined,
        exchange: (signature) => fetchDelta(client, hostile.peerId, request, signature),
        write: async (chunks) => {
          await collect(chunks);
        },
      });
      await assert.rejects(rebuilt, { name: 'MalformedDeltaError' });
    });

    it('gives up on a server that stalls, after the idle timeout', async () => {
      const started = performance.now();
      const error = await fetchAfter(frame(0, randomBytes(10)), false);
      assert.ok(error instanceof Error && error.name === 'StreamTimeoutError', String(error));
      assert.ok(performance.now() - started < 3000);
    });
  });
});

/** The signature of an empty basis: the whole file comes back as literal data. */
function emptySignature(): AsyncGenerator<Uint8Array> {
  return encodeSignature((async function* () {})(), signatureOptionsFor(0));
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let length = 0;
  for await (const chunk of chunks) length += chunk.length;
  return length;
}
