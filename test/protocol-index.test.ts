import './protocol-helpers.js';
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Libp2p } from '@libp2p/interface';
import { INDEX_PROTOCOL } from '../src/protocol/constants.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { caughtUp, IndexExchange, type IndexExchangeInit } from '../src/protocol/index-exchange.js';
import { BatchBuilder, decodeIndexRequest } from '../src/protocol/messages-codec.js';
import { expectMessage, StreamReader, StreamWriter } from '../src/protocol/streams.js';
import type { RemoteRecord } from '../src/protocol/wire-record.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { FileChange, Store } from '../src/store/types.js';
import { eventually, fileChange, startNode } from './protocol-helpers.js';

interface Received {
  peer: string;
  records: RemoteRecord[];
  lastSequence: number;
}

/** An exchange that records every batch it is handed; stopped when the test ends. */
async function startExchange(t: TestContext, libp2p: Libp2p, store: Store, init: Partial<IndexExchangeInit> = {}) {
  const batches: Received[] = [];
  const errors: Error[] = [];
  const exchange = new IndexExchange({
    libp2p,
    store,
    onBatch: async (peer, records, lastSequence) => {
      batches.push({ peer, records, lastSequence });
    },
    onError: (_peer, error) => errors.push(error),
    retryDelay: { min: 50, max: 200 },
    ...init,
  });
  await exchange.start();
  t.after(() => exchange.stop());
  return { exchange, batches, errors };
}

async function commitFiles(store: Store, prefix: string, count: number): Promise<void> {
  const changes: FileChange[] = [];
  for (let i = 0; i < count; i++) changes.push(fileChange(`${prefix}/file-${String(i).padStart(5, '0')}.txt`, 1000 + i));
  for (let at = 0; at < changes.length; at += 1000) await store.commit(changes.slice(at, at + 1000));
}

async function received(store: Store, peer: Libp2p): Promise<number> {
  return (await store.getPeer(peer.peerId.toString())).received;
}

describe('index exchange', () => {
  it('sends all of a peer\'s 2500 records since 0 in batches of at most 1000, then stores the progress', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    await commitFiles(storeA, 'docs', 2500);
    await startExchange(t, a, storeA);
    // One wire batch per onBatch: none is merged with the next (see the test after this one).
    const atB = await startExchange(t, b, storeB, { applyRecords: 1000 });
    await b.dial(a.getMultiaddrs()[0]);

    await eventually(async () => (await received(storeB, a)) === storeA.lastSequence, 10_000, 'B to hold all of A\'s records');
    const records = atB.batches.flatMap((batch) => batch.records);
    assert.deepEqual(
      atB.batches.map((batch) => batch.records.length),
      [1000, 1000, 500],
    );
    assert.ok(atB.batches.every((batch) => batch.peer === a.peerId.toString()));
    assert.ok(atB.batches.every((batch) => batch.lastSequence === batch.records.at(-1)?.sequence));
    assert.equal(new Set(records.map((r) => r.path)).size, 2500);
    const sample = (await storeA.get('docs/file-01234.txt'))!;
    const expected = Object.fromEntries(Object.entries(sample).filter(([key]) => key !== 'inode'));
    assert.deepEqual(
      records.find((r) => r.path === sample.path),
      expected,
    );
    assert.ok(!('inode' in records[0]), 'a remote record has no inode');
    assert.deepEqual(atB.errors, []);
  });

  it('hands batches that arrived while one was applied to the next onBatch together, up to applyRecords records', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    await commitFiles(storeA, 'docs', 4500);
    const bytes = { sent: 0, received: 0 };
    const atA = await startExchange(t, a, storeA, { traffic: { sent: (_peer, n) => (bytes.sent += n), received: () => undefined } });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const calls: RemoteRecord[][] = [];
    await startExchange(t, b, storeB, {
      applyRecords: 2000,
      traffic: { sent: () => undefined, received: (_peer, n) => (bytes.received += n) },
      onBatch: async (_peer, records) => {
        calls.push(records);
        if (calls.length === 1) await held;
      },
    });
    await b.dial(a.getMultiaddrs()[0]);

    // The first batch is held while A sends the other four, until all of them are at B.
    const peerB = b.peerId.toString();
    await eventually(() => calls.length === 1 && atA.exchange.sentTo(peerB)?.sequence === 4500 && bytes.received === bytes.sent, 10_000, 'every batch at B');
    release();
    await eventually(async () => (await received(storeB, a)) === 4500, 10_000, 'all of A\'s records');
    assert.deepEqual(
      calls.map((records) => records.length),
      [1000, 2000, 1500],
    );
    const sequences = calls.flat().map((record) => record.sequence);
    assert.deepEqual(sequences, Array.from({ length: 4500 }, (_, k) => k + 1), 'every record once, in order');
  });

  it("knows how far it has read a peer's index: caught up only once everything up to the peer's head is handled", async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    await commitFiles(storeA, 'docs', 2500);
    const atA = await startExchange(t, a, storeA);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const atB = await startExchange(t, b, new MemoryStore(), {
      onBatch: async () => {
        if (++calls === 1) await held;
      },
    });
    const peerA = a.peerId.toString();
    assert.equal(atB.exchange.progressOf(peerA), undefined, 'not connected: nothing known');
    await b.dial(a.getMultiaddrs()[0]);

    // The first of three batches is being handled: A said how far its index goes.
    await eventually(() => calls === 1, 5000, 'the first batch');
    assert.deepEqual(atB.exchange.progressOf(peerA), { received: 0, head: 2500 });
    assert.equal(caughtUp(atB.exchange.progressOf(peerA)!), false);
    release();
    await eventually(() => atB.exchange.progressOf(peerA)?.received === 2500, 10_000, 'all of it read');
    assert.deepEqual(atB.exchange.progressOf(peerA), { received: 2500, head: 2500 });
    assert.equal(caughtUp(atB.exchange.progressOf(peerA)!), true);

    // A commits more: B hears of the new head with the records and catches up again.
    await commitFiles(storeA, 'more', 10);
    atA.exchange.notifyCommitted();
    await eventually(() => atB.exchange.progressOf(peerA)?.received === 2510, 10_000, 'the new records');
    assert.deepEqual(atB.exchange.progressOf(peerA), { received: 2510, head: 2510 });
  });

  it('has caught up with no peer before its first batch', () => {
    assert.equal(caughtUp({ received: 0, head: undefined }), false);
    assert.equal(caughtUp({ received: 7, head: undefined }), false);
    assert.equal(caughtUp({ received: 7, head: 7 }), true);
    assert.equal(caughtUp({ received: 6, head: 7 }), false);
  });

  it('after a restart asks only for records committed since the stored progress', async (t) => {
    const keyA = await generateKeyPair('Ed25519');
    const keyB = await generateKeyPair('Ed25519');
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    await commitFiles(storeA, 'old', 1200);
    const first = [await startNode(t, keyA), await startNode(t, keyB)];
    const before = [await startExchange(t, first[0], storeA), await startExchange(t, first[1], storeB)];
    await first[1].dial(first[0].getMultiaddrs()[0]);
    await eventually(async () => (await received(storeB, first[0])) === 1200, 10_000, 'the first sync');
    for (const { exchange } of before) await exchange.stop();
    for (const node of first) await node.stop();

    await commitFiles(storeA, 'new', 10);
    const [a, b] = [await startNode(t, keyA), await startNode(t, keyB)];
    await startExchange(t, a, storeA);
    const atB = await startExchange(t, b, storeB);
    await b.dial(a.getMultiaddrs()[0]);
    await eventually(async () => (await received(storeB, a)) === storeA.lastSequence, 10_000, 'the second sync');
    const paths = atB.batches.flatMap((batch) => batch.records.map((r) => r.path));
    assert.equal(paths.length, 10);
    assert.ok(paths.every((path) => path.startsWith('new/')));
    assert.deepEqual(atB.errors, []);
  });

  it('pushes a new commit over the open stream at once', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    await commitFiles(storeA, 'docs', 3);
    const atA = await startExchange(t, a, storeA);
    const atB = await startExchange(t, b, new MemoryStore());
    await b.dial(a.getMultiaddrs()[0]);
    await eventually(() => atB.batches.length === 1, 5000, 'the first batch');

    const started = performance.now();
    await storeA.commit([fileChange('docs/late.txt', 5)]);
    atA.exchange.notifyCommitted();
    await eventually(() => atB.batches.length === 2, 2000, 'the pushed batch');
    const elapsed = performance.now() - started;
    assert.deepEqual(
      atB.batches[1].records.map((r) => r.path),
      ['docs/late.txt'],
    );
    assert.ok(elapsed < 1000, `push took ${elapsed} ms`);
  });

  it('leaves out the records the peer holds exactly (heldByPeer), yet moves its progress past them', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    await commitFiles(storeA, 'docs', 4);
    const asked: string[] = [];
    const sessions = new Set<number>();
    const atA = await startExchange(t, a, storeA, {
      heldByPeer: (peer, record, session) => {
        assert.equal(peer, b.peerId.toString());
        asked.push(record.path);
        sessions.add(session);
        return record.path.endsWith('1.txt') || record.path.endsWith('3.txt');
      },
    });
    const atB = await startExchange(t, b, storeB);
    assert.equal(atA.exchange.sentTo(b.peerId.toString()), undefined, 'no session before the peer asks');
    await b.dial(a.getMultiaddrs()[0]);
    await eventually(async () => (await received(storeB, a)) === 4, 5000, 'progress past the last record');
    assert.deepEqual(asked, ['docs/file-00000.txt', 'docs/file-00001.txt', 'docs/file-00002.txt', 'docs/file-00003.txt']);
    assert.deepEqual(
      atB.batches.flatMap((batch) => batch.records.map((r) => r.path)),
      ['docs/file-00000.txt', 'docs/file-00002.txt'],
    );
    // The session asked about is the one that says how far it has sent: through the last record.
    assert.deepEqual(atA.exchange.sentTo(b.peerId.toString()), { session: [...sessions][0], sequence: 4 });
    assert.equal(sessions.size, 1);
  });

  it('a stream asked for again is a new session, covering what the peer asked from', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    await commitFiles(storeA, 'docs', 3);
    const atA = await startExchange(t, a, storeA);
    await startExchange(t, b, storeB);
    await b.dial(a.getMultiaddrs()[0]);
    const peerB = b.peerId.toString();
    await eventually(async () => (await received(storeB, a)) === 3, 5000, 'B handled all three');
    const first = atA.exchange.sentTo(peerB);
    assert.equal(first?.sequence, 3);
    // B's stream breaks; it asks again on a new stream, from its stored progress (3). Until its
    // request is read the new session covers nothing (0).
    for (const connection of b.getConnections()) for (const stream of connection.streams) stream.abort(new Error('broken'));
    await eventually(() => {
      const now = atA.exchange.sentTo(peerB);
      return now !== undefined && now.session !== first?.session && now.sequence === 3;
    }, 10_000, 'a new session, through what B asked from');
  });

  it('holds requests, both ways, until it is ready (the first scan): a peer connecting meanwhile is answered late, not refused', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    await commitFiles(storeA, 'a', 2);
    await commitFiles(storeB, 'b', 3);
    let scanned: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (scanned = resolve));
    const atA = await startExchange(t, a, storeA, { ready });
    const atB = await startExchange(t, b, storeB);
    await b.dial(a.getMultiaddrs()[0]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual([atA.batches, atB.batches], [[], []], 'nothing exchanged before A is ready');
    scanned();
    await eventually(() => atA.batches.length > 0 && atB.batches.length > 0, 5000, 'both indexes once A is ready');
    assert.deepEqual(atB.batches.flatMap((batch) => batch.records).length, 2);
    assert.deepEqual(atA.batches.flatMap((batch) => batch.records).length, 3);
    assert.deepEqual([atA.errors, atB.errors], [[], []], 'no refused stream, no retry');
  });

  it('keeps a quiet stream open with keep-alives, past the idle timeout', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    // Eight keep-alives per idle timeout: a loaded machine's event-loop stalls stay well inside it.
    const timing = { idleTimeout: 800, keepAliveInterval: 100 };
    const atA = await startExchange(t, a, storeA, timing);
    const atB = await startExchange(t, b, new MemoryStore(), timing);
    await b.dial(a.getMultiaddrs()[0]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.deepEqual(atB.errors, []);
    assert.deepEqual(atA.errors, []);
    await storeA.commit([fileChange('quiet.txt')]);
    atA.exchange.notifyCommitted();
    await eventually(() => atB.batches.length === 1, 2000, 'the batch after a quiet second');
  });

  it('stores progress only after onBatch resolves: a failed batch is asked for again', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    await commitFiles(storeA, 'docs', 5);
    await startExchange(t, a, storeA);
    let calls = 0;
    const handled: string[][] = [];
    const atB = await startExchange(t, b, storeB, {
      onBatch: async (_peer, records) => {
        calls++;
        if (calls === 1) {
          assert.equal(await received(storeB, a), 0);
          throw new Error('planner failed');
        }
        handled.push(records.map((r) => r.path));
      },
    });
    await b.dial(a.getMultiaddrs()[0]);
    await eventually(async () => (await received(storeB, a)) === 5, 5000, 'the retried batch');
    assert.equal(calls, 2);
    assert.equal(handled[0].length, 5);
    assert.match(atB.errors[0]?.message ?? '', /planner failed/);
  });

  it('refuses a hostile batch as ProtocolError and stores no progress', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)];
    const storeB = new MemoryStore();
    // A hand-made server that announces a record escaping the folder.
    const requests: number[] = [];
    await a.handle(INDEX_PROTOCOL, async (stream) => {
      const reader = new StreamReader(stream);
      requests.push(decodeIndexRequest(await expectMessage(reader, 64, 'request')));
      const good = { ...fileChange('ok.txt'), sequence: 1 };
      const builder = new BatchBuilder();
      builder.add(good);
      const bytes = builder.take(1, 1);
      // Same length, so the framing stays valid: 'ok.txt' becomes '../x.t'.
      const at = Buffer.from(bytes).indexOf('ok.txt');
      Buffer.from(bytes.buffer, bytes.byteOffset).write('../x.t', at);
      await new StreamWriter(stream).writeMessage(bytes);
    });
    let batches = 0;
    const atB = await startExchange(t, b, storeB, {
      onBatch: async () => {
        batches++;
      },
    });
    await b.dial(a.getMultiaddrs()[0]);
    await eventually(() => atB.errors.length > 0, 5000, 'the protocol error');
    assert.ok(atB.errors[0] instanceof ProtocolError, String(atB.errors[0]));
    assert.match(atB.errors[0].message, /peer misbehaved: .*"\.\.\/x\.t".*"\.\." segment/);
    assert.equal(batches, 0);
    assert.equal(await received(storeB, a), 0);
    assert.equal(requests[0], 0);
  });
});
