import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import type { ICryptoInterface } from '@chainsafe/libp2p-noise';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import { Uint8ArrayList } from 'uint8arraylist';

/** Noise's cipher, ChaCha20-Poly1305 with a 16-byte tag (the Noise spec's AEAD). */
const CIPHER = 'chacha20-poly1305';
const TAG_BYTES = 16;

/**
 * Messages at least this long are sealed and opened here; shorter ones (handshakes, small frames)
 * by noise's default, which picks its own fastest path for them (its threshold too).
 */
const LARGE_MESSAGE_BYTES = 1200;

type NoiseResult = ReturnType<ICryptoInterface['chaCha20Poly1305Encrypt']>;

/**
 * The session keys as KeyObjects, made once per key. Given a key's bytes, Node 24's
 * createCipheriv first asks whether they are a KeyObject and then a CryptoKey, each by an error
 * thrown and caught: 17 us a cipher here against 3.7 with a KeyObject (Node 20 and 22: the same
 * either way), and a large transfer makes a cipher for every 64 KiB message on each side. Keyed by
 * the array noise holds the key in; its bytes are compared at every use, so a key changed in place
 * is never used stale.
 */
const secretKeys = new WeakMap<Uint8Array, { readonly bytes: Buffer; readonly key: KeyObject }>();

function secretKeyOf(k: Uint8Array): KeyObject {
  const known = secretKeys.get(k);
  if (known !== undefined && known.bytes.equals(k)) return known.key;
  const bytes = Buffer.from(k);
  const key = createSecretKey(bytes);
  secretKeys.set(k, { bytes, key });
  return key;
}

/**
 * Noise's own crypto with two changes for large messages, the bytes on the wire the same:
 * - a message is sealed into two buffers, the ciphertext and the tag, instead of one more buffer
 *   they are copied into. A large transfer's every 64 KiB then allocates one buffer fewer, and
 *   each allocation is external memory that drives V8 into collections (see bench:mesh);
 * - ciphers are made from the session key's KeyObject (secretKeyOf).
 */
export const meshNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    if (!(plaintext instanceof Uint8Array) || plaintext.byteLength < LARGE_MESSAGE_BYTES) {
      return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k);
    }
    const cipher = createCipheriv(CIPHER, secretKeyOf(k), nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength });
    const sealed = cipher.update(plaintext);
    // A stream cipher: final() only computes the tag, it yields no bytes.
    cipher.final();
    // Noise's own uint8arraylist is an older major version; lists of every version know each other
    // (by a Symbol.for brand) and hold the same `bufs`, which is how noise appends this one.
    return new Uint8ArrayList(sealed, cipher.getAuthTag()) as unknown as NoiseResult;
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    if (ciphertext.byteLength < LARGE_MESSAGE_BYTES) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst);
    const textLength = ciphertext.byteLength - TAG_BYTES;
    const decipher = createDecipheriv(CIPHER, secretKeyOf(k), nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(ad, { plaintextLength: textLength });
    decipher.setAuthTag(ciphertext.subarray(textLength));
    // As noise's own: node:crypto writes where it likes, so `dst` (for its WebAssembly cipher) is not used.
    if (ciphertext instanceof Uint8Array) {
      const text = decipher.update(ciphertext.subarray(0, textLength));
      // Checks the tag (throws when it is wrong); a stream cipher has no bytes left to yield.
      decipher.final();
      return text;
    }
    const text = new Uint8ArrayList();
    for (const piece of ciphertext.sublist(0, textLength)) text.append(decipher.update(piece));
    decipher.final();
    return text as unknown as NoiseResult;
  },
};
