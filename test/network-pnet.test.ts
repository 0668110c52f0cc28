// The private network (the mesh key as libp2p's pre-shared key) survives what a sync does to a
// connection: large writes, then many small messages each way. @libp2p/pnet's cipher (the xsalsa20
// package) shares one WebAssembly memory across the process; a large write grew it, after which
// every turn of direction grew it again, until it passed its 64 MB limit and the node crashed
// (`WebAssembly.Memory.grow(): Maximum memory size exceeded`, seen in bench:mesh). mesh now runs its
// own implementation of pnet's protocol (src/node/private-network.ts) and seals noise's large messages
// itself (src/node/noise-crypto.ts): a mesh node and a node running stock noise and
// stock @libp2p/pnet with the same key must understand each other, over real TCP, both ways.
import '../src/polyfills.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { noise } from '@chainsafe/libp2p-noise';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { generateMeshKey, parseMeshKey, swarmKeyOf } from '../src/node/keys.js';
import { createMeshNetwork, type MeshNetwork } from '../src/node/network.js';
import { StreamReader, StreamWriter } from '../src/protocol/streams.js';

const ECHO = '/mesh-test/echo/1.0.0';
const LARGE_BYTES = 4 * 1024 * 1024;
/** Each turn used to grow the cipher's memory by at least 64 KiB: 1000 of them passed its limit. */
const ROUND_TRIPS = 3000;

async function loopbackNode(t: TestContext, meshKey: Uint8Array): Promise<MeshNetwork> {
  const network = await createMeshNetwork({ meshKey, privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', mdns: false });
  t.after(() => network.stop());
  return network;
}

/** Sends back every byte it receives, as it arrives. */
async function echo(stream: Stream): Promise<void> {
  const reader = new StreamReader(stream);
  const writer = new StreamWriter(stream);
  try {
    for (let chunk = await reader.next(); chunk !== undefined; chunk = await reader.next()) await writer.write(chunk.slice());
    await writer.end();
  } catch {
    stream.abort(new Error('echo failed'));
  } finally {
    reader.release();
  }
}

async function readExactly(reader: StreamReader, length: number): Promise<Buffer> {
  return Buffer.from(await reader.exactly(length, 'the echo'));
}

test('a connection carries a large write and then thousands of small round trips', { timeout: 60_000 }, async (t) => {
  const key = parseMeshKey(generateMeshKey());
  const a = await loopbackNode(t, key);
  const b = await loopbackNode(t, key);
  await b.start();
  await b.handle(ECHO, (stream) => void echo(stream));
  await a.start();
  await a.libp2p.dial(multiaddr(b.listenAddresses[0]));
  const stream = await a.dialProtocol(b.peerId, ECHO);
  const reader = new StreamReader(stream);
  const writer = new StreamWriter(stream, { highWater: 2 * LARGE_BYTES });
  t.after(() => reader.release());

  const large = randomBytes(LARGE_BYTES);
  await writer.write(large);
  assert.ok((await readExactly(reader, LARGE_BYTES)).equals(large), 'the large write came back changed');
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const small = randomBytes(16);
    await writer.write(small);
    assert.ok((await readExactly(reader, small.length)).equals(small), `round trip ${i} came back changed`);
  }
  await writer.end();
  assert.equal(await reader.next(), undefined);
});

/** A plain libp2p node with stock @libp2p/pnet (its xsalsa20 package) and the same transport stack as mesh. */
async function stockPnetNode(t: TestContext, meshKey: Uint8Array): Promise<Libp2p> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: swarmKeyOf(meshKey) }),
  });
  t.after(() => node.stop());
  return node;
}

/** Writes, through an echo, sizes that cut the cipher's blocks anywhere, then small round trips; each must come back unchanged. */
async function exchange(stream: Stream): Promise<void> {
  const reader = new StreamReader(stream);
  const writer = new StreamWriter(stream, { highWater: 2 * LARGE_BYTES });
  try {
    for (const length of [LARGE_BYTES + 13, 1, 63, 65, 257, 65_537, 3 * 1024 * 1024 + 5]) {
      const sent = randomBytes(length);
      await writer.write(sent);
      assert.ok((await readExactly(reader, length)).equals(sent), `${length} bytes came back changed`);
    }
    for (let i = 0; i < 200; i++) {
      const small = randomBytes(1 + (i % 40));
      await writer.write(small);
      assert.ok((await readExactly(reader, small.length)).equals(small), `round trip ${i} came back changed`);
    }
    await writer.end();
    assert.equal(await reader.next(), undefined);
  } finally {
    reader.release();
  }
}

test('a mesh node and a stock @libp2p/pnet node with the same key connect and exchange data both ways', { timeout: 60_000 }, async (t) => {
  const key = parseMeshKey(generateMeshKey());
  const mesh = await loopbackNode(t, key);
  const listening = await stockPnetNode(t, key);
  const dialling = await stockPnetNode(t, key);
  await mesh.start();
  await mesh.handle(ECHO, (stream) => void echo(stream));
  await listening.handle(ECHO, (stream) => void echo(stream));

  // mesh dials stock, then stock dials mesh (each side's cipher meets the other's both ways).
  await exchange(await mesh.libp2p.dialProtocol(listening.getMultiaddrs()[0], ECHO));
  await exchange(await dialling.dialProtocol(multiaddr(mesh.listenAddresses[0]), ECHO));
});

test('a stock @libp2p/pnet node with another key cannot reach a mesh node', { timeout: 60_000 }, async (t) => {
  const mesh = await loopbackNode(t, parseMeshKey(generateMeshKey()));
  const stranger = await stockPnetNode(t, parseMeshKey(generateMeshKey()));
  await mesh.start();
  await mesh.handle(ECHO, (stream) => void echo(stream));
  await assert.rejects(stranger.dialProtocol(multiaddr(mesh.listenAddresses[0]), ECHO, { signal: AbortSignal.timeout(10_000) }));
  assert.equal(mesh.libp2p.getConnections().length, 0);
});
