import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { peerIdFromString } from '@libp2p/peer-id';
import { FolderWatcher } from '../folder/watcher.js';
import { STATE_DIRECTORY } from '../folder/folder-root.js';
import { openLocalFolder, type LocalFolder } from '../folder/local-folder.js';
import type { ScanReport } from '../folder/report.js';
import {
  fetchDelta,
  fetchFiles,
  IndexExchange,
  TransferServer,
  type FetchedFile,
  type FetchResolution,
  type Resolution,
  type SentThrough,
  type TrafficMeter,
  type TransferRequest,
  type RemoteRecord as WireRemoteRecord,
} from '../protocol/index.js';
import { ControlServer } from '../control/control-server.js';
import { controlSocketPath } from '../control/socket-path.js';
import { STATUS_VERSION, type NodeStatus } from '../control/status.js';
import { compare } from '../store/version-vector.js';
import { Applier, scannerHooks } from './applier.js';
import { Availability } from './availability.js';
import { Echoes } from './echoes.js';
import type { ApplyReport } from './apply-report.js';
import { loadPeerKey, resolveMeshKey, type ResolvedMeshKey } from './keys.js';
import { createMeshNetwork, type MeshNetwork, type NetworkTiming } from './network.js';
import type { RemoteRecord } from './remote-record.js';
import { StatusTracker } from './status-tracker.js';
import { BulkFlow, meterAll } from './bulk-flow.js';
import { NodeError } from './errors.js';
import { readFolderConfig, type FolderConfig } from './config.js';
import { limited, RateLimiter } from './rate-limiter.js';
import { MISBEHAVING_PEER_BAN_MS, PeerPenalties } from './peer-penalties.js';
import { SettleRescans } from './settle-rescans.js';
import { MIN_CACHED_SIGNATURE_BYTES, SignatureCache } from './signature-cache.js';

/** Delta bytes accepted beyond a file's size (the delta's own framing: block references, lengths). */
export const DELTA_MARGIN_BYTES = 64 * 1024;
/** Under the state directory: the signature cache's entries. */
export const SIGNATURES_DIRECTORY = 'signatures';

export interface MeshNodeInit {
  /** The folder to sync (must exist). */
  dir: string;
  /** `--key`; else MESH_KEY, else the stored key, else a new one. */
  key?: string;
  replaceKey?: boolean;
  env?: Readonly<Record<string, string | undefined>>;
  port?: number;
  host?: string;
  peers?: readonly string[];
  mdns?: boolean;
  /** Serve `mesh status` on the folder's control socket (default true). */
  control?: boolean;
  /** Serve the dashboard on this TCP address too (`--gui`); default none. */
  gui?: { host: string; port: number };
  /** Files pulled at once (default APPLY_CONCURRENCY). */
  pullConcurrency?: number;
  /** Quiet time after a local change before it is scanned (default DEFAULT_WATCH_DELAY_MS). */
  watchDelayMs?: number;
  /** Upload and download limits in KiB/s (0 or absent: none). */
  maxSendKiBps?: number;
  maxRecvKiBps?: number;
  timing?: Partial<NetworkTiming>;
  /** Told what the node does (see MeshNodeEvent); default nothing. */
  onEvent?(event: MeshNodeEvent): void;
  /** Told when file data starts and stops flowing in bulk, to or from any peer (see BulkFlow). */
  onBulkFlow?(flowing: boolean): void;
  /** File data per window that makes a bulk flow; default BULK_BYTES_PER_WINDOW. */
  bulkFlowBytesPerWindow?: number;
}

/** What a running node reports, for its log. */
export type MeshNodeEvent =
  | { kind: 'listening' }
  | { kind: 'peer-connected'; peer: string; address: string }
  | { kind: 'peer-disconnected'; peer: string }
  | { kind: 'applied'; report: ApplyReport; peer: string }
  | { kind: 'scanned'; report: ScanReport }
  /** The full scan at start finished (what it hashed tells whether a restart had to reread files). */
  | { kind: 'initial-scan'; report: ScanReport }
  | { kind: 'error'; message: string; peer?: string }
  /** The dashboard (`--gui`) is served at this URL. */
  | { kind: 'dashboard'; url: string; loopback: boolean };

/** `init` with the folder's settings filling in what it leaves out (a flag replaces a setting). */
function withSettings(init: MeshNodeInit, config: FolderConfig): MeshNodeInit {
  const given = Object.fromEntries(Object.entries(init).filter(([, value]) => value !== undefined));
  return { ...config, ...given, dir: init.dir };
}

function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1';
}

function limiterOf(kibps: number | undefined): RateLimiter | undefined {
  return kibps === undefined || kibps === 0 ? undefined : new RateLimiter(kibps * 1024);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function committedSomething(report: ScanReport): boolean {
  const c = report.counts;
  return c.added + c.modified + c.deleted + c.moved + c.metadataUpdated > 0;
}

/**
 * One folder in a mesh: the local folder (index, scanner, lock), the libp2p network, the index
 * exchange (peers' records in, applied by the applier), the transfer server (our files out, as
 * deltas) and the watcher (local changes rescanned and announced). See docs/mesh-design.md.
 */
export class MeshNode {
  private exchange: IndexExchange | undefined;
  private server: TransferServer | undefined;
  private watcher: FolderWatcher | undefined;
  private applier: Applier | undefined;
  private control: ControlServer | undefined;
  private readonly startedAt = new Date();
  private stopping: Promise<void> | undefined;
  /** Paths applied recently, and the watcher's events on paths being applied: rescanned once the applies settle. */
  private readonly settling = new SettleRescans({
    scan: (paths) => this.scan(paths),
    onError: (error) => this.emit({ kind: 'error', message: `rescan: ${messageOf(error)}` }),
  });
  /** Which connected peers announced which file versions: a pull's other sources. */
  private readonly availability = new Availability();
  /** Records applied as a peer announced them: not announced back to it. */
  private readonly echoes = new Echoes();
  /** Which peers misbehaved, and whether enough to be banned. */
  private readonly penalties = new PeerPenalties();

  /** What `mesh status` reports. */
  readonly tracker: StatusTracker;
  private readonly bulkFlow: BulkFlow;
  /** Where the file protocols (transfer, fetch) count their bytes: the status and the bulk flow. */
  private readonly traffic: TrafficMeter;
  /** Signatures of large pulled files, for the next edit of each (signature-cache.ts). */
  private readonly signatures: SignatureCache;

  private constructor(
    readonly folder: LocalFolder,
    readonly network: MeshNetwork,
    readonly meshKey: ResolvedMeshKey,
    private readonly init: MeshNodeInit,
  ) {
    // The exchange is made in start(); until then no peer is connected.
    this.tracker = new StatusTracker(folder.root, folder.store, (peer) => this.exchange?.progressOf(peer));
    this.bulkFlow = new BulkFlow({ onChange: (flowing) => this.init.onBulkFlow?.(flowing), bytesPerWindow: init.bulkFlowBytesPerWindow });
    this.traffic = meterAll(this.tracker, this.bulkFlow);
    this.signatures = new SignatureCache(join(folder.root, STATE_DIRECTORY, SIGNATURES_DIRECTORY), folder.root, folder.store, (message) =>
      this.emit({ kind: 'error', message }),
    );
  }

  /**
   * Opens the folder, reads its settings (`.mesh/config`; what `init` gives replaces them), resolves
   * the keys and builds the network; nothing runs until start().
   */
  static async open(given: MeshNodeInit): Promise<MeshNode> {
    const folder = await openLocalFolder(given.dir);
    try {
      const init = withSettings(given, await readFolderConfig(folder.root));
      const meshKey = await resolveMeshKey(folder.root, { key: init.key, env: init.env, replace: init.replaceKey });
      const privateKey = await loadPeerKey(folder.root);
      const network = await createMeshNetwork({
        meshKey: meshKey.key,
        privateKey,
        port: init.port,
        host: init.host,
        staticPeers: init.peers,
        mdns: init.mdns,
        timing: init.timing,
      });
      return new MeshNode(folder, network, meshKey, init);
    } catch (error) {
      await folder.close();
      throw error;
    }
  }

  get root(): string {
    return this.folder.root;
  }

  private emit(event: MeshNodeEvent): void {
    this.init.onEvent?.(event);
  }

  /** Starts listening, scans the whole folder, then follows peers and the folder. */
  async start(): Promise<void> {
    const { folder, network } = this;
    await network.start();
    this.emit({ kind: 'listening' });
    network.on('peer:connect', (e) => {
      this.tracker.peerConnected(e.peerId, e.remoteAddress);
      this.emit({ kind: 'peer-connected', peer: e.peerId, address: e.remoteAddress });
    });
    network.on('peer:disconnect', (e) => {
      this.tracker.peerDisconnected(e.peerId);
      this.availability.peerGone(e.peerId);
      this.echoes.peerGone(e.peerId);
      this.emit({ kind: 'peer-disconnected', peer: e.peerId });
    });

    const receiveLimit = limiterOf(this.init.maxRecvKiBps);
    const sendLimit = limiterOf(this.init.maxSendKiBps);
    this.applier = new Applier({
      ...scannerHooks(folder.scanner),
      concurrency: this.init.pullConcurrency,
      store: folder.store,
      signatures: this.signatures,
      lock: folder.lock,
      sources: (remote) => this.sourcesOf(remote),
      onPullFailed: (peer, error) => this.penalise(peer, error),
      exchange: (remote, signature, _attempt, answers, contentChecked) =>
        this.tracked(
          remote,
          receiveLimit,
          fetchDelta(
            network.libp2p,
            peerIdFromString(remote.peer),
            { path: remote.path, version: remote.version, contentHash: remote.contentHash, contentChecked },
            signature,
            { maxBytes: remote.size + DELTA_MARGIN_BYTES, traffic: this.traffic, answers },
          ),
        ),
      fetchFiles: (peer, remotes) =>
        this.trackedFetch(
          peer,
          remotes,
          receiveLimit,
          fetchFiles(
            network.libp2p,
            peerIdFromString(peer),
            remotes.map((remote) => ({ request: { path: remote.path, version: remote.version, contentHash: remote.contentHash }, size: remote.size })),
            { traffic: this.traffic },
          ),
        ),
    });
    this.server = new TransferServer({
      libp2p: network.libp2p,
      resolve: (request) => this.resolve(request),
      resolveMany: (requests) => this.resolveMany(requests),
      onError: (peer, error) => {
        this.emit({ kind: 'error', peer, message: `transfer: ${error.message}` });
        this.penalise(peer, error);
      },
      throttle: sendLimit === undefined ? undefined : (delta) => limited(delta, sendLimit),
      traffic: this.traffic,
    });
    // Peers that connect during the first scan wait for it, rather than being refused and retried.
    let scanned: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (scanned = resolve));
    this.exchange = new IndexExchange({
      libp2p: network.libp2p,
      store: folder.store,
      ready,
      // Records are not file data: a large index exchange is no bulk flow (see BulkFlow).
      traffic: this.tracker,
      onBatch: (peer, records) => this.onBatch(peer, records),
      heldByPeer: (peer, record, session) => this.echoes.isEcho(peer, record, session),
      onError: (peer, error) => {
        this.emit({ kind: 'error', peer, message: `index exchange: ${error.message}` });
        this.penalise(peer, error);
      },
    });

    await this.exchange.start();
    // Watching starts before the first scan reads the folder, and its rescans wait for that scan: a
    // change made while the node starts is found by the scan or rescanned after it, never left to
    // the hourly full rescan.
    let firstScanEnded: (succeeded: boolean) => void = () => undefined;
    const firstScan = new Promise<boolean>((resolve) => (firstScanEnded = resolve));
    this.watcher = new FolderWatcher({
      root: folder.root,
      delayMs: this.init.watchDelayMs,
      rescan: async (paths) => {
        if (!(await firstScan)) return;
        if (paths === undefined) await this.scan(undefined);
        else {
          const now = this.settling.watched(paths);
          if (now.length > 0) await this.scan(now);
        }
      },
      onError: (error) => this.emit({ kind: 'error', message: `watcher: ${error.message}` }),
    });
    await this.watcher.start();
    let succeeded = false;
    try {
      this.emit({ kind: 'initial-scan', report: await this.scan(undefined, true) });
      await this.server.start();
      scanned();
      succeeded = true;
    } finally {
      // A rescan already waiting goes on, or (the start failed) gives up: stop() waits for it.
      firstScanEnded(succeeded);
    }
    const { gui } = this.init;
    if (this.init.control !== false || gui !== undefined) {
      this.control = new ControlServer({ status: () => this.status() });
      if (this.init.control !== false) await this.control.listenSocket(controlSocketPath(folder.root));
      if (gui !== undefined) {
        const bound = await this.control.listenTcp(gui.host, gui.port).catch((error: NodeJS.ErrnoException) => {
          const where = `${gui.host}:${gui.port}`;
          if (error.code === 'EADDRINUSE') throw new NodeError(`the dashboard address ${where} is in use (choose another with --gui HOST:PORT)`);
          if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') throw new NodeError(`the dashboard address ${where} is not an address of this machine`);
          throw error;
        });
        const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
        this.emit({ kind: 'dashboard', url: `http://${host}:${bound.port}/`, loopback: isLoopbackAddress(bound.address) });
      }
    }
  }

  /** What `mesh status` shows: this node, its folder, its peers, pulls in progress and conflict copies. */
  async status(): Promise<NodeStatus> {
    const { tracker, network } = this;
    return {
      version: STATUS_VERSION,
      node: {
        id: network.peerId,
        device: this.folder.store.deviceId,
        addresses: network.libp2p.getMultiaddrs().map((address) => address.toString()),
        startedAt: this.startedAt.toISOString(),
      },
      folder: await tracker.folder(),
      peers: tracker.peerList(),
      transfers: tracker.transferList(),
      received: tracker.pulledBytes,
      conflicts: await tracker.conflicts(),
    };
  }

  /** A pull's delta, held to the download limit and counted into the status as it arrives. */
  private async *tracked(remote: RemoteRecord, limit: RateLimiter | undefined, delta: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const progress = this.tracker.transferStarted(remote.path, remote.peer, remote.size);
    try {
      for await (const chunk of delta) {
        await limit?.take(chunk.length);
        progress.advance(chunk.length);
        yield chunk;
      }
    } finally {
      progress.end();
    }
  }

  /** A fetch batch, held to the download limit and counted into the status (as one pull) as its files arrive. */
  private async *trackedFetch(peer: string, remotes: readonly RemoteRecord[], limit: RateLimiter | undefined, files: AsyncIterable<FetchedFile>): AsyncGenerator<FetchedFile> {
    const what = remotes.length === 1 ? remotes[0].path : `${remotes[0].path} and ${remotes.length - 1} more files`;
    const progress = this.tracker.transferStarted(what, peer, remotes.reduce((sum, remote) => sum + remote.size, 0));
    try {
      for await (const file of files) {
        if (file.status === 'OK') {
          await limit?.take(file.content.length);
          progress.advance(file.content.length);
        }
        yield file;
      }
    } finally {
      progress.end();
    }
  }

  /**
   * A peer that broke the protocol (or delivered wrong bytes too often) is disconnected and refused
   * for MISBEHAVING_PEER_BAN_MS: whatever it keeps sending costs a handshake, not a pull.
   */
  private penalise(peer: string, error: unknown): void {
    if (this.stopping !== undefined || !this.penalties.misbehaved(peer, error)) return;
    this.emit({ kind: 'error', peer, message: `peer misbehaved, disconnected for ${MISBEHAVING_PEER_BAN_MS / 1000} s: ${messageOf(error)}` });
    this.network.ban(peer, MISBEHAVING_PEER_BAN_MS);
  }

  /** Scans, and announces what it committed; the initial scan is reported as a whole (initial-scan), not path by path. */
  private async scan(paths: string[] | undefined, initial = false): Promise<ScanReport> {
    // Each commit is announced as it lands: peers start pulling while a long scan goes on.
    const onCommitted = () => this.exchange?.notifyCommitted();
    const report = await this.folder.scanner.scan(paths === undefined ? { onCommitted } : { paths, onCommitted });
    const committed = committedSomething(report);
    if (committed) this.tracker.committed();
    // A scan that found only unreadable paths is reported too: the user must hear of them.
    if (!initial && (committed || report.errors.length > 0)) this.emit({ kind: 'scanned', report });
    if (committed) this.exchange?.notifyCommitted();
    return report;
  }

  /** Connected peers that announced the record's version: the announcing one first, then in the order they did. */
  private sourcesOf(remote: RemoteRecord): string[] {
    const others = this.availability.sources(remote).filter((p) => p !== remote.peer);
    return [remote.peer, ...others].filter((p) => this.network.isConnected(p));
  }

  /** A batch of a peer's records: applied; paths changed locally meanwhile are rescanned and applied once more. */
  private async onBatch(peer: string, records: WireRemoteRecord[]): Promise<void> {
    if (records.length === 0 || this.applier === undefined) return;
    const remotes: RemoteRecord[] = records.map((r) => ({ ...r, peer }));
    this.tracker.announced(remotes);
    for (const remote of remotes) {
      this.availability.announced(peer, remote);
      this.echoes.announced(peer, remote.path);
    }
    // Taken before anything is committed: a local record at or below it was sent to the peer (see Echoes.merged).
    let sent = this.exchange?.sentTo(peer);
    let report;
    const applying = this.settling.begin(remotes.map((remote) => remote.path));
    try {
      report = await this.applier.apply(remotes);
      this.afterApply(report, peer, remotes, sent);
      if (report.changedLocally.length > 0) {
        await this.scan([...report.changedLocally]);
        const again = new Set(report.changedLocally);
        sent = this.exchange?.sentTo(peer);
        report = await this.applier.apply(remotes.filter((r) => again.has(r.path)));
        this.afterApply(report, peer, remotes, sent);
      }
    } finally {
      applying.end();
    }
    const lost = report.failed.filter((f) => !f.peerAtFault);
    if (lost.length > 0) {
      // Not the peer's fault (a lost connection, a busy or changed peer): ask for the batch again later.
      throw new Error(`${lost.length} of the peer's changes could not be pulled (${lost[0].error.message}); retrying`);
    }
  }

  private afterApply(report: ApplyReport, peer: string, remotes: readonly RemoteRecord[], sent: SentThrough | undefined): void {
    this.tracker.applied(report);
    const byPath = new Map(remotes.map((remote) => [remote.path, remote]));
    if (report.applied.length > 0) {
      // Before the exchange is told of these commits: its next sweep leaves out what the peer holds.
      for (const applied of report.applied) {
        const { merge } = applied;
        const remote = byPath.get(applied.path);
        if (merge !== undefined && sent !== undefined && merge.replacedSequence <= sent.sequence) this.echoes.merged(peer, merge.recorded, sent.session);
        else if (remote !== undefined) this.echoes.applied(peer, remote);
      }
    }
    if (report.applied.length > 0 || report.failed.length > 0) this.emit({ kind: 'applied', report, peer });
    // Applied or found up to date: nothing left to pull there. A failed pull keeps its sources, and
    // so does a path changed locally (it is rescanned and applied again).
    const again = new Set(report.changedLocally);
    for (const settled of [...report.applied, ...report.skipped]) if (!again.has(settled.path)) this.availability.settled(settled.path);
    if (report.applied.length === 0) return;
    const large = report.applied.filter((o) => o.action === 'file' && (byPath.get(o.path)?.size ?? 0) >= MIN_CACHED_SIGNATURE_BYTES);
    this.signatures.schedule(large.map((o) => o.path));
    this.exchange?.notifyCommitted();
    if (this.stopping !== undefined) return;
    // A merge recorded a version and wrote nothing: no event of ours can hide a local change there.
    this.settling.wrote(report.applied.filter((applied) => applied.action !== 'merged').map((applied) => applied.path));
  }

  /** Serves only the exact version asked for, and only while the file on disk is still that version. */
  private async resolve(request: TransferRequest): Promise<Resolution> {
    const record = await this.folder.store.get(request.path);
    if (record === undefined || record.deleted || record.type !== 'file') return { status: 'NOT_FOUND', message: 'no such file' };
    if (compare(record.version, request.version) !== 'equal' || !same(record.contentHash, request.contentHash)) {
      return { status: 'CHANGED', message: 'that version is no longer the current one' };
    }
    const path = join(this.folder.root, ...record.path.split('/'));
    try {
      const info = await lstat(path, { bigint: true });
      if (!info.isFile() || info.size !== BigInt(record.size) || info.mtimeNs !== record.mtimeNs || info.ino !== record.inode) {
        return { status: 'CHANGED', message: 'the file changed on disk since it was scanned' };
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'CHANGED', message: 'the file is gone since it was scanned' };
      return { status: 'NOT_FOUND', message: messageOf(error) };
    }
    return { path };
  }

  /**
   * resolve() for a fetch batch: the records read at once; the fetch server checks each opened
   * file against its record's size, mtime and inode (no lstat here).
   */
  private async resolveMany(requests: readonly TransferRequest[]): Promise<FetchResolution[]> {
    const records = await this.folder.store.getMany(requests.map((request) => request.path));
    return requests.map((request, k) => {
      const record = records[k];
      if (record === undefined || record.deleted || record.type !== 'file') return { status: 'NOT_FOUND', message: 'no such file' };
      if (compare(record.version, request.version) !== 'equal' || !same(record.contentHash, request.contentHash)) {
        return { status: 'CHANGED', message: 'that version is no longer the current one' };
      }
      return { path: join(this.folder.root, ...record.path.split('/')), expect: { size: record.size, mtimeNs: record.mtimeNs, inode: record.inode } };
    });
  }

  /** Stops watching, exchanging, serving and the network, then closes the index. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.control?.stop().catch(() => undefined);
      await this.watcher?.stop().catch(() => undefined);
      await this.settling.stop();
      await this.exchange?.stop().catch(() => undefined);
      await this.server?.stop().catch(() => undefined);
      await this.network.stop().catch(() => undefined);
      this.bulkFlow.stop();
      await this.signatures.close();
      await this.folder.close();
    })();
    return this.stopping;
  }
}
