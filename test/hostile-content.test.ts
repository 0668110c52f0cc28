// A peer holding the mesh key announces files and then serves deltas that rebuild other bytes:
// nothing wrong is ever applied, the file is fetched from an honest peer with the same version,
// and the lying peer is banned once it has done it MAX_CONTENT_MISMATCHES times. Also the
// penalties' rules on their own.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MalformedDeltaError, VerificationError } from '../src/delta/errors.js';
import { ContentMismatchError, InvalidRemoteRecordError } from '../src/node/errors.js';
import { CONTENT_MISMATCH_WINDOW_MS, MAX_CONTENT_MISMATCHES, PeerPenalties } from '../src/node/peer-penalties.js';
import { ProtocolError, StreamEndedError, TransferBusyError } from '../src/protocol/errors.js';
import { eventually } from './protocol-helpers.js';
import { pseudoRandomBytes } from './helpers.js';
import { batchOf, HostilePeer, sandbox, serveBytes, startVictim, waitForBan, wireFile } from './hostile-peer.js';

describe('hostile peer: wrong content', () => {
  it('a delta that rebuilds other bytes is not applied; the file comes from an honest peer; the liar is banned', { timeout: 120_000 }, async (t) => {
    const { base, folder } = await sandbox(t);
    const contents = [1, 2, 3].map((seed) => Buffer.from(pseudoRandomBytes(200_000 + seed, seed)));
    const names = contents.map((_, k) => `file-${k}.bin`);
    const honestDir = join(base, 'outside');
    const honest = await startVictim(t, honestDir);
    const victim = await startVictim(t, folder, honest.meshKey);

    const liar = await HostilePeer.start(t, honest.meshKey);
    liar.indexBatches = [batchOf(contents.map((content, k) => wireFile(names[k], content, { sequence: k + 1 })))];
    // The same lie whichever way the files are asked for: by delta (transfer) or whole (fetch).
    const lie = async (request: { path: string }, peer: string): Promise<Uint8Array> => {
      const k = names.indexOf(request.path);
      if (peer === honest.node.network.peerId) return contents[k];
      // To the victim: wait until it also knows the honest peer, then the same length of other bytes.
      await eventually(() => victim.node.network.isConnected(honest.node.network.peerId), 30_000, 'the victim to meet the honest peer');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return Buffer.from(pseudoRandomBytes(contents[k].length, 99 + k));
    };
    liar.onTransfer(serveBytes(lie));
    liar.onFetch(lie);
    // The honest peer gets the files (the same versions) from the liar first.
    await liar.connect(honest.address);
    await eventually(
      async () => (await Promise.all(names.map((n, k) => readFile(join(honestDir, n)).then((b) => b.equals(contents[k]), () => false)))).every(Boolean),
      30_000,
      'the honest peer to hold the files',
    );
    // The victim hears of them from the liar, then meets the honest peer while the liar is serving.
    await liar.connect(victim.address);
    await eventually(() => liar.transferRequests.some((r) => r.path === names[0]), 30_000, 'the victim to ask the liar');
    await honest.node.network.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(victim.address));

    await eventually(
      async () => (await Promise.all(names.map((n, k) => readFile(join(folder, n)).then((b) => b.equals(contents[k]), () => false)))).every(Boolean),
      60_000,
      'the victim to hold the right bytes',
    );
    await waitForBan(victim, liar.peerId, 30_000);
    const pulls = victim.events.flatMap((e) => (e.kind === 'applied' ? e.report.applied : [])).filter((a) => names.includes(a.path));
    for (const pull of pulls) if (pull.action === 'file') assert.notEqual(pull.pull?.peer, liar.peerId, `${pull.path} came from the honest peer`);
  });
});

describe('peer penalties', () => {
  it('a broken protocol bans at once; wrong bytes only the third time within the window; network failures and early ends never', () => {
    let now = 0;
    const penalties = new PeerPenalties(() => now);
    for (const error of [new ProtocolError('x'), new InvalidRemoteRecordError('x'), new MalformedDeltaError('x')]) {
      assert.equal(penalties.misbehaved('a', error), true, error.name);
    }
    // A stream that ends early is what an honest peer's closing connection looks like too.
    for (const error of [new StreamEndedError('x'), new TransferBusyError('x'), new Error('ECONNRESET')]) {
      assert.equal(penalties.misbehaved('b', error), false, error.name);
    }
    for (let k = 1; k < MAX_CONTENT_MISMATCHES; k++) assert.equal(penalties.misbehaved('c', new ContentMismatchError('x')), false);
    assert.equal(penalties.misbehaved('c', new VerificationError('x')), true);
    // Spread over more than the window: never banned.
    for (let k = 0; k < 10; k++) {
      now += CONTENT_MISMATCH_WINDOW_MS / (MAX_CONTENT_MISMATCHES - 1) + 1;
      assert.equal(penalties.misbehaved('d', new ContentMismatchError('x')), false);
    }
  });
});
