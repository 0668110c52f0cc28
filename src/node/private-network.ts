import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface';
import { preSharedKey, type ProtectorInit } from '@libp2p/pnet';

/**
 * @libp2p/pnet (3.0.27) with its ciphers kept inside their memory. Its xsalsa20 package runs in one
 * WebAssembly memory shared by every cipher of the process (10 pages, at most 1000 = 64 MB), and
 * each cipher keeps its own view of that memory. An update longer than the memory grows it, which
 * leaves every other cipher's view stale; a stale view reads as empty, so that cipher's next
 * update grows the memory again, staling the others in turn. After one large write, every change
 * of direction on any connection grew the memory by 64 KiB or more, and after about a thousand the
 * node crashed (`WebAssembly.Memory.grow(): Maximum memory size exceeded`, uncaught, in a socket's
 * data handler). Fixed upstream by js-libp2p#3585 (not in a release we can install yet); until
 * then, updates go to the cipher in pieces that always fit the memory as it starts, so it never
 * grows, and the ciphers are finalized when the connection closes (pnet never did: each
 * connection kept two 64-byte slots of that memory for good).
 */

/** Bytes given to the cipher at once: far inside its initial 640 KiB, with room for thousands of slots. */
export const CIPHER_PIECE_BYTES = 64 * 1024;

/** What pnet's ciphers are (the xsalsa20 package's XSalsa20). */
interface StreamCipher {
  update(input: Uint8Array, output?: Uint8Array): Uint8Array;
  finalize(): void;
}

/** The fields of pnet's BoxMessageStream that hold its ciphers (private in its types). */
interface BoxFields {
  inboundXor?: StreamCipher;
  outboundXor?: StreamCipher;
}

function isCipher(value: unknown): value is StreamCipher {
  const cipher = value as Partial<StreamCipher> | undefined;
  return typeof cipher?.update === 'function' && typeof cipher.finalize === 'function';
}

/** A cipher that is given at most CIPHER_PIECE_BYTES at a time (a stream cipher: the pieces join up) and may be finalized once. */
export function boundedCipher(cipher: StreamCipher): StreamCipher {
  let finalized = false;
  return {
    update(input, output = new Uint8Array(input.length)) {
      // After close the bytes go nowhere; a finalized xsalsa20 would throw in a socket handler.
      if (finalized) return output;
      for (let at = 0; at < input.length; at += CIPHER_PIECE_BYTES) {
        const end = Math.min(at + CIPHER_PIECE_BYTES, input.length);
        cipher.update(input.subarray(at, end), output.subarray(at, end));
      }
      return output;
    },
    finalize() {
      if (finalized) return;
      finalized = true;
      cipher.finalize();
    },
  };
}

/** Swaps a protected connection's ciphers for bounded ones; throws if pnet no longer has them where 3.0.27 does. */
function boundCiphers(connection: MessageStream): void {
  const box = connection as unknown as BoxFields;
  const { inboundXor, outboundXor } = box;
  if (!isCipher(inboundXor) || !isCipher(outboundXor)) {
    throw new Error('@libp2p/pnet changed: its connection has no inboundXor/outboundXor ciphers; check whether private-network.ts is still needed');
  }
  box.inboundXor = boundedCipher(inboundXor);
  box.outboundXor = boundedCipher(outboundXor);
  connection.addEventListener(
    'close',
    () => {
      box.inboundXor?.finalize();
      box.outboundXor?.finalize();
    },
    { once: true },
  );
}

/** libp2p's `connectionProtector`: pnet's pre-shared key protocol (same bytes on the wire), with bounded ciphers. */
export function meshPreSharedKey(init: ProtectorInit): () => ConnectionProtector {
  const create = preSharedKey(init);
  return () => {
    const protector = create();
    return {
      async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
        const protectedConnection = await protector.protect(connection, options);
        boundCiphers(protectedConnection);
        return protectedConnection;
      },
    };
  };
}
