import { noise, type NoiseInit } from '@chainsafe/libp2p-noise';
import type { ConnectionEncrypter, MessageStream, SecuredConnection } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';

/** Noise's largest message (ciphertext and tag) and its tag (the Noise spec's ChaChaPoly). */
const NOISE_MESSAGE_MAX_BYTES = 65535;
const TAG_BYTES = 16;

/** What noise's encrypted connection holds that its decrypt uses (noise 17's internals). */
interface NoiseConnectionInternals {
  decrypt(chunk: Uint8Array | Uint8ArrayList): Uint8ArrayList;
  handshake: { decrypt(ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array): Uint8Array | Uint8ArrayList };
}

type NoiseComponents = Parameters<ReturnType<typeof noise>>[0];

/**
 * Noise with one change on the receiving side: a message that arrived split over two socket reads
 * (almost every one of a large transfer: messages are 65,537 bytes with their length, reads 65,536)
 * is decrypted piece by piece. Noise's own decrypt first joins the pieces into one new buffer, a
 * destination its AssemblyScript cipher can decrypt into, which the node:crypto cipher it uses for
 * large messages never touches: a copy and an allocation of external memory per message for
 * nothing. Messages in one piece are decrypted as before.
 * Should a later noise change what its connection holds, its own decrypt stays.
 */
export function meshNoise(init: NoiseInit): (components: NoiseComponents) => ConnectionEncrypter {
  const factory = noise(init);
  return (components) => {
    const encrypter = factory(components);
    const secureInbound = encrypter.secureInbound.bind(encrypter);
    const secureOutbound = encrypter.secureOutbound.bind(encrypter);
    encrypter.secureInbound = async (connection, options) => withoutJoins(await secureInbound(connection, options));
    encrypter.secureOutbound = async (connection, options) => withoutJoins(await secureOutbound(connection, options));
    return encrypter;
  };
}

function withoutJoins<T extends SecuredConnection<unknown>>(secured: T): T {
  const connection = secured.connection as MessageStream & Partial<NoiseConnectionInternals>;
  const handshake = connection.handshake;
  if (typeof connection.decrypt === 'function' && typeof handshake?.decrypt === 'function') {
    connection.decrypt = (chunk) => decryptMessages(handshake, chunk);
  }
  return secured;
}

/** Noise's decrypt (one message per chunk, as its decoder hands them on) without the join. */
export function decryptMessages(handshake: NoiseConnectionInternals['handshake'], chunk: Uint8Array | Uint8ArrayList): Uint8ArrayList {
  const output = new Uint8ArrayList();
  for (let at = 0; at < chunk.byteLength; at += NOISE_MESSAGE_MAX_BYTES) {
    const end = Math.min(at + NOISE_MESSAGE_MAX_BYTES, chunk.byteLength);
    if (end - TAG_BYTES < at) throw new Error('Invalid chunk');
    if (chunk instanceof Uint8Array) {
      // One piece: decrypted in place where the cipher can (noise's own behaviour).
      output.append(handshake.decrypt(chunk.subarray(at, end), chunk.subarray(at, end - TAG_BYTES)));
    } else {
      output.append(handshake.decrypt(chunk.sublist(at, end)));
    }
  }
  return output;
}
