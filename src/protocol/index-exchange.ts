import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { FileRecord, Store } from '../store/types.js';
import {
  INDEX_CONNECTION_CLOSE_WAIT,
  INDEX_FIRST_MESSAGE_TIMEOUT,
  INDEX_IDLE_TIMEOUT,
  INDEX_KEEP_ALIVE_INTERVAL,
  INDEX_MAX_INBOUND_STREAMS,
  INDEX_MAX_OUTBOUND_STREAMS,
  INDEX_PROTOCOL,
  MAX_APPLY_BATCH_BYTES,
  MAX_APPLY_RECORDS,
  MAX_INDEX_MESSAGE_BYTES,
  MAX_INDEX_REQUEST_BYTES,
} from './constants.js';
import { asError, ProtocolError, StreamEndedError, UnsendableRecordError } from './errors.js';
import { BatchReadAhead, type ReadBatch } from './batch-read-ahead.js';
import { BatchBuilder, decodeIndexBatch, decodeIndexRequest, encodeIndexRequest } from './messages-codec.js';
import { expectMessage, guardStream, IdleTimeout, readMessage, StreamReader, StreamWriter } from './streams.js';
import type { RemoteRecord } from './wire-record.js';
import { metered, type TrafficMeter } from './traffic.js';

/**
 * `/mesh/index/1.0.0`: each side follows the other's index (docs/mesh-design.md, "Index exchange").
 *
 * Client: when a peer connects, open one stream to it and send `IndexRequest { since }`, since being
 * the last of its sequences we hold (the store's `received` for that peer); then read batches,
 * hand each to `onBatch` and only once that resolves store `received = lastSequence`, so a crash
 * or restart asks again for exactly what was not yet handled. The next batches are read while one
 * is handled, and its progress is written while the next is (in order). A stream that fails is
 * reopened with backoff while the peer stays connected. One that ended with its connection (see
 * endedWithConnection) is no failure worth a warning: the peer left (its disconnect is reported),
 * or the connection was a duplicate, and the stream is reopened on the other one at once.
 *
 * Server: answer with every record above `since`, in batches of at most 1000 records and about
 * 1 MiB, the last (or an empty one) closing the first sweep; then keep the stream open and, after
 * each `notifyCommitted()`, send what was committed since the last record sent. When nothing
 * happens an empty batch goes out every keep-alive interval, so the client can tell a quiet peer
 * from a dead one. Only this device's own records are announced: the store holds nothing else. A
 * record the peer holds exactly (`heldByPeer`: it announced it, this node applied it) is left out.
 * Each server session has an id and knows how far it has sent (`sentTo`): a record the peer will
 * get from that session may let a later one be left out of it (see Echoes.merged).
 */

/** A client's stream ended with its connection (see endedWithConnection): not reported. */
class ConnectionClosedError extends StreamEndedError {
  override name = 'ConnectionClosedError';
}

/** What the exchange needs of a libp2p node. */
export type IndexHost = Pick<Libp2p, 'handle' | 'unhandle' | 'getConnections' | 'addEventListener' | 'removeEventListener'>;

export interface IndexExchangeInit {
  libp2p: IndexHost;
  /** This folder's state: records to announce, and each peer's `received` progress. */
  store: Store;
  /**
   * A batch of a peer's records, in its sequence order; `lastSequence` is the highest sequence the
   * batch covers. Resolve once what must be acted on is durable: progress is stored after it.
   * A rejection ends the stream (it is reopened later from the stored progress). Batches that
   * arrived while an earlier one was handled come as one, see `applyRecords`.
   */
  onBatch(peer: string, records: RemoteRecord[], lastSequence: number): Promise<void>;
  /**
   * Whether `peer` already holds `record` exactly (it announced that very record, and this node
   * applied it), or learns all it says from what `session` (a server session's id, see `sentTo`)
   * has sent it: then it is not sent to that peer, and the batch's lastSequence still covers it.
   * Asked once per record about to be sent. Default: every record is sent.
   */
  heldByPeer?(peer: string, record: FileRecord, session: number): boolean;
  /** A stream to or from `peer` failed (ProtocolError: the peer misbehaved), or a record could not be sent. */
  onError?(peer: string, error: Error): void;
  /** The first message (request, or first batch) must come within this (ms; default 30 s). */
  firstMessageTimeout?: number;
  /** A client that hears nothing for this long gives the stream up; so does a server whose writes stall (ms; default 180 s). */
  idleTimeout?: number;
  /** An idle server sends an empty batch this often (ms; default 60 s). */
  keepAliveInterval?: number;
  /** Backoff before reopening a failed stream: doubles from `min` to `max` (ms; default 1 s to 60 s). */
  retryDelay?: { min: number; max: number };
  /**
   * Batches already received when onBatch is next called are handed to it together while they
   * hold fewer than this many records (default MAX_APPLY_RECORDS) and MAX_APPLY_BATCH_BYTES.
   */
  applyRecords?: number;
  /**
   * Resolves once the store may be served and peers' records applied (the node's first scan).
   * Until then the protocol is registered but a peer's request waits for it (within the peer's
   * first-message timeout) and no stream is opened to peers: a peer that connects meanwhile is
   * answered late, not refused and retried. Default: ready at once.
   */
  ready?: Promise<unknown>;
  /** Told the bytes each peer's streams move. */
  traffic?: TrafficMeter;
}

/** Where a peer's server session stands: every record up to `sequence` is sent on it or was already held. */
export interface SentThrough {
  /** The session's id: once it ends, nothing it sent can be counted on. */
  readonly session: number;
  readonly sequence: number;
}

interface ServerSession {
  readonly id: number;
  readonly peer: string;
  readonly stream: Stream;
  /**
   * The last sequence covered by a batch written on this stream, or the progress the peer asked
   * from (durably handled by it; 0 until its request is read); records between are in its
   * stream, in order, while it lasts.
   */
  sentThrough: number;
  /** A commit happened since the last sweep began. */
  dirty: boolean;
  wake: (() => void) | undefined;
}

interface ClientSession {
  readonly peerId: PeerId;
  readonly controller: AbortController;
  progress: IndexProgress;
}

/** How far this node has followed a peer's index. */
export interface IndexProgress {
  /** The peer's last sequence this node has handled (stored as its progress). */
  readonly received: number;
  /** The peer's highest sequence as of its latest batch; undefined until a batch has come. */
  readonly head: number | undefined;
}

/** Whether a peer's index is followed all the way: a batch came, and everything up to its head is handled. */
export function caughtUp(progress: IndexProgress): boolean {
  return progress.head !== undefined && progress.received >= progress.head;
}

export class IndexExchange {
  private readonly servers = new Set<ServerSession>();
  private nextSessionId = 1;
  private readonly serverTasks = new Set<Promise<void>>();
  private readonly clients = new Map<string, ClientSession>();
  private readonly clientTasks = new Set<Promise<void>>();
  private running = false;
  /** Resolves when stop() is called (ends a wait for `ready`). */
  private halted: Promise<void> = Promise.resolve();
  private halt: () => void = () => undefined;
  private readonly firstMessageTimeout: number;
  private readonly idleTimeout: number;
  private readonly keepAliveInterval: number;
  private readonly retryDelay: { min: number; max: number };
  private readonly applyRecords: number;

  constructor(private readonly init: IndexExchangeInit) {
    this.firstMessageTimeout = init.firstMessageTimeout ?? INDEX_FIRST_MESSAGE_TIMEOUT;
    this.idleTimeout = init.idleTimeout ?? INDEX_IDLE_TIMEOUT;
    this.keepAliveInterval = init.keepAliveInterval ?? INDEX_KEEP_ALIVE_INTERVAL;
    this.retryDelay = init.retryDelay ?? { min: 1000, max: 60_000 };
    this.applyRecords = init.applyRecords ?? MAX_APPLY_RECORDS;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.halted = new Promise((resolve) => (this.halt = resolve));
    await this.init.libp2p.handle(
      INDEX_PROTOCOL,
      (stream, connection) => {
        const task = this.serve(stream, connection);
        this.serverTasks.add(task);
        void task.finally(() => this.serverTasks.delete(task));
      },
      { maxInboundStreams: INDEX_MAX_INBOUND_STREAMS, maxOutboundStreams: INDEX_MAX_OUTBOUND_STREAMS },
    );
    this.init.libp2p.addEventListener('peer:connect', this.onConnect);
    this.init.libp2p.addEventListener('peer:disconnect', this.onDisconnect);
    for (const connection of this.init.libp2p.getConnections()) this.follow(connection.remotePeer);
  }

  /** Closes every stream and waits for their work (an onBatch in progress included) to end. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.halt();
    this.init.libp2p.removeEventListener('peer:connect', this.onConnect);
    this.init.libp2p.removeEventListener('peer:disconnect', this.onDisconnect);
    await this.init.libp2p.unhandle(INDEX_PROTOCOL);
    const stopped = new StreamEndedError('index exchange stopped');
    for (const client of this.clients.values()) client.controller.abort(stopped);
    for (const server of this.servers) server.stream.abort(stopped);
    await Promise.allSettled([...this.clientTasks, ...this.serverTasks]);
  }

  /** Call after every commit to the store: open streams then send what is new. */
  notifyCommitted(): void {
    for (const server of this.servers) {
      server.dirty = true;
      server.wake?.();
    }
  }

  /** How far this node has followed `peer`'s index, while it is connected; undefined otherwise. */
  progressOf(peer: string): IndexProgress | undefined {
    const client = this.clients.get(peer);
    return client === undefined || client.controller.signal.aborted ? undefined : client.progress;
  }

  /**
   * How far the one server session open for `peer` has sent this node's index (undefined when
   * there is none, or more than one: a peer reconnecting). Every record at or below the sequence
   * was in a batch written on that session's stream, left out as held by the peer, or handled by
   * the peer before it asked: the peer gets it unless the session ends first.
   */
  sentTo(peer: string): SentThrough | undefined {
    let found: ServerSession | undefined;
    for (const server of this.servers) {
      if (server.peer !== peer) continue;
      if (found !== undefined) return undefined;
      found = server;
    }
    return found === undefined || found.stream.status !== 'open' ? undefined : { session: found.id, sequence: found.sentThrough };
  }

  /** Peers whose index this node currently follows (a stream open or being reopened). */
  get following(): string[] {
    return [...this.clients.keys()];
  }

  /** Waits for `ready` (or stop); true if still running. A `ready` that rejects never comes. */
  private async untilReady(): Promise<boolean> {
    const { ready } = this.init;
    if (ready !== undefined) await Promise.race([ready.catch(() => this.halted), this.halted]);
    return this.running;
  }

  private report(peer: string, error: unknown): void {
    this.init.onError?.(peer, asError(error));
  }

  // ---- Server ----

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString();
    if (!(await this.untilReady())) {
      stream.abort(new StreamEndedError('index exchange stopped'));
      return;
    }
    const idle = guardStream(stream, new IdleTimeout(this.idleTimeout, `index stream from ${peer}`));
    idle.touch(this.firstMessageTimeout);
    const meter = metered(this.init.traffic, peer);
    const reader = new StreamReader(stream, { onActivity: () => idle.touch(), ...meter });
    const writer = new StreamWriter(stream, { onActivity: () => idle.touch(), ...meter });
    const session: ServerSession = { id: this.nextSessionId++, peer, stream, sentThrough: 0, dirty: true, wake: undefined };
    const onClose = () => session.wake?.();
    stream.addEventListener('close', onClose);
    this.servers.add(session);
    let failure: { error: unknown } | undefined;
    try {
      if (!this.running) throw new StreamEndedError('index exchange stopped');
      const since = decodeIndexRequest(await expectMessage(reader, MAX_INDEX_REQUEST_BYTES, 'the index request'));
      // The client sends nothing after its request: anything more breaks the protocol.
      reader.expectEnd('the index request').catch((error: unknown) => {
        if (!(error instanceof ProtocolError)) return; // the stream ended: the loop below notices
        this.report(peer, error);
        stream.abort(error);
      });
      // A `since` beyond our last sequence is progress from an earlier life of this index: resend all.
      session.sentThrough = since > this.init.store.lastSequence ? 0 : since;
      let first = true;
      while (this.running && stream.status === 'open') {
        session.dirty = false;
        await this.sweep(session, writer, first);
        first = false;
        if (session.dirty) continue;
        // Waiting for a commit is not idleness; keep-alives are sent meanwhile.
        idle.stop();
        const woken = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), this.keepAliveInterval);
          session.wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        session.wake = undefined;
        if (!woken && !session.dirty && stream.status === 'open') {
          session.dirty = true; // the sweep finds nothing and sends an empty batch: the keep-alive
          first = true;
        }
      }
    } catch (error) {
      if (stream.status === 'open') stream.abort(asError(error));
      failure = { error };
    } finally {
      idle.stop();
      reader.release();
      stream.removeEventListener('close', onClose);
      this.servers.delete(session);
    }
    if (failure !== undefined && this.running && !(await this.endedWithConnection(connection, failure.error))) this.report(peer, failure.error);
  }

  /**
   * Sends every record above the session's `sentThrough` in batches, moving it on. An empty
   * batch goes out when `always` (the first sweep's end, or a keep-alive) and nothing else did.
   */
  private async sweep(session: ServerSession, writer: StreamWriter, always: boolean): Promise<void> {
    const { peer, sentThrough: sent } = session;
    const builder = new BatchBuilder();
    let last = sent;
    let batches = 0;
    const add = (record: RemoteRecord): boolean => {
      try {
        return builder.add(record);
      } catch (error) {
        // A record no peer would accept (say, a file over 128 GiB) is skipped, not fatal: the
        // batch's lastSequence still moves past it.
        if (!(error instanceof UnsendableRecordError)) throw error;
        this.report(peer, error);
        return true;
      }
    };
    const write = async (through: number): Promise<void> => {
      await writer.writeMessage(builder.take(through, this.init.store.lastSequence));
      session.sentThrough = through;
      batches++;
    };
    for await (const record of this.init.store.since(sent)) {
      if (this.init.heldByPeer?.(peer, record, session.id) !== true && !add(record)) {
        await write(last);
        add(record);
      }
      last = record.sequence;
    }
    if (builder.count > 0 || last > sent || (always && batches === 0)) await write(last);
  }

  // ---- Client ----

  private readonly onConnect = (event: CustomEvent<PeerId>): void => {
    this.follow(event.detail);
  };

  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    const client = this.clients.get(event.detail.toString());
    client?.controller.abort(new StreamEndedError('peer disconnected'));
  };

  private follow(peerId: PeerId): void {
    const peer = peerId.toString();
    // A client still winding down after a disconnect does not count: a reconnect gets a new one.
    const existing = this.clients.get(peer);
    if (!this.running || (existing !== undefined && !existing.controller.signal.aborted)) return;
    const client: ClientSession = { peerId, controller: new AbortController(), progress: { received: 0, head: undefined } };
    this.clients.set(peer, client);
    const task = this.runClient(peer, client).finally(() => {
      if (this.clients.get(peer) === client) this.clients.delete(peer);
      this.clientTasks.delete(task);
    });
    this.clientTasks.add(task);
  }

  private connected(peerId: PeerId): boolean {
    return this.init.libp2p.getConnections(peerId).length > 0;
  }

  private async runClient(peer: string, client: ClientSession): Promise<void> {
    const { signal } = client.controller;
    if (!(await this.untilReady())) return;
    let delay = this.retryDelay.min;
    while (this.running && !signal.aborted && this.connected(client.peerId)) {
      let progressed = false;
      try {
        await this.session(peer, client, () => (progressed = true));
      } catch (error) {
        if (error instanceof ConnectionClosedError) {
          // Another connection to the peer (a duplicate's close left it): at once, on that one.
          if (this.openConnection(client.peerId) !== undefined) continue;
        } else if (this.running && !signal.aborted) {
          this.report(peer, error);
        }
      }
      if (progressed) delay = this.retryDelay.min;
      if (!this.running || signal.aborted) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        signal.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
      });
      delay = Math.min(delay * 2, this.retryDelay.max);
    }
  }

  /**
   * Whether a stream ended by `error` ended with its connection: the peer left (its disconnect is
   * reported on its own) or the connection was a duplicate from a simultaneous dial, which the
   * lower peer id closes (see MeshNetwork). The stream can end a moment before its connection is
   * seen to close, so this waits up to INDEX_CONNECTION_CLOSE_WAIT for that. A ProtocolError is
   * the peer's fault, whatever happened to the connection.
   */
  private async endedWithConnection(connection: Connection, error: unknown): Promise<boolean> {
    if (error instanceof ProtocolError) return false;
    if (connection.status !== 'open') return true;
    const libp2p = this.init.libp2p;
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        libp2p.removeEventListener('connection:close', onClose);
        resolve(connection.status !== 'open');
      };
      const onClose = (event: CustomEvent<Connection>) => {
        if (event.detail.id === connection.id) done();
      };
      const timer = setTimeout(done, INDEX_CONNECTION_CLOSE_WAIT);
      libp2p.addEventListener('connection:close', onClose);
    });
  }

  /** A client's `error`, or a ConnectionClosedError where the stream ended with its connection. */
  private async quietIfClosed(peer: string, connection: Connection, error: unknown, signal: AbortSignal): Promise<unknown> {
    if (signal.aborted || !(await this.endedWithConnection(connection, error))) return error;
    return new ConnectionClosedError(`index stream to ${peer} ended with its connection`, { cause: error });
  }

  /** An open connection to the peer (none while it is closing). */
  private openConnection(peerId: PeerId): Connection | undefined {
    return this.init.libp2p.getConnections(peerId).find((c) => c.status === 'open');
  }

  /** Stores that this node has handled `peer`'s records up to `received`. */
  private async storeProgress(peer: string, received: number): Promise<void> {
    const progress = await this.init.store.getPeer(peer);
    await this.init.store.setPeer(peer, { ...progress, received });
  }

  /** One stream's life: request, then batches until the stream ends. */
  private async session(peer: string, client: ClientSession, onProgress: () => void): Promise<void> {
    const { signal } = client.controller;
    const store = this.init.store;
    // On a connection of our choosing, so that a failure can be told from that connection's close.
    const connection = this.openConnection(client.peerId);
    if (connection === undefined) throw new ConnectionClosedError(`no open connection to ${peer}`);
    let stream: Stream;
    try {
      stream = await connection.newStream(INDEX_PROTOCOL, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.firstMessageTimeout)]) });
    } catch (error) {
      throw await this.quietIfClosed(peer, connection, error, signal);
    }
    const onAbort = () => stream.abort(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    const idle = guardStream(stream, new IdleTimeout(this.idleTimeout, `index stream to ${peer}`));
    idle.touch(this.firstMessageTimeout);
    const meter = metered(this.init.traffic, peer);
    // Batches read ahead during an apply are not the peer's reply to anything: the apply is idle time.
    let applying = false;
    const onActivity = () => {
      if (!applying) idle.touch();
    };
    const reader = new StreamReader(stream, { onActivity, ...meter });
    const writer = new StreamWriter(stream, { onActivity, ...meter });
    let saving: Promise<void> = Promise.resolve();
    let applyFailed = false;
    try {
      if (signal.aborted) throw signal.reason;
      let received = (await store.getPeer(peer)).received;
      client.progress = { ...client.progress, received };
      await writer.writeMessage(encodeIndexRequest(received));
      await writer.end(idle.signal);
      let previous: number | undefined;
      const readBatch = async (): Promise<ReadBatch | undefined> => {
        const bytes = await readMessage(reader, MAX_INDEX_MESSAGE_BYTES, 'an index batch');
        if (bytes === undefined) return undefined; // the server closed the stream (it stopped)
        const batch = decodeIndexBatch(bytes);
        const { records, lastSequence } = batch;
        if (previous !== undefined) {
          // The first batch may start anywhere (the server may resend all); later ones move on.
          if (lastSequence < previous) throw new ProtocolError(`batch goes back from sequence ${previous} to ${lastSequence}`);
          if (records.length > 0 && records[0].sequence <= previous) {
            throw new ProtocolError(`batch resends sequence ${records[0].sequence} (already had ${previous})`);
          }
        }
        previous = lastSequence;
        return { batch, bytes: bytes.length };
      };
      // Batches that came together go to one apply: it keeps its transfers flowing where an apply
      // per batch would drain them and start again at each batch's end.
      const groups = new BatchReadAhead(readBatch, () => reader.messageQueued(), { records: this.applyRecords, bytes: MAX_APPLY_BATCH_BYTES });
      for (;;) {
        const group = await groups.next();
        if (group === undefined) break;
        const records = group.length === 1 ? group[0].records : group.flatMap((batch) => batch.records);
        const { lastSequence, head } = group[group.length - 1];
        client.progress = { ...client.progress, head };
        idle.stop(); // we are the busy side now
        applying = true;
        try {
          if (records.length > 0) await this.init.onBatch(peer, records, lastSequence);
        } catch (error) {
          applyFailed = true;
          throw error;
        } finally {
          applying = false;
        }
        // Stored in order, but while the next group is applied: it is not needed before then.
        await saving;
        if (lastSequence !== received) {
          received = lastSequence;
          saving = this.storeProgress(peer, lastSequence).then(() => {
            client.progress = { ...client.progress, received: lastSequence };
          });
        }
        onProgress();
        idle.touch();
      }
      await saving;
    } catch (error) {
      stream.abort(asError(error));
      // A batch this node could not apply is its own news, whatever happens to the connection.
      throw applyFailed ? error : await this.quietIfClosed(peer, connection, error, signal);
    } finally {
      idle.stop();
      signal.removeEventListener('abort', onAbort);
      await saving.catch(() => undefined); // a retry reads the progress back
      reader.release();
      if (stream.status === 'open') await stream.close().catch(() => undefined);
    }
  }
}
