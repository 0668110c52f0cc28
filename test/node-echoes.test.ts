import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Echoes, MAX_ECHOES_PER_PEER, MTIME_TOLERANCE_NS } from '../src/node/echoes.js';
import { INDEX_PROTOCOL, MAX_INDEX_MESSAGE_BYTES } from '../src/protocol/constants.js';
import { decodeIndexBatch, encodeIndexRequest } from '../src/protocol/messages-codec.js';
import { expectMessage } from '../src/protocol/streams.js';
import { batchOf, HostilePeer, sandbox, startVictim, wireFile } from './hostile-peer.js';
import { DEVICE_A, DEVICE_B, eventually, fileChange } from './protocol-helpers.js';

const PEER = 'peer-a';

describe('echoes (records not announced back to the peer they came from)', () => {
  it('leaves out the record a peer announced once it is applied as it was, mtime within the tolerance of setting it', () => {
    const echoes = new Echoes();
    const announced = fileChange('docs/a.txt');
    echoes.applied(PEER, announced);
    const applied = { ...announced, mtimeNs: announced.mtimeNs - MTIME_TOLERANCE_NS / 2n, inode: 77n };
    assert.equal(echoes.isEcho(PEER, applied), true);
    // Asked once: the next record of the path (a touch, a later edit) goes out.
    assert.equal(echoes.isEcho(PEER, applied), false);
  });

  it('sends every record that tells the peer something: a merged version, other permissions or mtime, another content or device', () => {
    const announced = fileChange('docs/a.txt');
    const differing = [
      { ...announced, version: [...announced.version, { device: DEVICE_B, value: 1 }] },
      { ...announced, mode: 0o600 },
      { ...announced, mtimeNs: announced.mtimeNs + 2n * MTIME_TOLERANCE_NS },
      fileChange('docs/a.txt', 2000),
      { ...announced, deleted: true },
      { ...announced, modifiedBy: DEVICE_B },
      { ...announced, type: 'symlink' as const, symlinkTarget: 'b.txt' },
    ];
    for (const record of differing) {
      const echoes = new Echoes();
      echoes.applied(PEER, announced);
      assert.equal(echoes.isEcho(PEER, record), false, JSON.stringify(record, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    }
  });

  it('holds nothing for another peer, a path announced again since, or a peer that disconnected', () => {
    const record = fileChange('docs/a.txt', 1000, { modifiedBy: DEVICE_A });
    const echoes = new Echoes();
    echoes.applied(PEER, record);
    assert.equal(echoes.isEcho('peer-b', record), false);
    echoes.announced(PEER, record.path);
    assert.equal(echoes.isEcho(PEER, record), false);
    echoes.applied(PEER, record);
    echoes.peerGone(PEER);
    assert.equal(echoes.isEcho(PEER, record), false);
  });

  it('leaves out a merge only in the index session that sent the record it merged, once, unless the path was announced again', () => {
    const merged = fileChange('docs/a.txt', 1000, { version: [{ device: DEVICE_A, value: 1 }, { device: DEVICE_B, value: 1 }] });
    const echoes = new Echoes();
    echoes.merged(PEER, merged, 7);
    assert.equal(echoes.isEcho(PEER, merged, 8), false, 'another session (the stream broke and was asked for again)');
    assert.equal(echoes.isEcho(PEER, merged), false, 'no session');
    echoes.merged(PEER, merged, 7);
    assert.equal(echoes.isEcho(PEER, { ...merged, mtimeNs: merged.mtimeNs + 2n * MTIME_TOLERANCE_NS }, 7), false, 'a record that is not the merge');
    echoes.merged(PEER, merged, 7);
    assert.equal(echoes.isEcho(PEER, merged, 7), true);
    assert.equal(echoes.isEcho(PEER, merged, 7), false, 'used up');
    echoes.merged(PEER, merged, 7);
    echoes.announced(PEER, merged.path);
    assert.equal(echoes.isEcho(PEER, merged, 7), false, 'the peer announced the path again');
  });

  it(`remembers at most ${MAX_ECHOES_PER_PEER} records per peer, dropping the oldest`, () => {
    const echoes = new Echoes();
    for (let i = 0; i <= MAX_ECHOES_PER_PEER; i++) echoes.applied(PEER, fileChange(`f/${i}`));
    assert.equal(echoes.size(PEER), MAX_ECHOES_PER_PEER);
    assert.equal(echoes.isEcho(PEER, fileChange('f/0')), false);
    assert.equal(echoes.isEcho(PEER, fileChange(`f/${MAX_ECHOES_PER_PEER}`)), true);
  });
});

describe('echoes between real nodes', () => {
  it('a node leaves out the merge of its record with the peer\'s when that stream already sent its record, and sends it on a new stream', { timeout: 60_000 }, async (t) => {
    const { folder } = await sandbox(t);
    const content = Buffer.from('made on both sides');
    await writeFile(join(folder, 'same.txt'), content);
    const victim = await startVictim(t, folder);
    const peer = await HostilePeer.start(t, victim.meshKey);
    await peer.connect(victim.address);
    const victimId = victim.node.network.peerId;

    // The peer follows the victim's index and gets its record of same.txt.
    const first = await peer.open(victimId, INDEX_PROTOCOL);
    await first.writer.writeMessage(encodeIndexRequest(0));
    await first.writer.end();
    const own = decodeIndexBatch(await expectMessage(first.reader, MAX_INDEX_MESSAGE_BYTES, 'the first batch'));
    assert.deepEqual(own.records.map((r) => r.path), ['same.txt']);
    const ownSequence = own.lastSequence;

    // Then it announces its own version of the same content, made apart: the victim merges the two.
    await eventually(() => peer.followers > 0, 10_000, 'the victim following the peer');
    await peer.push(batchOf([wireFile('same.txt', content)]));
    await eventually(
      () => victim.events.some((e) => e.kind === 'applied' && e.report.applied.some((a) => a.action === 'merged')),
      10_000,
      'the merge',
    );

    // On the stream that sent the victim's record the merge is left out; the progress moves past it.
    const next = decodeIndexBatch(await expectMessage(first.reader, MAX_INDEX_MESSAGE_BYTES, 'the batch after the merge'));
    assert.deepEqual(next.records, []);
    assert.ok(next.lastSequence > ownSequence);
    first.stream.abort(new Error('broken'));

    // A stream asked for again from before (the peer never handled the first one's batch) gets the merge.
    const again = await peer.open(victimId, INDEX_PROTOCOL);
    await again.writer.writeMessage(encodeIndexRequest(0));
    await again.writer.end();
    const resent = decodeIndexBatch(await expectMessage(again.reader, MAX_INDEX_MESSAGE_BYTES, 'the batch on a new stream'));
    again.stream.abort(new Error('done'));
    assert.deepEqual(resent.records.map((r) => r.path), ['same.txt']);
    assert.equal(resent.records[0].version.length, 2, 'the merged version: both devices');
  });

  it('a node does not announce back to a peer the file it pulled from it as announced, and still sends its own', { timeout: 60_000 }, async (t) => {
    const { folder } = await sandbox(t);
    await writeFile(join(folder, 'local.txt'), 'made here');
    const victim = await startVictim(t, folder);
    const content = Buffer.from('made on the peer');
    const peer = await HostilePeer.start(t, victim.meshKey);
    peer.indexBatches = [batchOf([wireFile('pulled.txt', content)])];
    peer.onFetch(() => content);
    await peer.connect(victim.address);
    await eventually(async () => (await readFile(join(folder, 'pulled.txt')).catch(() => undefined))?.equals(content) === true, 30_000, 'the pull');
    await eventually(() => victim.events.some((e) => e.kind === 'applied'), 5_000, 'the applied event');

    // The peer follows the victim's index from the start, as a node that just connected does.
    const io = await peer.open(victim.node.network.peerId, INDEX_PROTOCOL);
    await io.writer.writeMessage(encodeIndexRequest(0));
    await io.writer.end();
    const sent: string[] = [];
    let covered = 0;
    while (covered < 2) {
      const { records, lastSequence } = decodeIndexBatch(await expectMessage(io.reader, MAX_INDEX_MESSAGE_BYTES, 'a batch'));
      sent.push(...records.map((r) => r.path));
      covered = lastSequence;
    }
    io.stream.abort(new Error('done'));
    assert.equal(covered, 2, 'both commits (the scan of local.txt, the pull) are covered');
    assert.deepEqual(sent, ['local.txt']);
  });
});
