// mesh seals and opens noise's large messages itself (src/node/noise-crypto.ts: one buffer fewer per
// message, a KeyObject per key): the bytes must be exactly those of noise's own crypto, for every size.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import { Uint8ArrayList } from 'uint8arraylist';
import { meshNoiseCrypto } from '../src/node/noise-crypto.js';
import { decryptMessages } from '../src/node/noise-decrypt.js';

type NoiseList = Parameters<typeof meshNoiseCrypto.chaCha20Poly1305Decrypt>[0];

const joined = (sealed: Uint8Array | Iterable<Uint8Array>) => Buffer.concat(sealed instanceof Uint8Array ? [sealed] : [...sealed]);

test('sealed messages are byte for byte those of noise’s own crypto, and it opens them', () => {
  const key = randomBytes(32);
  const ad = randomBytes(32);
  for (const length of [0, 1, 1199, 1200, 1201, 4096, 65_519]) {
    const nonce = randomBytes(12);
    const plaintext = randomBytes(length);
    const ours = joined(meshNoiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, key));
    assert.ok(ours.equals(joined(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, key))), `${length} bytes sealed differently`);
    assert.ok(joined(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, key)).equals(plaintext), `${length} bytes do not open`);
    assert.ok(joined(meshNoiseCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, key)).equals(plaintext), `${length} bytes do not open here`);
    const tampered = Buffer.from(ours);
    tampered[tampered.length - 1] ^= 1;
    assert.throws(() => meshNoiseCrypto.chaCha20Poly1305Decrypt(tampered, nonce, ad, key), `${length} bytes open with a wrong tag`);
  }
});

// Large messages use a KeyObject made once per session key (Node 24 makes a cipher from raw key
// bytes ~4x slower): a key noise changed in place must seal and open with its new bytes.
test('a key changed in place seals and opens with its new bytes', () => {
  const key = randomBytes(32);
  const ad = randomBytes(32);
  const nonce = randomBytes(12);
  const plaintext = randomBytes(65_519);
  const before = joined(meshNoiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, key));
  randomBytes(32).copy(key);
  const after = joined(meshNoiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, key));
  assert.ok(!after.equals(before));
  assert.ok(after.equals(joined(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, key))), 'sealed with the old key');
  assert.ok(joined(meshNoiseCrypto.chaCha20Poly1305Decrypt(after, nonce, ad, key)).equals(plaintext));
  assert.throws(() => meshNoiseCrypto.chaCha20Poly1305Decrypt(before, nonce, ad, key), 'opened with the old key');
});

// A message that arrived split over two socket reads is opened piece by piece (src/node/noise-decrypt.ts),
// never joined into a copy first: the same plaintext as noise's own decrypt, for every size and cut.
test('a message split over two reads opens to its plaintext without being joined first', () => {
  const key = randomBytes(32);
  const ad = new Uint8Array(0);
  for (const length of [1, 1199, 1200, 4096, 65_519]) {
    for (const cutAt of [1, Math.floor((length + 16) / 2), length + 15]) {
      const nonce = randomBytes(12);
      const plaintext = randomBytes(length);
      const sealed = joined(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, key));
      const opened: string[] = [];
      // Noise's lists are of an older uint8arraylist than ours: the same at run time, not to tsc.
      const handshake: Parameters<typeof decryptMessages>[0] = {
        decrypt(ciphertext, dst) {
          opened.push(`${ciphertext instanceof Uint8Array ? 'one array' : `a list of ${[...ciphertext].length}`}, ${dst === undefined ? 'no copy' : 'a joined copy'}`);
          return meshNoiseCrypto.chaCha20Poly1305Decrypt(ciphertext as NoiseList, nonce, ad, key, dst) as Uint8Array;
        },
      };
      const split = new Uint8ArrayList(sealed.subarray(0, cutAt), sealed.subarray(cutAt));
      assert.ok(joined(decryptMessages(handshake, split)).equals(plaintext), `${length} bytes cut at ${cutAt} do not open`);
      assert.deepEqual(opened, ['a list of 2, no copy']);
    }
  }
});
