// mesh seals noise's large messages itself (src/node/noise-crypto.ts) to allocate one buffer fewer
// per message: the bytes must be exactly those of noise's own crypto, for every size.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import { meshNoiseCrypto } from '../src/node/noise-crypto.js';

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
  }
});
