// An index stream that ends with its connection is no failure worth a warning. Two machines
// started at once dial each other at once: of the two connections the lower peer id closes one
// (MeshNetwork), ending the streams opened on it, which are opened again on the other connection
// at once. A peer that stops ends its streams, then its connection: its disconnect is the news.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { generateMeshKey, parseMeshKey } from '../src/node/keys.js';
import { INDEX_CONNECTION_CLOSE_WAIT } from '../src/protocol/constants.js';
import { sandbox, startVictim } from './hostile-peer.js';
import { eventually } from './protocol-helpers.js';

/** Each round is a fresh pair; the streams' end races the duplicate's close differently each time. */
const ROUNDS = 3;

async function contentOf(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

describe('index streams that end with their connection', () => {
  it('two nodes that dial each other at the same moment sync both ways with no warning', { timeout: 120_000 }, async (t) => {
    for (let round = 1; round <= ROUNDS; round++) {
      const key = parseMeshKey(generateMeshKey());
      const [{ folder: onA }, { folder: onB }] = await Promise.all([sandbox(t), sandbox(t)]);
      await writeFile(join(onA, 'from a.txt'), `made on a, round ${round}\n`);
      await writeFile(join(onB, 'from b.txt'), `made on b, round ${round}\n`);
      const [a, b] = await Promise.all([startVictim(t, onA, key), startVictim(t, onB, key)]);
      const opened: Connection[] = [];
      a.node.network.libp2p.addEventListener('connection:open', (event) => opened.push(event.detail));

      await Promise.all([a.node.network.libp2p.dial(multiaddr(b.address)), b.node.network.libp2p.dial(multiaddr(a.address))]);
      await eventually(
        async () => (await contentOf(join(onB, 'from a.txt'))) === `made on a, round ${round}\n` && (await contentOf(join(onA, 'from b.txt'))) === `made on b, round ${round}\n`,
        20_000,
        `round ${round}: both files on both nodes`,
      );
      assert.equal(opened.length, 2, `round ${round}: the case under test is two connections between the nodes`);
      assert.deepEqual([...a.errors(), ...b.errors()], [], `round ${round}: no warning on either node`);
      await Promise.all([a.node.stop(), b.node.stop()]);
    }
  });

  it('a peer that stops leaves no warning on the node it synced with', { timeout: 60_000 }, async (t) => {
    const key = parseMeshKey(generateMeshKey());
    const [{ folder: onA }, { folder: onB }] = await Promise.all([sandbox(t), sandbox(t)]);
    await writeFile(join(onB, 'from b.txt'), 'made on b\n');
    const [a, b] = await Promise.all([startVictim(t, onA, key), startVictim(t, onB, key)]);
    await a.node.network.libp2p.dial(multiaddr(b.address));
    await eventually(async () => (await contentOf(join(onA, 'from b.txt'))) === 'made on b\n', 20_000, 'the file on a');
    // Each follows the other's index: streams both ways are open when b stops.
    await eventually(() => (a.node.network.libp2p.getConnections()[0]?.streams.length ?? 0) >= 2, 10_000, 'index streams both ways');

    await b.node.stop();
    await eventually(() => a.events.some((e) => e.kind === 'peer-disconnected'), 10_000, 'a to see b leave');
    // Past the longest a stream waits to see its connection close before it would warn.
    await new Promise((resolve) => setTimeout(resolve, INDEX_CONNECTION_CLOSE_WAIT + 500));
    assert.deepEqual(a.errors(), []);
  });
});
