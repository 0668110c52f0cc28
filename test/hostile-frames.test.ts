// A peer holding the mesh key sends broken frames and hostile requests on /mesh/index and
// /mesh/transfer to a real MeshNode on loopback. Broken input is refused with a typed error, the
// peer is disconnected and refused for a while, and nothing is served that is not shared; the
// node goes on serving an honest peer.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { INDEX_PROTOCOL, TRANSFER_PROTOCOL } from '../src/protocol/constants.js';
import { TransferRequest as WireTransferRequest } from '../src/protocol/messages.js';
import { decodeIndexBatch, decodeTransferResponse, encodeIndexRequest, encodeTransferRequest, type TransferRequest } from '../src/protocol/messages-codec.js';
import { expectMessage } from '../src/protocol/streams.js';
import { encodeVarint } from '../src/protocol/varint.js';
import { vectorToWire } from '../src/protocol/wire-record.js';
import { eventually, type Teardown } from './protocol-helpers.js';
import { batchOf, framed, HostilePeer, sandbox, startVictim, waitForBan, wireFile, type Victim } from './hostile-peer.js';

const bytes = (...values: number[]) => Uint8Array.from(values);
/** The varint of 2^32: a 4 GiB length prefix. */
const FOUR_GIB = bytes(...encodeVarint(2 ** 32));
/** Ten bytes of varint (nine with the continuation bit): no length fits in them. */
const TEN_BYTE_VARINT = bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
const END_OF_CHUNKS = bytes(0);

/** A raw chunk of a chunked byte stream (flag 0: raw). */
const rawChunk = (payload: Uint8Array) => framed(Buffer.concat([bytes(0), payload]));

/** A signature header (MSIG, version 1, 16-byte strong hashes, 1 KiB blocks, a seed) then a chunk claiming a million blocks. */
function millionBlockSignature(): Uint8Array {
  const header = Buffer.alloc(20 + 4);
  header.writeUInt32BE(0x4d534947, 0);
  header[4] = 1;
  header[5] = 16;
  header.writeUInt32BE(1024, 8);
  header.writeUInt32BE(1_000_000, 20);
  return header;
}

/** The victim's own record of `path`, read as any peer reads it: over /mesh/index. */
async function askIndex(peer: HostilePeer, victim: Victim, path: string): Promise<TransferRequest> {
  const io = await peer.open(victim.node.network.peerId, INDEX_PROTOCOL);
  await io.send(framed(encodeIndexRequest(0)));
  for (;;) {
    const batch = decodeIndexBatch(await expectMessage(io.reader, 64 * 1024 * 1024, 'an index batch'));
    const record = batch.records.find((r) => r.path === path);
    if (record !== undefined) {
      io.stream.abort(new Error('enough'));
      return { path, version: record.version, contentHash: record.contentHash };
    }
  }
}

interface Setup {
  victim: Victim;
  shared: TransferRequest;
  /** A new hostile peer, connected. */
  hostile: () => Promise<HostilePeer>;
}

async function setup(t: Teardown): Promise<Setup> {
  const { folder } = await sandbox(t);
  await writeFile(join(folder, 'shared.txt'), 'shared content '.repeat(100));
  await writeFile(join(folder, '.meshignore'), 'private.txt\n');
  await writeFile(join(folder, 'private.txt'), 'PRIVATE-SECRET');
  const victim = await startVictim(t, folder);
  const scout = await HostilePeer.start(t, victim.meshKey);
  await scout.connect(victim.address);
  const shared = await askIndex(scout, victim, 'shared.txt');
  await scout.network.stop();
  const hostile = async () => {
    const peer = await HostilePeer.start(t, victim.meshKey);
    await peer.connect(victim.address);
    return peer;
  };
  return { victim, shared, hostile };
}

/** Opens a transfer stream to the victim, sends `raw`, and reads what comes back. */
async function sendTransfer(peer: HostilePeer, victim: Victim, raw: Uint8Array, closeWrite = true) {
  const io = await peer.open(victim.node.network.peerId, TRANSFER_PROTOCOL);
  await io.send(raw);
  if (closeWrite) await io.stream.close().catch(() => undefined);
  return io.readToEnd(20_000);
}

/** The response the victim sent first, if any. */
function responseOf(raw: Uint8Array): { status: string; message: string } | undefined {
  if (raw.length === 0) return undefined;
  // Decode the first varint-framed message by hand.
  let length = 0;
  let scale = 1;
  let at = 0;
  for (;;) {
    const byte = raw[at++];
    length += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) break;
    scale *= 128;
  }
  return decodeTransferResponse(raw.subarray(at, at + length));
}

describe('hostile peer: frames and requests on /mesh/transfer', () => {
  it('broken frames and hostile requests get the peer banned; the node goes on serving', { timeout: 240_000 }, async (t) => {
    const { victim, shared, hostile } = await setup(t);
    const request = framed(encodeTransferRequest(shared));
    const cases: [string, Uint8Array, boolean][] = [
      ['a request with a 4 GiB length prefix', FOUR_GIB, false],
      ['a request with a 10-byte varint length', TEN_BYTE_VARINT, false],
      ['a request of random bytes', framed(bytes(0x0a, 0xff, 0xff, 0x12, 0x07, 0x01)), true],
      [
        'a request for ../ (outside the folder)',
        framed(WireTransferRequest.encode({ path: '../outside', version: vectorToWire(shared.version), contentHash: shared.contentHash as Uint8Array<ArrayBuffer> })),
        true,
      ],
      ['a signature claiming a million blocks', Buffer.concat([request, rawChunk(millionBlockSignature()), END_OF_CHUNKS]), true],
      ['a signature chunk with a 4 GiB length prefix', Buffer.concat([request, FOUR_GIB]), false],
      ['a signature that is not one', Buffer.concat([request, rawChunk(new Uint8Array(64).fill(7)), END_OF_CHUNKS]), true],
    ];
    for (const [what, raw, closeWrite] of cases) {
      const peer = await hostile();
      const answer = await sendTransfer(peer, victim, raw, closeWrite);
      assert.notEqual(answer.end, 'timeout', `${what}: the victim ended the stream`);
      await waitForBan(victim, peer.peerId).catch((error: Error) => {
        throw new Error(`${what}: ${error.message}\n${victim.errors().join('\n')}`);
      });
      await peer.network.stop();
    }
    await assertStillServes(t, victim);
  });

  it('paths and versions that are not shared are refused (NOT_FOUND, CHANGED) and nothing of them is sent', { timeout: 60_000 }, async (t) => {
    const { victim, shared, hostile } = await setup(t);
    const peer = await hostile();
    const mine = (path: string, overrides: Partial<TransferRequest> = {}) => framed(encodeTransferRequest({ ...shared, path, ...overrides }));
    const key = await readFile(join(victim.root, '.mesh', 'mesh.key'));
    const cases: [string, Uint8Array, string][] = [
      ["mesh's key", mine('.mesh/mesh.key'), 'NOT_FOUND'],
      ["mesh's peer identity", mine('.mesh/peer.key'), 'NOT_FOUND'],
      ['an ignored file', mine('private.txt'), 'NOT_FOUND'],
      ['a file that does not exist', mine('nothing.txt'), 'NOT_FOUND'],
      ['the shared file at another version', mine('shared.txt', { version: [{ device: 'baadf00dbaadf00d', value: 9 }] }), 'CHANGED'],
      ['the shared file with another content hash', mine('shared.txt', { contentHash: new Uint8Array(32).fill(1) }), 'CHANGED'],
    ];
    for (const [what, raw, status] of cases) {
      const answer = await sendTransfer(peer, victim, Buffer.concat([raw, END_OF_CHUNKS]));
      const response = responseOf(answer.bytes);
      assert.equal(response?.status, status, `${what}: ${JSON.stringify(response)}`);
      const text = Buffer.from(answer.bytes).toString('latin1');
      assert.ok(!text.includes('PRIVATE-SECRET') && !Buffer.from(answer.bytes).includes(key.subarray(0, 20)), `${what}: nothing of it sent`);
    }
    assert.ok(victim.node.network.isConnected(peer.peerId), 'asking for what is not shared is no reason to ban');
  });
});

describe('hostile peer: frames on /mesh/index', () => {
  it('broken batches and requests get the peer banned; an honest peer still syncs', { timeout: 240_000 }, async (t) => {
    const { victim } = await setup(t);
    const tooMany = batchOf(Array.from({ length: 1001 }, (_, k) => wireFile(`f${k}`, undefined, { sequence: k + 1 })));
    const cases: [string, (peer: HostilePeer) => Promise<void>][] = [
      ['a batch with a 4 GiB length prefix', async (peer) => void (peer.indexRawBytes = FOUR_GIB)],
      ['a batch with a 10-byte varint length', async (peer) => void (peer.indexRawBytes = TEN_BYTE_VARINT)],
      ['a batch of 1001 records', async (peer) => void (peer.indexBatches = [tooMany])],
      ['a batch of random bytes', async (peer) => void (peer.indexBatches = [bytes(0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01)])],
      [
        'a record claiming 128 GiB with one block hash',
        async (peer) => void (peer.indexBatches = [batchOf([wireFile('big', undefined, { size: 2 ** 37 })])]),
      ],
      [
        'batches going back in sequence',
        async (peer) => void (peer.indexBatches = [batchOf([wireFile('a', undefined, { sequence: 5 })], 5), batchOf([wireFile('b', undefined, { sequence: 3 })], 3)]),
      ],
      [
        'an index request followed by more bytes',
        async (peer) => {
          const io = await peer.open(victim.node.network.peerId, INDEX_PROTOCOL);
          await io.send(Buffer.concat([framed(encodeIndexRequest(0)), framed(bytes(1, 2, 3))]));
        },
      ],
      [
        'an index request of 1 MiB',
        async (peer) => {
          const io = await peer.open(victim.node.network.peerId, INDEX_PROTOCOL);
          await io.send(framed(new Uint8Array(1024 * 1024)));
        },
      ],
    ];
    for (const [what, act] of cases) {
      const peer = await HostilePeer.start(t, victim.meshKey);
      if (!what.startsWith('an index request')) await act(peer);
      await peer.connect(victim.address);
      if (what.startsWith('an index request')) await act(peer);
      await waitForBan(victim, peer.peerId).catch((error: Error) => {
        throw new Error(`${what}: ${error.message}\n${victim.errors().join('\n')}`);
      });
      await peer.network.stop();
    }
    for (const path of ['f0', 'big', 'b']) assert.equal(await victim.node.folder.store.get(path), undefined, `${path}: nothing of a refused batch recorded`);
    await assertStillServes(t, victim);
  });
});

/** An honest node of the same mesh pulls the victim's shared file and pushes one of its own. */
async function assertStillServes(t: Teardown, victim: Victim): Promise<void> {
  const { folder } = await sandbox(t);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'from-honest.txt'), 'honest');
  await startVictim(t, folder, victim.meshKey, { peers: [victim.address] });
  await eventually(
    async () =>
      (await readFile(join(folder, 'shared.txt'), 'utf8').catch(() => '')).startsWith('shared content') &&
      (await readFile(join(victim.root, 'from-honest.txt'), 'utf8').catch(() => '')) === 'honest',
    60_000,
    'an honest peer and the victim to sync both ways',
  );
}
