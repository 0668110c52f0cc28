import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { identify, type Identify } from '@libp2p/identify';
import type {
  AbortOptions,
  ComponentLogger,
  Connection,
  Logger,
  PeerDiscovery,
  PeerId,
  PeerInfo,
  PrivateKey,
  Stream,
  StreamHandler,
  StreamHandlerOptions,
} from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { CODE_P2P, CODE_TCP, multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { InvalidListenAddressError, InvalidPeerAddressError, NodeError } from './errors.js';
import { meshServiceTag } from './keys.js';
import { meshPrivateNetwork } from './private-network.js';
import { meshNoiseCrypto } from './noise-crypto.js';
import { meshNoise } from './noise-decrypt.js';
import { Redialer } from './redialer.js';

/** Parsed peer ids kept (see #openConnections); peers are few, the map is cleared past this. */
const MAX_PARSED_PEER_IDS = 1024;

/** Per-stream receive window of yamux (its default, 16 MiB, lets a slow reader buffer too much). */
export const YAMUX_MAX_STREAM_WINDOW = 2 * 1024 * 1024;
/** Where the node listens unless told otherwise: every IPv4 interface. */
export const DEFAULT_LISTEN_HOST = '0.0.0.0';

/** Timings of discovery and redialling; the defaults suit a LAN, tests may shorten them. */
export interface NetworkTiming {
  /**
   * How long the side with the higher peer id waits, after discovering a peer by mDNS, for that
   * peer to dial it before dialling itself (the lower id dials at once). Default 2000 ms.
   */
  discoveryGraceMs: number;
  /** First delay before redialling a static peer; it doubles after each failure. Default 1000 ms. */
  redialMinMs: number;
  /** Longest delay between two redials of a static peer. Default 60000 ms. */
  redialMaxMs: number;
  /** Interval of mDNS queries (libp2p's default). Default 10000 ms. */
  mdnsIntervalMs: number;
  /**
   * How often each connection is pinged. A connection whose packets are lost (a partition, a pulled
   * cable) raises no error: TCP retransmits, ever less often, for many minutes. A ping that times
   * out is what closes it, so that the peer is redialled. Default 2000 ms.
   */
  pingIntervalMs: number;
  /**
   * Shortest time a ping may take before its connection is closed (libp2p raises it with the
   * measured round trips). A ping waits behind everything queued to send: up to about 5 MiB (the
   * kernel's send buffer and ours) during a transfer, 4 s at 10 Mbit/s; shorter, a busy slow link
   * would be taken for a dead one. Default 10000 ms.
   */
  pingTimeoutMs: number;
  /** First redial of a lost peer, by the side with the lower peer id (the other waits discoveryGraceMs). Default 500 ms. */
  lostRedialMinMs: number;
  /** Longest delay between two redials of a lost peer (a SYN, or an ARP query, on a LAN). Default 2000 ms. */
  lostRedialMaxMs: number;
  /** How long after a loss the peer is redialled that often; then mDNS answers and the static backoff take over. Default 5 min. */
  lostRedialWindowMs: number;
}

export const DEFAULT_TIMING: Readonly<NetworkTiming> = {
  discoveryGraceMs: 2_000,
  redialMinMs: 1_000,
  redialMaxMs: 60_000,
  mdnsIntervalMs: 10_000,
  pingIntervalMs: 2_000,
  pingTimeoutMs: 10_000,
  lostRedialMinMs: 500,
  lostRedialMaxMs: 2_000,
  lostRedialWindowMs: 5 * 60_000,
};

/**
 * How long a peer whose last connection closed may take to open another before it counts as
 * disconnected. When both sides dial at once (both redial after a heal), the lower id closes one
 * connection a moment before the other side has finished opening the second: without this, that
 * side printed the peer as disconnected and connected again within milliseconds.
 */
const DISCONNECT_GRACE_MS = 300;

/** Longest a ping may take, however slow the round trips measured so far. */
const PING_TIMEOUT_MAX_MS = 30_000;

export interface MeshNetworkInit {
  /** The mesh key (32 bytes): the private network's pre-shared key, and the mDNS service tag. */
  meshKey: Uint8Array;
  /** The node's identity (loadPeerKey); its public key is the peer id. */
  privateKey: PrivateKey;
  /** TCP port to listen on; default 0, any free port (mDNS tells peers which one). */
  port?: number;
  /** IP address to listen on; default 0.0.0.0 (every IPv4 interface). */
  host?: string;
  /** Multiaddrs dialled at start and redialled while not connected, e.g. /ip4/10.0.0.2/tcp/4001[/p2p/ID]. */
  staticPeers?: readonly string[];
  /** Find peers on the LAN by mDNS; default true. */
  mdns?: boolean;
  /** Answer mDNS queries so that others find this node; default true (false: find without being found). */
  announce?: boolean;
  /** libp2p's logger (default: libp2p's own, enabled with DEBUG=libp2p:*,mesh:*). */
  logger?: ComponentLogger;
  timing?: Partial<NetworkTiming>;
}

/** A peer that connected or disconnected: its id, and the address of the connection. */
export interface PeerConnectionEvent {
  readonly peerId: string;
  readonly remoteAddress: string;
  readonly direction: 'inbound' | 'outbound';
}

export interface PeerDiscoveryEvent {
  readonly peerId: string;
  readonly addresses: readonly string[];
}

export interface DialErrorEvent {
  /** The peer id (mDNS) or the static address that could not be dialled. */
  readonly target: string;
  readonly error: Error;
  /** When the next attempt is made (static peers), in ms. */
  readonly retryInMs?: number;
}

export interface MeshNetworkEvents {
  /** The first connection to a peer opened (a duplicate connection never emits it twice). */
  'peer:connect': [PeerConnectionEvent];
  /** The last connection to a peer closed. */
  'peer:disconnect': [PeerConnectionEvent];
  /** mDNS found a peer of this mesh, or found it at new addresses. */
  'peer:discovery': [PeerDiscoveryEvent];
  'dial:error': [DialErrorEvent];
}

/** The libp2p node under a MeshNetwork, with its services. */
export type MeshLibp2p = Libp2p<{ identify: Identify }>;

interface StaticPeer {
  readonly text: string;
  readonly address: Multiaddr;
  /** Known from the address (/p2p/ID) or from the first connection. */
  peerId?: string;
  /** Failed dials since the last success: the next delay is min * 2^failures. */
  failures: number;
  timer?: NodeJS.Timeout;
  dialing: boolean;
}

function isLoopback(address: Multiaddr): boolean {
  const host = address.getComponents()[0];
  return host !== undefined && ((host.name === 'ip4' && host.value?.startsWith('127.') === true) || (host.name === 'ip6' && host.value === '::1'));
}

function errorOf(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Checks a `--peer` address: a multiaddr with a TCP port, and a valid peer id if it names one. */
export function parsePeerAddress(text: string): { address: Multiaddr; peerId?: string } {
  let address: Multiaddr;
  try {
    address = multiaddr(text.trim());
  } catch (error) {
    throw new InvalidPeerAddressError(text, errorOf(error).message);
  }
  const components = address.getComponents();
  if (!components.some((c) => c.code === CODE_TCP)) throw new InvalidPeerAddressError(text, 'it has no /tcp/PORT (mesh dials TCP)');
  const id = components.findLast((c) => c.code === CODE_P2P)?.value;
  if (id === undefined) return { address };
  try {
    return { address, peerId: peerIdFromString(id).toString() };
  } catch (error) {
    throw new InvalidPeerAddressError(text, `its peer id is not valid (${errorOf(error).message})`);
  }
}

function listenAddressOf(host: string, port: number): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidListenAddressError(`port ${port} is not between 0 and 65535`);
  const family = isIP(host);
  if (family === 0) throw new InvalidListenAddressError(`${JSON.stringify(host)} is not an IP address`);
  return `/ip${family}/${host}/tcp/${port}`;
}

/**
 * The mesh's libp2p node: TCP, noise, yamux, the mesh key as a private-network pre-shared key,
 * mDNS under the mesh's service tag, identify. It dials peers found by mDNS (the lower peer id
 * dials; the higher waits `discoveryGraceMs` for it, then dials too), keeps one connection per peer
 * (when both sides dialled at once, the lower peer id keeps its outbound connection and closes the
 * other), and redials static peers with exponential backoff while they are not connected.
 *
 * Protocols register with `handle()` and open streams with `dialProtocol()`, which picks the
 * connection that survives a duplicate. A stream may still end when a duplicate connection is
 * pruned just after `peer:connect`; a protocol that sees its stream end while `isConnected(peer)`
 * should open another.
 */
export class MeshNetwork extends EventEmitter<MeshNetworkEvents> {
  readonly peerId: string;
  readonly #log: Logger;
  readonly #timing: NetworkTiming;
  readonly #staticPeers: StaticPeer[];
  /** Peer ids already parsed from their strings (isConnected is asked for every file pulled). */
  readonly #parsedPeerIds = new Map<string, PeerId>();
  /** Addresses of peers found by mDNS (without /p2p/), latest announcement. */
  readonly #discovered = new Map<string, Multiaddr[]>();
  readonly #graceTimers = new Map<string, NodeJS.Timeout>();
  readonly #dialing = new Set<string>();
  /** Peers for which peer:connect was emitted, with the event. */
  readonly #connected = new Map<string, PeerConnectionEvent>();
  readonly #redialer: Redialer;
  /** Peers whose last connection closed, within DISCONNECT_GRACE_MS. */
  readonly #disconnecting = new Map<string, NodeJS.Timeout>();
  /** Banned peers, and until when (performance.now()). */
  readonly #banned = new Map<string, number>();
  #started = false;

  /** Use createMeshNetwork(). */
  constructor(
    readonly libp2p: MeshLibp2p,
    staticPeers: readonly string[],
    timing: NetworkTiming,
  ) {
    super();
    this.peerId = libp2p.peerId.toString();
    this.#log = libp2p.logger.forComponent('mesh:network');
    this.#timing = timing;
    this.#staticPeers = [];
    for (const text of staticPeers) {
      const { address, peerId } = parsePeerAddress(text);
      if (peerId === this.peerId) {
        this.#log('ignoring static peer %s: it is this node', text);
        continue;
      }
      this.#staticPeers.push({ text, address, peerId, failures: 0, dialing: false });
    }
    this.#redialer = this.#newRedialer();
    libp2p.addEventListener('connection:open', (event) => this.#onConnectionOpen(event.detail));
    libp2p.addEventListener('connection:close', (event) => this.#onConnectionClose(event.detail));
  }

  get started(): boolean {
    return this.#started;
  }

  /** Starts listening, mDNS and the static peers' dials. */
  async start(): Promise<void> {
    if (this.#started) return;
    await this.libp2p.start();
    this.#started = true;
    for (const peer of this.#staticPeers) void this.#dialStatic(peer);
  }

  /** Closes every connection, stops mDNS and clears every timer. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    for (const timer of this.#graceTimers.values()) clearTimeout(timer);
    this.#graceTimers.clear();
    this.#redialer.stop();
    for (const timer of this.#disconnecting.values()) clearTimeout(timer);
    this.#disconnecting.clear();
    for (const peer of this.#staticPeers) {
      clearTimeout(peer.timer);
      peer.timer = undefined;
      peer.failures = 0;
    }
    await this.libp2p.stop();
    this.#discovered.clear();
    this.#connected.clear();
  }

  /** Where peers can reach this node (with /p2p/ID); loopback addresses only when there is nothing else. */
  get listenAddresses(): string[] {
    const all = this.libp2p.getMultiaddrs();
    const outside = all.filter((a) => !isLoopback(a));
    return (outside.length > 0 ? outside : all).map((a) => a.toString());
  }

  isConnected(peerId: string): boolean {
    return this.#openConnections(peerId).length > 0;
  }

  /**
   * Refuses a peer for `ms`: its connections are closed, and until then neither side's dial gets
   * through (the connection gater denies it once the peer id is known, after the handshake).
   */
  ban(peerId: string, ms: number): void {
    this.#banned.set(peerId, performance.now() + ms);
    this.#log('banning %s for %d ms', peerId, ms);
    for (const connection of this.#openConnections(peerId)) connection.abort(new Error('peer banned: it misbehaved'));
  }

  /** Whether `peerId` is banned now (the connection gater asks). */
  isBanned(peerId: string): boolean {
    const until = this.#banned.get(peerId);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    this.#banned.delete(peerId);
    return false;
  }

  /** Peers with at least one open connection. */
  connectedPeers(): string[] {
    return [...this.#connected.keys()].filter((id) => this.isConnected(id));
  }

  /** Open connections to a peer (normally one; two for a moment after a simultaneous dial). */
  connections(peerId: string): Connection[] {
    return this.#openConnections(peerId);
  }

  /** Registers a protocol's handler: `(stream, connection) => ...` (the libp2p 3 signature). */
  async handle(protocol: string | string[], handler: StreamHandler, options?: StreamHandlerOptions): Promise<void> {
    await this.libp2p.handle(protocol, handler, options);
  }

  async unhandle(protocol: string | string[]): Promise<void> {
    await this.libp2p.unhandle(protocol);
  }

  /**
   * Opens a stream to a connected peer, on the connection that a duplicate would leave open (the
   * lower peer id's outbound one). Throws NotConnectedError when there is no connection: the
   * network, not the protocol, decides when to dial.
   */
  async dialProtocol(peerId: string, protocol: string | string[], options?: AbortOptions): Promise<Stream> {
    const connection = this.#preferredConnection(peerId);
    if (connection === undefined) throw new NotConnectedError(peerId);
    return connection.newStream(protocol, options);
  }

  #openConnections(peerId: string): Connection[] {
    let id = this.#parsedPeerIds.get(peerId);
    if (id === undefined) {
      try {
        id = peerIdFromString(peerId);
      } catch {
        return [];
      }
      // Parsing a peer id (base58, multihash) costs more than the lookup; a pull asks per file.
      if (this.#parsedPeerIds.size >= MAX_PARSED_PEER_IDS) this.#parsedPeerIds.clear();
      this.#parsedPeerIds.set(peerId, id);
    }
    return this.libp2p.getConnections(id).filter((c) => c.status === 'open');
  }

  /** Of several connections to one peer, the one both sides keep: the lower peer id's outbound, oldest first. */
  #preferredConnection(peerId: string, connections = this.#openConnections(peerId)): Connection | undefined {
    const keptDirection = this.peerId < peerId ? 'outbound' : 'inbound';
    const sorted = [...connections].sort(
      (a, b) => Number(b.direction === keptDirection) - Number(a.direction === keptDirection) || a.timeline.open - b.timeline.open,
    );
    return sorted[0];
  }

  #onConnectionOpen(connection: Connection): void {
    const peerId = connection.remotePeer.toString();
    clearTimeout(this.#graceTimers.get(peerId));
    this.#graceTimers.delete(peerId);
    this.#redialer.found(peerId);
    // Back within the grace: still the same peer:connect, no disconnect to report.
    clearTimeout(this.#disconnecting.get(peerId));
    this.#disconnecting.delete(peerId);
    if (!this.#connected.has(peerId)) {
      const event: PeerConnectionEvent = { peerId, remoteAddress: connection.remoteAddr.toString(), direction: connection.direction };
      this.#connected.set(peerId, event);
      this.#log('connected to %s at %s (%s)', peerId, event.remoteAddress, event.direction);
      this.emit('peer:connect', event);
    }
    this.#pruneDuplicates(peerId);
  }

  /** Only the lower peer id closes duplicates, so the two sides never close different ones. */
  #pruneDuplicates(peerId: string): void {
    if (!(this.peerId < peerId)) return;
    const open = this.#openConnections(peerId);
    if (open.length < 2) return;
    const keep = this.#preferredConnection(peerId, open);
    for (const connection of open) {
      if (connection === keep) continue;
      this.#log('closing a duplicate connection to %s (%s)', peerId, connection.direction);
      connection.close().catch((error: unknown) => connection.abort(errorOf(error)));
    }
  }

  #onConnectionClose(connection: Connection): void {
    const peerId = connection.remotePeer.toString();
    const remaining = this.#openConnections(peerId).filter((c) => c.id !== connection.id);
    if (remaining.length > 0) return;
    if (!this.#connected.has(peerId) || this.#disconnecting.has(peerId)) return;
    const remoteAddress = connection.remoteAddr.toString();
    if (!this.#started) {
      this.#disconnected(peerId, remoteAddress);
      return;
    }
    this.#disconnecting.set(
      peerId,
      setTimeout(() => {
        this.#disconnecting.delete(peerId);
        if (this.#started && !this.isConnected(peerId)) this.#disconnected(peerId, remoteAddress);
      }, DISCONNECT_GRACE_MS),
    );
  }

  /** The peer has no connection left: tell, and start redialling it. */
  #disconnected(peerId: string, remoteAddress: string): void {
    const event = this.#connected.get(peerId);
    if (event === undefined) return;
    this.#connected.delete(peerId);
    this.#log('disconnected from %s', peerId);
    this.emit('peer:disconnect', { ...event, remoteAddress });
    if (!this.#started) return;
    for (const peer of this.#staticPeers) {
      if (peer.peerId === peerId && peer.timer === undefined && !peer.dialing) {
        peer.failures = 0;
        this.#scheduleStatic(peer);
      }
    }
    // Lost, probably not gone: redial soon rather than at its next mDNS answer. As for discovery,
    // the lower id dials first, so that both sides rarely dial at once.
    this.#redialer.lost(peerId, this.peerId < peerId ? this.#timing.lostRedialMinMs : this.#timing.discoveryGraceMs);
  }

  #newRedialer(): Redialer {
    return new Redialer({
      dial: (peerId) => this.#redial(peerId),
      isConnected: (peerId) => this.isConnected(peerId),
      maxDelayMs: this.#timing.lostRedialMaxMs,
      windowMs: this.#timing.lostRedialWindowMs,
      onError: (peerId, error) => this.#log('could not redial %s: %s', peerId, errorOf(error).message),
    });
  }

  /** Dials a lost peer where it was found: its mDNS addresses, else its static address, else what identify said. */
  async #redial(peerId: string): Promise<void> {
    if (!this.#started || this.#dialing.has(peerId) || this.isConnected(peerId)) return;
    let addresses = this.#discovered.get(peerId) ?? [];
    if (addresses.length === 0) addresses = this.#staticPeers.filter((p) => p.peerId === peerId).map((p) => p.address.decapsulateCode(CODE_P2P));
    if (addresses.length === 0) addresses = (await this.libp2p.peerStore.get(peerIdFromString(peerId)).catch(() => undefined))?.addresses.map((a) => a.multiaddr) ?? [];
    const outside = addresses.filter((a) => !isLoopback(a));
    const targets = (outside.length > 0 ? outside : addresses).map((a) => a.decapsulateCode(CODE_P2P).encapsulate(`/p2p/${peerId}`));
    if (targets.length === 0) throw new Error('no known address');
    this.#dialing.add(peerId);
    try {
      await this.libp2p.dial(targets);
    } finally {
      this.#dialing.delete(peerId);
    }
  }

  /**
   * A peer of this mesh answered an mDNS query (called by the mDNS service createMeshNetwork
   * installs; not for protocols).
   */
  onDiscovered(info: PeerInfo): void {
    const peerId = info.id.toString();
    if (peerId === this.peerId || !this.#started) return;
    const addresses = info.multiaddrs.map((a) => a.toString());
    const previous = this.#discovered.get(peerId)?.map((a) => a.toString());
    this.#discovered.set(peerId, info.multiaddrs);
    if (previous === undefined || previous.join(' ') !== addresses.join(' ')) this.emit('peer:discovery', { peerId, addresses });
    if (this.isConnected(peerId)) return;
    if (this.peerId < peerId) {
      void this.#dialDiscovered(peerId);
    } else if (!this.#graceTimers.has(peerId)) {
      // The lower id dials; if it has not discovered us (yet), dial ourselves after a grace period.
      const timer = setTimeout(() => {
        this.#graceTimers.delete(peerId);
        void this.#dialDiscovered(peerId);
      }, this.#timing.discoveryGraceMs);
      this.#graceTimers.set(peerId, timer);
    }
  }

  async #dialDiscovered(peerId: string): Promise<void> {
    if (!this.#started || this.#dialing.has(peerId) || this.isConnected(peerId)) return;
    const announced = this.#discovered.get(peerId) ?? [];
    // mDNS announcements include 127.0.0.1, which on another machine is not this peer.
    const outside = announced.filter((a) => !isLoopback(a));
    const addresses = (outside.length > 0 ? outside : announced).map((a) => a.encapsulate(`/p2p/${peerId}`));
    if (addresses.length === 0) return;
    this.#dialing.add(peerId);
    try {
      await this.libp2p.dial(addresses);
    } catch (error) {
      if (!this.#started) return;
      this.#log('could not dial %s: %s', peerId, errorOf(error).message);
      this.emit('dial:error', { target: peerId, error: errorOf(error) });
    } finally {
      this.#dialing.delete(peerId);
    }
  }

  #scheduleStatic(peer: StaticPeer): number {
    const delay = Math.min(this.#timing.redialMinMs * 2 ** peer.failures, this.#timing.redialMaxMs);
    clearTimeout(peer.timer);
    peer.timer = setTimeout(() => {
      peer.timer = undefined;
      void this.#dialStatic(peer);
    }, delay);
    return delay;
  }

  async #dialStatic(peer: StaticPeer): Promise<void> {
    if (!this.#started || peer.dialing) return;
    // Connected (perhaps by mDNS or its own dial): nothing to do until it disconnects.
    if (peer.peerId !== undefined && this.isConnected(peer.peerId)) return;
    peer.dialing = true;
    try {
      const connection = await this.libp2p.dial(peer.address);
      peer.peerId = connection.remotePeer.toString();
      peer.failures = 0;
    } catch (error) {
      if (!this.#started) return;
      const retryInMs = this.#scheduleStatic(peer);
      peer.failures++;
      this.#log('could not dial %s, again in %d ms: %s', peer.text, retryInMs, errorOf(error).message);
      this.emit('dial:error', { target: peer.text, error: errorOf(error), retryInMs });
    } finally {
      peer.dialing = false;
    }
    // It may have connected and closed while the dial was settling.
    if (this.#started && peer.peerId !== undefined && !this.isConnected(peer.peerId) && peer.timer === undefined) {
      this.#scheduleStatic(peer);
    }
  }
}

/** dialProtocol() to a peer with no open connection. */
export class NotConnectedError extends NodeError {
  override name = 'NotConnectedError';
  constructor(readonly peerId: string) {
    super(`not connected to peer ${peerId}`);
  }
}

/** Builds the node (not started: call start()). */
export async function createMeshNetwork(init: MeshNetworkInit): Promise<MeshNetwork> {
  const timing: NetworkTiming = { ...DEFAULT_TIMING };
  for (const [name, value] of Object.entries(init.timing ?? {}) as [keyof NetworkTiming, number | undefined][]) {
    if (value !== undefined) timing[name] = value;
  }
  const listen = listenAddressOf(init.host ?? DEFAULT_LISTEN_HOST, init.port ?? 0);
  const staticPeers = init.staticPeers ?? [];
  for (const text of staticPeers) parsePeerAddress(text);
  // mDNS answers and the gater's questions reach the network object, which exists only once libp2p does.
  let onPeer: (info: PeerInfo) => void = () => undefined;
  let isBanned: (peerId: PeerId) => boolean = () => false;
  const discovery = (components: Parameters<ReturnType<typeof mdns>>[0]): PeerDiscovery => {
    const service = mdns({ serviceTag: meshServiceTag(init.meshKey), interval: timing.mdnsIntervalMs, broadcast: init.announce !== false })(components);
    service.addEventListener('peer', (event) => onPeer(event.detail));
    return service;
  };
  const node: MeshLibp2p = await createLibp2p({
    start: false,
    privateKey: init.privateKey,
    logger: init.logger,
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [meshNoise({ crypto: meshNoiseCrypto })],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: YAMUX_MAX_STREAM_WINDOW } })],
    connectionProtector: meshPrivateNetwork({ key: init.meshKey }),
    connectionGater: {
      denyDialPeer: (peerId) => isBanned(peerId),
      denyInboundEncryptedConnection: (peerId) => isBanned(peerId),
      denyOutboundEncryptedConnection: (peerId) => isBanned(peerId),
    },
    peerDiscovery: init.mdns === false ? [] : [discovery],
    connectionMonitor: { pingInterval: timing.pingIntervalMs, pingTimeout: { minTimeout: timing.pingTimeoutMs, maxTimeout: PING_TIMEOUT_MAX_MS } },
    services: { identify: identify() },
  });
  const network = new MeshNetwork(node, staticPeers, timing);
  onPeer = (info) => network.onDiscovered(info);
  isBanned = (peerId) => network.isBanned(peerId.toString());
  return network;
}
