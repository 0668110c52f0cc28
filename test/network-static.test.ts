// Static peers (--peer) over loopback in the root namespace, mDNS off: dialled at start, redialled
// with exponential backoff while not connected, one connection per pair; and stop() leaves no timer.
import '../src/polyfills.js';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { InvalidListenAddressError, InvalidPeerAddressError } from '../src/node/errors.js';
import { generateMeshKey, parseMeshKey } from '../src/node/keys.js';
import { createMeshNetwork, NotConnectedError, type MeshNetwork, type MeshNetworkEvents, type MeshNetworkInit } from '../src/node/network.js';
import { startNode } from './network-helpers.js';

const CONNECT_MS = 5_000;

/** A node on 127.0.0.1 with mDNS off, stopped when the test ends. */
async function loopbackNode(t: TestContext, meshKey: Uint8Array, init: Partial<MeshNetworkInit> = {}): Promise<MeshNetwork> {
  const network = await createMeshNetwork({ meshKey, privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', mdns: false, ...init });
  t.after(() => network.stop());
  return network;
}

/** The next `name` event satisfying `predicate`. */
function next<K extends keyof MeshNetworkEvents>(
  network: MeshNetwork,
  name: K,
  predicate: (...args: MeshNetworkEvents[K]) => boolean = () => true,
  timeoutMs = CONNECT_MS,
): Promise<MeshNetworkEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const listener = (...args: MeshNetworkEvents[K]): void => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      network.off(name, listener as never);
      resolve(args[0]);
    };
    const timer = setTimeout(() => {
      network.off(name, listener as never);
      reject(new Error(`no ${name} within ${timeoutMs} ms`));
    }, timeoutMs);
    network.on(name, listener as never);
  });
}

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

// Independent (own keys and ports) and mostly waiting on timers: they run at once.
describe('static peers over loopback', { concurrency: true }, () => {
  it('a node given another as a static peer connects to it, and each sees the other connect', async (t) => {
    const key = parseMeshKey(generateMeshKey());
    const a = await loopbackNode(t, key);
    await a.start();
    const b = await loopbackNode(t, key, { staticPeers: [a.listenAddresses[0]] });
    const aSees = next(a, 'peer:connect', (e) => e.peerId === b.peerId);
    const bSees = next(b, 'peer:connect', (e) => e.peerId === a.peerId);
    await b.start();
    assert.equal((await aSees).direction, 'inbound');
    assert.equal((await bSees).direction, 'outbound');
    assert.deepEqual(b.connectedPeers(), [a.peerId]);
    assert.equal(a.connections(b.peerId).length, 1);
  });

  it('a static peer that is not listening yet is redialled with backoff and connected once it starts', async (t) => {
    const key = parseMeshKey(generateMeshKey());
    const port = await freePort();
    const aKey = await generateKeyPair('Ed25519');
    // No /p2p/ID: a bare address is enough, the peer id is learnt from the connection.
    const b = await loopbackNode(t, key, { staticPeers: [`/ip4/127.0.0.1/tcp/${port}`] });
    const failed = next(b, 'dial:error');
    await b.start();
    assert.equal((await failed).retryInMs, 1_000, 'the first redial comes 1 s after the first failure');
    const a = await loopbackNode(t, key, { privateKey: aKey, port });
    const connected = next(b, 'peer:connect', (e) => e.peerId === a.peerId, 3_000);
    await a.start();
    await connected;
    assert.ok(b.isConnected(a.peerId));
  });

  it('a static peer that goes away is redialled, and reconnected when it comes back', async (t) => {
    const key = parseMeshKey(generateMeshKey());
    const port = await freePort();
    const a = await loopbackNode(t, key, { port });
    await a.start();
    const b = await loopbackNode(t, key, { staticPeers: [a.listenAddresses[0]] });
    await Promise.all([next(b, 'peer:connect'), b.start()]);

    const gone = next(b, 'peer:disconnect', (e) => e.peerId === a.peerId);
    await a.stop();
    await gone;
    const back = next(b, 'peer:connect', (e) => e.peerId === a.peerId, 4_000);
    await a.start();
    await back;
  });

  it('redial delays double after each failure, up to the limit', async (t) => {
    const key = parseMeshKey(generateMeshKey());
    const port = await freePort();
    const b = await loopbackNode(t, key, { staticPeers: [`/ip4/127.0.0.1/tcp/${port}`], timing: { redialMinMs: 20, redialMaxMs: 80 } });
    const delays: number[] = [];
    const sixth = new Promise<void>((resolve) =>
      b.on('dial:error', (e) => {
        delays.push(e.retryInMs!);
        if (delays.length === 6) resolve();
      }),
    );
    await b.start();
    await sixth;
    assert.deepEqual(delays, [20, 40, 80, 80, 80, 80]);
  });

  it('two nodes that list each other keep one connection, the same one on both sides', async (t) => {
    const key = parseMeshKey(generateMeshKey());
    const [portA, portB] = [await freePort(), await freePort()];
    const [keyA, keyB] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')];
    const a = await loopbackNode(t, key, { privateKey: keyA, port: portA, staticPeers: [`/ip4/127.0.0.1/tcp/${portB}/p2p/${keyB.publicKey.toString()}`] });
    const b = await loopbackNode(t, key, { privateKey: keyB, port: portB, staticPeers: [`/ip4/127.0.0.1/tcp/${portA}/p2p/${keyA.publicKey.toString()}`] });
    await Promise.all([next(a, 'peer:connect'), next(b, 'peer:connect'), a.start(), b.start()]);
    // Both dials may have succeeded; the lower peer id closes the duplicate once it sees both, and
    // the other side sees it close a moment later.
    const settled = (): boolean => {
      const [onA, onB] = [a.connections(b.peerId), b.connections(a.peerId)];
      return onA.length === 1 && onB.length === 1 && onA[0].direction !== onB[0].direction;
    };
    const deadline = Date.now() + 3_000;
    while (!settled() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const describe = (n: MeshNetwork, peer: string): string => n.connections(peer).map((c) => c.direction).join(',');
    assert.ok(settled(), `one connection, outbound on one side and inbound on the other: A ${describe(a, b.peerId)}, B ${describe(b, a.peerId)}`);
    const lower = a.peerId < b.peerId ? a : b;
    const higher = lower === a ? b : a;
    assert.equal(lower.connections(higher.peerId)[0].direction, 'outbound', "the lower peer id's outbound connection is kept");
  });

  it('stop() clears every timer: a node redialling an absent peer exits by itself right after stopping', async (t) => {
    const port = await freePort();
    const node = startNode(t, {
      key: generateMeshKey(),
      name: 'redialling node',
      args: ['--host', '127.0.0.1', '--no-mdns', '--peer', `/ip4/127.0.0.1/tcp/${port}`, '--redial-min', '30000'],
    });
    const failed = await node.waitFor((e) => e.event === 'dial:error', CONNECT_MS, 'a failed dial');
    assert.equal(failed.retryInMs, 30_000);
    const exitMs = await node.stop(10_000);
    // libp2p 3 itself keeps the process 1 s after stop() (a debounce timer of its address manager).
    assert.ok(exitMs < 5_000, `the process exited ${exitMs} ms after "stop"; a 30 s redial timer was left running`);
    assert.equal(node.child.exitCode, 0);
  });

  it('a protocol registered with handle() answers a stream opened with dialProtocol(); with no connection, NotConnectedError', async (t) => {
    const key = parseMeshKey(generateMeshKey());
    const protocol = '/mesh/test-echo/1.0.0';
    const a = await loopbackNode(t, key);
    await a.handle(protocol, async (stream) => {
      // The libp2p 3 stream: async-iterable messages in, send() out, close() half-closes.
      for await (const chunk of stream) stream.send(chunk);
      await stream.close();
    });
    await a.start();
    const b = await loopbackNode(t, key, { staticPeers: [a.listenAddresses[0]] });
    await assert.rejects(b.dialProtocol(a.peerId, protocol), NotConnectedError);
    await Promise.all([next(b, 'peer:connect'), b.start()]);

    const stream = await b.dialProtocol(a.peerId, protocol);
    stream.send(new TextEncoder().encode('hello '));
    stream.send(new TextEncoder().encode('mesh'));
    await stream.close();
    const received: Uint8Array[] = [];
    for await (const chunk of stream) received.push(chunk.subarray());
    assert.equal(Buffer.concat(received).toString(), 'hello mesh');
  });

  it('bad static peer addresses and listen addresses are refused with typed errors', async () => {
    const meshKey = parseMeshKey(generateMeshKey());
    const privateKey = await generateKeyPair('Ed25519');
    for (const address of ['not-a-multiaddr', '/ip4/127.0.0.1/udp/4001', '/ip4/127.0.0.1/tcp/4001/p2p/notapeerid']) {
      await assert.rejects(createMeshNetwork({ meshKey, privateKey, mdns: false, staticPeers: [address] }), InvalidPeerAddressError, address);
    }
    await assert.rejects(createMeshNetwork({ meshKey, privateKey, mdns: false, host: 'localhost' }), InvalidListenAddressError);
    await assert.rejects(createMeshNetwork({ meshKey, privateKey, mdns: false, port: 70000 }), InvalidListenAddressError);
  });
});
