import './protocol-helpers.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliCompressSync } from 'node:zlib';
import type { Libp2p, Stream } from '@libp2p/interface';
import { FETCH_PROTOCOL, MAX_FETCH_FILE_BYTES, MAX_FETCH_FILES, MAX_FETCH_REQUEST_BYTES } from '../src/protocol/constants.js';
import { ProtocolError, StreamEndedError } from '../src/protocol/errors.js';
import { fetchFiles, type ExpectedFile, type FetchedFile, type FetchItem, type FetchResolution } from '../src/protocol/fetch.js';
import { decodeFetchRequest, encodeFetchReply, encodeFetchRequest, type TransferRequest } from '../src/protocol/messages-codec.js';
import { FetchRequest as WireFetchRequest } from '../src/protocol/messages.js';
import { expectMessage, StreamReader, StreamWriter } from '../src/protocol/streams.js';
import { TransferServer } from '../src/protocol/transfer.js';
import { encodeVarint } from '../src/protocol/varint.js';
import { compare, type VersionVector } from '../src/store/version-vector.js';
import { DEVICE_A, DEVICE_B, eventually, startNode } from './protocol-helpers.js';

interface Shared {
  file: string;
  version: VersionVector;
  contentHash: Uint8Array;
  size: number;
}

const hashOf = (bytes: Uint8Array) => new Uint8Array(createHash('sha256').update(bytes).digest());
const V1: VersionVector = [{ device: DEVICE_A, value: 1 }];

async function collect(files: AsyncIterable<FetchedFile>): Promise<FetchedFile[]> {
  const out: FetchedFile[] = [];
  for await (const file of files) out.push(file);
  return out;
}

function contentOf(file: FetchedFile | undefined): Buffer {
  assert.equal(file?.status, 'OK');
  return Buffer.from((file as { content: Uint8Array }).content);
}

describe('fetch', () => {
  let server: Libp2p;
  let client: Libp2p;
  let dir: string;
  const shared = new Map<string, Shared>();
  const serverErrors: Error[] = [];
  /** What the disk must still show for a path to be served (as the node's records say). */
  const expectations = new Map<string, ExpectedFile>();
  const teardown: (() => unknown)[] = [];
  const suite = { after: (fn: () => unknown) => teardown.push(fn) };
  after(async () => {
    for (const fn of teardown.reverse()) await fn();
  });

  /** The node's index: only exact versions of shared paths are served, checked against the file's metadata on open. */
  async function resolveMany(requests: readonly TransferRequest[]): Promise<FetchResolution[]> {
    return requests.map((request) => {
      const entry = shared.get(request.path);
      if (entry === undefined) return { status: 'NOT_FOUND', message: 'no such path' };
      if (compare(entry.version, request.version) !== 'equal' || !Buffer.from(entry.contentHash).equals(request.contentHash)) {
        return { status: 'CHANGED', message: 'the version differs' };
      }
      const expect = expectations.get(request.path);
      return expect === undefined ? { path: entry.file } : { path: entry.file, expect };
    });
  }

  async function share(path: string, bytes: Uint8Array, version: VersionVector = V1): Promise<FetchItem> {
    const file = join(dir, 'served', path.replaceAll('/', '_'));
    await writeFile(file, bytes);
    const contentHash = hashOf(bytes);
    shared.set(path, { file, version, contentHash, size: bytes.length });
    return { request: { path, version, contentHash }, size: bytes.length };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-fetch-'));
    await mkdir(join(dir, 'served'));
    server = await startNode(suite);
    client = await startNode(suite);
    const transfers = new TransferServer({
      libp2p: server,
      resolve: () => Promise.reject(new Error('fetch must use resolveMany')),
      resolveMany,
      maxActive: 2,
      onError: (_peer, error) => serverErrors.push(error),
    });
    await transfers.start();
    suite.after(() => transfers.stop());
    await client.dial(server.getMultiaddrs()[0]);
  });
  suite.after(() => rm(dir, { recursive: true, force: true }));

  it('sends many files on one stream, in the order asked, compressible ones compressed', async () => {
    const items: FetchItem[] = [];
    const bytes: Buffer[] = [];
    for (let k = 0; k < 200; k++) {
      const content = k % 2 === 0 ? randomBytes(1024 + k * 10) : Buffer.from(`line ${k}\n`.repeat(200));
      bytes.push(content);
      items.push(await share(`many/f${k}.bin`, content));
    }
    const streamsBefore = client.getConnections(server.peerId).flatMap((c) => c.streams).length;
    const files = await collect(fetchFiles(client, server.peerId, items));
    assert.equal(files.length, 200);
    files.forEach((file, k) => assert.ok(contentOf(file).equals(bytes[k]), `file ${k}`));
    assert.ok(client.getConnections(server.peerId).flatMap((c) => c.streams).length <= streamsBefore, 'the stream is closed');
  });

  it('answers a path not in the index NOT_FOUND, another version CHANGED, and serves the rest', async () => {
    const good = await share('docs/good.txt', Buffer.from('good'));
    const stale: FetchItem = { ...good, request: { ...good.request, version: [{ device: DEVICE_B, value: 9 }] } };
    const unknown: FetchItem = { request: { path: 'docs/secret.txt', version: V1, contentHash: new Uint8Array(32) }, size: 10 };
    const outside: FetchItem = { request: { path: 'x/../../etc/passwd', version: V1, contentHash: new Uint8Array(32) }, size: 10 };
    assert.throws(() => encodeFetchRequest([outside.request]), RangeError, 'the client never sends a hostile path');
    const files = await collect(fetchFiles(client, server.peerId, [unknown, good, stale]));
    assert.deepEqual(
      files.map((f) => f.status),
      ['NOT_FOUND', 'OK', 'CHANGED'],
    );
    assert.equal(contentOf(files[1]).toString(), 'good');
  });

  it('answers CHANGED for a file whose metadata no longer matches its record, and for one gone', async () => {
    const item = await share('docs/changing.txt', Buffer.from('version 1'));
    const entry = shared.get('docs/changing.txt')!;
    const stats = await stat(entry.file, { bigint: true });
    expectations.set('docs/changing.txt', { size: entry.size, mtimeNs: stats.mtimeNs, inode: stats.ino });
    assert.equal((await collect(fetchFiles(client, server.peerId, [item])))[0].status, 'OK');
    await writeFile(entry.file, 'version 2');
    await utimes(entry.file, new Date(2000, 1, 1), new Date(2000, 1, 1));
    const [changed] = await collect(fetchFiles(client, server.peerId, [item]));
    assert.equal(changed.status, 'CHANGED');
    await rm(entry.file);
    const [gone] = await collect(fetchFiles(client, server.peerId, [item]));
    assert.equal(gone.status, 'CHANGED');
  });

  it('answers every file BUSY beyond its active transfers', async () => {
    // More than the stream window and the server's write buffer hold: a reader that stops holds its slot.
    const items = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((k) => share(`busy/${k}.bin`, randomBytes(MAX_FETCH_FILE_BYTES))));
    // Two fetches that read one file and then stop reading hold both of the server's slots.
    const holders = [0, 1].map(() => fetchFiles(client, server.peerId, items)[Symbol.asyncIterator]());
    for (const holder of holders) {
      const first: IteratorResult<FetchedFile> = await holder.next();
      assert.equal(first.done === true ? undefined : first.value.status, 'OK');
    }
    const files = await collect(fetchFiles(client, server.peerId, items));
    assert.deepEqual(
      files.map((f) => f.status),
      items.map(() => 'BUSY'),
    );
    for (const holder of holders) await holder.return(undefined);
    await eventually(async () => (await collect(fetchFiles(client, server.peerId, items.slice(0, 1))))[0].status === 'OK', 5000, 'the slots to be freed');
  });

  it('refuses at the client what it must never send: no file, too many, a request over its limit', async () => {
    const item = await share('limits/one', Buffer.from('1'));
    await assert.rejects(collect(fetchFiles(client, server.peerId, Array.from({ length: MAX_FETCH_FILES + 1 }, () => item))), RangeError);
    assert.throws(() => encodeFetchRequest([]), RangeError);
    assert.deepEqual(await collect(fetchFiles(client, server.peerId, [])), []);
  });

  describe('a server facing a hostile client', () => {
    /** Opens a fetch stream, sends `bytes` (and closes), and returns what the server reported. */
    async function send(bytes: Uint8Array): Promise<Error | undefined> {
      const before = serverErrors.length;
      const stream = await client.dialProtocol(server.peerId, FETCH_PROTOCOL);
      const writer = new StreamWriter(stream);
      await writer.write(bytes);
      await writer.end().catch(() => undefined);
      const reader = new StreamReader(stream);
      await reader.next().catch(() => undefined);
      await eventually(() => serverErrors.length > before, 5000, 'the server to report the stream');
      return serverErrors[before];
    }
    const message = (bytes: Uint8Array) => Uint8Array.from([...encodeVarint(bytes.length), ...bytes]);
    const wireRequest = (files: { path: string }[]) => message(WireFetchRequest.encode({ files: files.map((f) => ({ path: f.path, version: [{ device: Buffer.from(DEVICE_A, 'hex'), value: 1 }], contentHash: new Uint8Array(32), fineRound: false, contentChecked: false })) }));

    it('refuses a request longer than its limit before reading it', async () => {
      const error = await send(Uint8Array.from(encodeVarint(MAX_FETCH_REQUEST_BYTES + 1)));
      assert.ok(error instanceof ProtocolError && /longer than/.test(error.message), String(error));
    });

    it('refuses garbage, a request for no file, too many files, hostile paths and a request cut short', async () => {
      for (const bytes of [
        message(randomBytes(100)),
        message(new Uint8Array(0)),
        wireRequest(Array.from({ length: MAX_FETCH_FILES + 1 }, (_, k) => ({ path: `f${k}` }))),
        wireRequest([{ path: 'ok' }, { path: '../outside' }]),
        wireRequest([{ path: '/etc/passwd' }]),
      ]) {
        const error = await send(bytes);
        assert.ok(error instanceof ProtocolError, String(error));
      }
      // Cut short: what a client that stops sends too, so the stream's end, not the peer's fault.
      const truncated = await send(wireRequest([{ path: '.mesh/index/CURRENT' }]).subarray(0, 5));
      assert.ok(truncated instanceof StreamEndedError, String(truncated));
    });

    it('goes on serving afterwards', async () => {
      const item = await share('after/hostile.txt', Buffer.from('still here'));
      const [file] = await collect(fetchFiles(client, server.peerId, [item]));
      assert.equal(contentOf(file).toString(), 'still here');
    });
  });

  describe('a client facing a hostile server', () => {
    let hostile: Libp2p;
    let behaviour: (stream: Stream, requests: TransferRequest[]) => Promise<void>;
    let dying: Stream | undefined;
    const item: FetchItem = { request: { path: 'x', version: V1, contentHash: new Uint8Array(32) }, size: 100 };

    before(async () => {
      hostile = await startNode(suite);
      await hostile.handle(FETCH_PROTOCOL, async (stream) => {
        const reader = new StreamReader(stream);
        const requests = decodeFetchRequest(await expectMessage(reader, MAX_FETCH_REQUEST_BYTES, 'request'));
        await behaviour(stream, requests).catch(() => undefined);
      });
      await client.dial(hostile.getMultiaddrs()[0]);
    });

    async function fetchWith(answer: (writer: StreamWriter, requests: TransferRequest[]) => Promise<void>, items = [item], close = true): Promise<{ files: FetchedFile[]; error?: unknown }> {
      behaviour = async (stream, requests) => {
        dying = stream;
        const writer = new StreamWriter(stream);
        await answer(writer, requests);
        if (close) await writer.end();
      };
      const files: FetchedFile[] = [];
      try {
        for await (const file of fetchFiles(client, hostile.peerId, items, { idleTimeout: 1000 })) files.push(file);
      } catch (error) {
        return { files, error };
      }
      return { files };
    }

    it('refuses a reply longer than its limit before reading it', async () => {
      const { error } = await fetchWith((writer) => writer.write(Uint8Array.from(encodeVarint(MAX_FETCH_FILE_BYTES + 64 * 1024))));
      assert.ok(error instanceof ProtocolError && /longer than/.test(error.message), String(error));
    });

    it('refuses garbage, a file larger than asked, a refusal with content, and more replies than files', async () => {
      const answers: ((writer: StreamWriter) => Promise<void>)[] = [
        // Garbage that never parses (random bytes sometimes make a valid reply): a length past the end.
        (writer) => writer.writeMessage(Uint8Array.of(0x0a, 0xc8, 0x01, 0x00)),
        (writer) => writer.writeMessage(encodeFetchReply({ status: 'OK', content: randomBytes(101), compressed: false })),
        // Not brotli (random bytes decode as an empty brotli stream about one time in 30; these never do).
        (writer) => writer.writeMessage(encodeFetchReply({ status: 'OK', content: new Uint8Array(50).fill(0xff), compressed: true })),
        // Real brotli that inflates past the file's size.
        (writer) => writer.writeMessage(encodeFetchReply({ status: 'OK', content: brotliCompressSync(randomBytes(200)), compressed: true })),
        async (writer) => {
          await writer.writeMessage(encodeFetchReply({ status: 'OK', content: randomBytes(100), compressed: false }));
          await writer.writeMessage(encodeFetchReply({ status: 'NOT_FOUND', message: 'extra' }));
        },
      ];
      for (const answer of answers) {
        const { error } = await fetchWith(answer);
        assert.ok(error instanceof ProtocolError, String(error));
      }
    });

    it('a server that dies part way: the files before it are yielded, then StreamEndedError', async () => {
      const items = [item, { ...item, request: { ...item.request, path: 'y' } }, { ...item, request: { ...item.request, path: 'z' } }];
      const { files, error } = await fetchWith(
        async (writer) => {
          await writer.writeMessage(encodeFetchReply({ status: 'OK', content: randomBytes(100), compressed: false }));
          dying?.abort(new Error('dies'));
        },
        items,
      );
      assert.equal(files.length, 1);
      assert.ok(error instanceof ProtocolError || error instanceof StreamEndedError, String(error));
    });

    it('gives up on a server that stalls, after the idle timeout', async () => {
      const started = performance.now();
      const { error } = await fetchWith(async () => undefined, [item], false);
      assert.ok(error instanceof Error && error.name === 'StreamTimeoutError', String(error));
      assert.ok(performance.now() - started < 3000);
    });
  });
});
