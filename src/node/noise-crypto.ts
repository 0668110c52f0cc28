import { createCipheriv } from 'node:crypto';
import type { ICryptoInterface } from '@chainsafe/libp2p-noise';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import { Uint8ArrayList } from 'uint8arraylist';

/** Noise's cipher, ChaCha20-Poly1305 with a 16-byte tag (the Noise spec's AEAD). */
const CIPHER = 'chacha20-poly1305';
const TAG_BYTES = 16;

/**
 * Messages at least this long are sealed here; shorter ones (handshakes, small frames) by noise's
 * default, which picks its own fastest path for them.
 */
const LARGE_MESSAGE_BYTES = 1200;

/**
 * Noise's own crypto with one change: a large message is sealed into two buffers, the ciphertext
 * and the tag, instead of one more buffer they are copied into. A large transfer's every 64 KiB
 * then allocates one buffer fewer, and each allocation is external memory that drives V8 into
 * collections (see bench:mesh). The bytes on the wire are the same.
 */
export const meshNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    if (!(plaintext instanceof Uint8Array) || plaintext.byteLength < LARGE_MESSAGE_BYTES) {
      return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k);
    }
    const cipher = createCipheriv(CIPHER, k, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength });
    const sealed = cipher.update(plaintext);
    // A stream cipher: final() only computes the tag, it yields no bytes.
    cipher.final();
    // Noise's own uint8arraylist is an older major version; lists of every version know each other
    // (by a Symbol.for brand) and hold the same `bufs`, which is how noise appends this one.
    return new Uint8ArrayList(sealed, cipher.getAuthTag()) as unknown as ReturnType<ICryptoInterface['chaCha20Poly1305Encrypt']>;
  },
};
