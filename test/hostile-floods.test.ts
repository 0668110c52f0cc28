// Floods against a real `mesh join` process on loopback: thousands of streams, slow readers that
// hold transfers open without reading, a thousand idle TCP connections and dials by nodes without
// the mesh key. The node's memory stays under FLOOD_PEAK_RSS_MIB and an honest peer still syncs.
// Outcomes only (what arrived, the peak RSS): no timing is asserted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { collect, encodeSignature, signatureOptionsFor } from '../src/delta/index.js';
import { generateMeshKey, parseMeshKey } from '../src/node/keys.js';
import { createMeshNetwork } from '../src/node/network.js';
import { INDEX_PROTOCOL, TRANSFER_PROTOCOL } from '../src/protocol/constants.js';
import { decodeIndexBatch, decodeTransferResponse, encodeIndexRequest, encodeTransferRequest, type TransferRequest } from '../src/protocol/messages-codec.js';
import { expectMessage } from '../src/protocol/streams.js';
import { stopChild } from './netns.js';
import { JoinProcess, SOURCE_CLI } from './join-helpers.js';
import { eventually, type Teardown } from './protocol-helpers.js';
import { pseudoRandomBytes } from './helpers.js';
import { framed, HostilePeer, sandbox, startVictim, type RawStream } from './hostile-peer.js';

/**
 * The most the flooded node may hold (VmHWM). A connected node at rest holds about 85 MiB and
 * peaks near 150 MiB moving a 256 MiB file (README, bench:mesh); run from source (tsx) it holds
 * about 40 MiB more. A flood that buffered per stream or per connection would blow far past this.
 */
const FLOOD_PEAK_RSS_MIB = 320;
const MiB = 1024 * 1024;

interface JoinNode {
  readonly process: JoinProcess;
  readonly address: string;
  readonly peerId: string;
  readonly port: number;
  /** Highest resident memory so far (VmHWM), in MiB. */
  peakRssMiB(): Promise<number>;
}

/** `mesh join DIR` from source, on loopback only (no mDNS), stopped when the test ends. */
async function startJoin(t: Teardown, dir: string, key: string, args: string[] = []): Promise<JoinNode> {
  const child = spawn(process.execPath, [...SOURCE_CLI, 'join', dir, '--no-mdns', '--port', '0', ...args], {
    stdio: 'pipe',
    env: { ...process.env, MESH_KEY: key },
  });
  const joined = new JoinProcess(child);
  t.after(() => stopChild(child));
  await joined.waitForOutput(/listening:\s+\S+\/tcp\/\d+/, 180_000);
  const port = Number(/\/tcp\/(\d+)/.exec(joined.stdout)![1]);
  const peerId = joined.peerId!;
  return {
    process: joined,
    port,
    peerId,
    address: `/ip4/127.0.0.1/tcp/${port}/p2p/${peerId}`,
    async peakRssMiB() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
    },
  };
}

/** The record of `path` as the node announces it, read over /mesh/index. */
async function announced(peer: HostilePeer, peerId: string, path: string): Promise<TransferRequest> {
  const io = await peer.open(peerId, INDEX_PROTOCOL);
  await io.send(framed(encodeIndexRequest(0)));
  for (;;) {
    const batch = decodeIndexBatch(await expectMessage(io.reader, 64 * MiB, 'an index batch'));
    const record = batch.records.find((r) => r.path === path);
    if (record !== undefined) {
      io.stream.abort(new Error('enough'));
      return { path, version: record.version, contentHash: record.contentHash };
    }
  }
}

const sameBytes = async (path: string, expected: Buffer) => (await readFile(path).catch(() => Buffer.alloc(0))).equals(expected);

describe('hostile peer: floods', () => {
  it('thousands of streams and slow readers: memory stays bounded and an honest peer still pulls', { timeout: 240_000 }, async (t) => {
    const { base, folder } = await sandbox(t);
    const key = generateMeshKey();
    const big = Buffer.from(pseudoRandomBytes(8 * MiB, 5));
    await writeFile(join(folder, 'big.bin'), big);
    const victim = await startJoin(t, folder, key);
    const hostile = await HostilePeer.start(t, parseMeshKey(key));
    await hostile.connect(victim.address);
    const request = await announced(hostile, victim.peerId, 'big.bin');
    const emptySignature = await collect(encodeSignature((async function* () {})(), signatureOptionsFor(0)));

    // Slow readers: as many transfers of the big file as the node takes, each read up to its
    // answer and then never again; one that is cut is opened anew, for as long as the test runs.
    let flooding = true;
    const slow = new Set<RawStream>();
    let answeredOk = 0;
    const slowReader = async (): Promise<void> => {
      while (flooding) {
        try {
          const io = await hostile.open(victim.peerId, TRANSFER_PROTOCOL);
          slow.add(io);
          await io.send(Buffer.concat([framed(encodeTransferRequest(request)), framed(Buffer.concat([Uint8Array.of(0), emptySignature])), Uint8Array.of(0)]));
          const response = decodeTransferResponse(await expectMessage(io.reader, 4096, 'the response'));
          if (response.status === 'OK') answeredOk++;
          await new Promise((resolve) => io.stream.addEventListener('close', resolve, { once: true }));
          slow.delete(io);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    };
    const readers = Array.from({ length: 16 }, () => slowReader());
    await eventually(() => answeredOk >= 1, 60_000, 'the node to start serving a slow reader').catch((error: Error) => {
      throw new Error(`${error.message}\n${victim.process.describe()}`);
    });
    // Thousands of streams on both protocols, opened and left silent (most are reset at once: the
    // protocols take 8 and 2 per connection). Not awaited: they go on while the honest peer pulls.
    for (let k = 0; k < 2000; k++) void hostile.open(victim.peerId, k % 2 === 0 ? TRANSFER_PROTOCOL : INDEX_PROTOCOL).catch(() => undefined);

    // An honest node joins and pulls the big file, while the slow readers hold on.
    const honestDir = join(base, 'outside');
    await startVictim(t, honestDir, parseMeshKey(key), { peers: [victim.address] });
    await eventually(() => sameBytes(join(honestDir, 'big.bin'), big), 180_000, 'the honest peer to pull big.bin').catch((error: Error) => {
      throw new Error(`${error.message} (slow transfers answered OK: ${answeredOk})\n${victim.process.describe()}`);
    });
    flooding = false;
    for (const io of slow) io.stream.abort(new Error('done'));
    await Promise.allSettled(readers);
    const peak = await victim.peakRssMiB();
    t.diagnostic(`flooded node: peak RSS ${peak.toFixed(0)} MiB; slow transfers answered OK: ${answeredOk}`);
    assert.ok(peak < FLOOD_PEAK_RSS_MIB, `peak RSS ${peak.toFixed(0)} MiB under ${FLOOD_PEAK_RSS_MIB} MiB`);
  });

  it('a thousand idle connections and nodes without the mesh key: no connection for them, memory bounded, an honest peer still syncs', { timeout: 180_000 }, async (t) => {
    const { base, folder } = await sandbox(t);
    const key = generateMeshKey();
    const honestDir = join(base, 'outside');
    const honest = await startVictim(t, honestDir, parseMeshKey(key));
    // The flooded node dials the honest one: its outgoing dial is not held up by the inbound flood.
    const victim = await startJoin(t, folder, key, ['--peer', honest.address]);
    await eventually(() => honest.node.network.isConnected(victim.peerId), 60_000, 'the honest peer to connect');

    // A thousand TCP connections that never say a word (slow loris at the handshake)...
    const sockets: Socket[] = [];
    t.after(() => sockets.forEach((s) => s.destroy()));
    for (let k = 0; k < 1000; k++) {
      const socket = connect(victim.port, '127.0.0.1');
      socket.on('error', () => undefined);
      sockets.push(socket);
    }
    // ...and nodes with another key dialling it, each learning nothing.
    const outsiders = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const network = await createMeshNetwork({ meshKey: parseMeshKey(generateMeshKey()), privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', mdns: false });
        await network.start();
        t.after(() => network.stop());
        return network;
      }),
    );
    const dials = await Promise.allSettled(outsiders.map((o) => o.libp2p.dial(multiaddr(victim.address), { signal: AbortSignal.timeout(15_000) })));
    assert.deepEqual(
      dials.map((d) => d.status),
      dials.map(() => 'rejected'),
      'no node without the key gets a connection',
    );

    // The honest peer and the flooded node still sync both ways.
    const fromHonest = createHash('sha256').update('honest').digest();
    await writeFile(join(honestDir, 'from-honest.bin'), fromHonest);
    await writeFile(join(folder, 'from-victim.txt'), 'flooded but alive');
    await eventually(
      async () => (await sameBytes(join(folder, 'from-honest.bin'), fromHonest)) && (await sameBytes(join(honestDir, 'from-victim.txt'), Buffer.from('flooded but alive'))),
      90_000,
      'the honest peer and the flooded node to sync both ways',
    );
    const peak = await victim.peakRssMiB();
    t.diagnostic(`flooded node: peak RSS ${peak.toFixed(0)} MiB`);
    assert.ok(peak < FLOOD_PEAK_RSS_MIB, `peak RSS ${peak.toFixed(0)} MiB under ${FLOOD_PEAK_RSS_MIB} MiB`);
    for (const outsider of outsiders) assert.ok(!victim.process.stdout.includes(outsider.peerId), 'the node never heard of a node without the key');
  });
});
