import { randomBytes } from 'node:crypto';
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface';
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils';
import type { Uint8ArrayList } from 'uint8arraylist';
import { XSalsa20, XSALSA20_KEY_BYTES, XSALSA20_NONCE_BYTES } from './xsalsa20.js';

/**
 * The mesh key as a libp2p private network: the pre-shared key protocol of @libp2p/pnet
 * (/key/swarm/psk/1.0.0/), the same bytes on the wire, so a mesh node and a node running stock
 * pnet with the same key interoperate (test/network-pnet.test.ts). Each side sends a random
 * 24-byte nonce, then everything it sends is XORed with XSalsa20(key, its nonce), and everything it
 * receives with XSalsa20(key, the peer's nonce). Our own because pnet's cipher, the xsalsa20
 * package, was the largest single cost of a large transfer (386 MB/s per CPU-second here, applied
 * to every byte noise has already encrypted); xsalsa20.ts is about 4x faster. It also shared one
 * WebAssembly memory across the process that could only grow, which crashed a node after enough
 * turns of direction on a connection (test/network-pnet.test.ts keeps that case).
 */

/** How long the nonce exchange may take when libp2p gives no signal of its own (pnet's default is 1 s). */
export const PRIVATE_NETWORK_HANDSHAKE_TIMEOUT_MS = 5_000;

export interface MeshPrivateNetworkInit {
  /** The mesh key: the 32 bytes pnet reads from its swarm key file. */
  key: Uint8Array;
}

interface ProtectedConnectionInit {
  inner: MessageStream;
  remoteAddr: MultiaddrConnection['remoteAddr'];
  key: Uint8Array;
  localNonce: Uint8Array;
  remoteNonce: Uint8Array;
}

/** A connection whose bytes are XORed with the two keystreams on their way out and in. */
class ProtectedConnection extends AbstractMultiaddrConnection {
  private readonly inner: MessageStream;
  private readonly inbound: XSalsa20;
  private readonly outbound: XSalsa20;

  constructor(init: ProtectedConnectionInit) {
    const { inner } = init;
    super({ log: inner.log.newScope('pnet'), remoteAddr: init.remoteAddr, direction: inner.direction });
    this.inner = inner;
    this.inbound = new XSalsa20(init.remoteNonce, init.key);
    this.outbound = new XSalsa20(init.localNonce, init.key);
    // Received buffers are the socket's own, read by nobody else: decrypted where they are, so a
    // large transfer allocates nothing here.
    inner.addEventListener('message', ({ data }) => {
      if (data instanceof Uint8Array) {
        this.onData(this.inbound.update(data, data));
        return;
      }
      for (const buffer of data) this.onData(this.inbound.update(buffer, buffer));
    });
    inner.addEventListener('drain', () => this.onMuxerDrain());
    inner.addEventListener('close', (event) => {
      if (event.error === undefined) this.onTransportClosed();
      else if (event.local) this.abort(event.error);
      else this.onRemoteReset();
    });
  }

  sendData(data: Uint8ArrayList): { sentBytes: number; canSendMore: boolean } {
    // Sent buffers may still belong to noise or yamux: encrypted into one new buffer (not zeroed:
    // every byte is written), which also keeps a noise message's length, body and tag in one write.
    const out = Buffer.allocUnsafe(data.byteLength);
    let at = 0;
    for (const buffer of data) {
      this.outbound.update(buffer, out.subarray(at, at + buffer.byteLength));
      at += buffer.byteLength;
    }
    return { sentBytes: out.byteLength, canSendMore: this.inner.send(out) };
  }

  sendReset(error: Error): void {
    this.inner.abort(error);
  }

  sendPause(): void {
    this.inner.pause();
  }

  sendResume(): void {
    this.inner.resume();
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.inner.close(options);
  }
}

/** libp2p's `connectionProtector` for a mesh: pnet's protocol with the mesh key. */
export function meshPrivateNetwork(init: MeshPrivateNetworkInit): () => ConnectionProtector {
  if (init.key.length !== XSALSA20_KEY_BYTES) throw new RangeError(`a private network key has ${XSALSA20_KEY_BYTES} bytes, not ${init.key.length}`);
  const key = Uint8Array.from(init.key);
  return () => ({
    async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
      const signal = options?.signal ?? AbortSignal.timeout(PRIVATE_NETWORK_HANDSHAKE_TIMEOUT_MS);
      const localNonce = randomBytes(XSALSA20_NONCE_BYTES);
      const bytes = byteStream(connection);
      const [remoteNonce] = await Promise.all([bytes.read({ bytes: XSALSA20_NONCE_BYTES, signal }), bytes.write(localNonce, { signal })]);
      const inner = bytes.unwrap();
      const { remoteAddr } = connection as MultiaddrConnection;
      return new ProtectedConnection({ inner, remoteAddr, key, localNonce, remoteNonce: remoteNonce.subarray() });
    },
  });
}
