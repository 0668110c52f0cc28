// The private network (the mesh key as libp2p's pre-shared key) survives what a sync does to a
// connection: large writes, then many small messages each way. @libp2p/pnet's cipher (the xsalsa20
// package) shares one WebAssembly memory across the process; a large write grew it, after which
// every turn of direction grew it again, until it passed its 64 MB limit and the node crashed
// (`WebAssembly.Memory.grow(): Maximum memory size exceeded`, seen in bench:mesh).
import '../src/polyfills.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { generateMeshKey, parseMeshKey } from '../src/node/keys.js';
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
  await a.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(b.listenAddresses[0]));
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
