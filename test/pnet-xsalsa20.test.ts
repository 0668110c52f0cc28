// The private network's XSalsa20 (src/node/xsalsa20.ts, four blocks at a time in WebAssembly
// SIMD): NaCl's published vectors, and the same bytes as the xsalsa20 package that stock
// @libp2p/pnet runs, whatever the update sizes and however they cut the blocks.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { hsalsa20, XSalsa20, XSALSA20_PIECE_BYTES } from '../src/node/xsalsa20.js';

interface StockCipher {
  update(input: Uint8Array, output?: Uint8Array): Uint8Array;
  finalize(): void;
}
/** The xsalsa20 package exactly as @libp2p/pnet resolves it. */
const stockXSalsa20 = createRequire(import.meta.resolve('@libp2p/pnet'))('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => StockCipher;

const hex = (text: string) => Buffer.from(text, 'hex');
// NaCl's test key ("firstkey") and nonce (tests/stream.c, secretbox.c).
const FIRST_KEY = hex('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389');
const NONCE = hex('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37');

test('HSalsa20 gives NaCl core1 vector (the shared secret to "firstkey")', () => {
  const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  const subkey = Buffer.alloc(32);
  hsalsa20(shared, new Uint8Array(16)).forEach((word, i) => subkey.writeUInt32LE(word, 4 * i));
  assert.equal(subkey.toString('hex'), FIRST_KEY.toString('hex'));
});

test('4 MiB of keystream has the SHA-256 of NaCl stream vector', () => {
  const keystream = new XSalsa20(NONCE, FIRST_KEY).update(new Uint8Array(4 * 1024 * 1024));
  assert.equal(createHash('sha256').update(keystream).digest('hex'), '662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2');
});

test("NaCl secretbox vector: its message XORed from keystream byte 32, whole and a byte at a time", () => {
  const message = hex(
    'be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31' +
      '0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705',
  );
  const expected =
    '8e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738' +
    'b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5';
  const whole = new XSalsa20(NONCE, FIRST_KEY);
  whole.update(new Uint8Array(32));
  assert.equal(Buffer.from(whole.update(message)).toString('hex'), expected);

  const bytewise = new XSalsa20(NONCE, FIRST_KEY);
  bytewise.update(new Uint8Array(32));
  const out = Buffer.alloc(message.length);
  for (let i = 0; i < message.length; i++) bytewise.update(message.subarray(i, i + 1), out.subarray(i, i + 1));
  assert.equal(out.toString('hex'), expected);
});

/** Update lengths that cross block (64), group (256) and piece boundaries, and random ones. */
function updateLengths(seed: number, count: number): number[] {
  const edges = [0, 1, 3, 63, 64, 65, 191, 255, 256, 257, 1000, 4096, XSALSA20_PIECE_BYTES - 1, XSALSA20_PIECE_BYTES, XSALSA20_PIECE_BYTES + 1, 3 * XSALSA20_PIECE_BYTES + 77];
  let x = seed;
  return Array.from({ length: count }, (_, i) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return i % 2 === 0 ? edges[x % edges.length] : x % 70_000;
  });
}

test('equals the xsalsa20 package of stock pnet on random keys, nonces, data and update sizes', () => {
  for (let round = 0; round < 8; round++) {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const ours = new XSalsa20(nonce, key);
    const stock = stockXSalsa20(nonce, key);
    let offset = 0;
    for (const length of updateLengths(round + 1, 120)) {
      const input = randomBytes(length);
      const expected = Buffer.from(stock.update(input));
      assert.ok(Buffer.from(ours.update(input)).equals(expected), `round ${round}: the update of ${length} bytes at keystream offset ${offset} differs`);
      offset += length;
    }
    stock.finalize();
  }
});

test('an update may write over its own input, or into a view of a larger buffer', () => {
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const data = randomBytes(100_003);
  const expected = Buffer.from(stockXSalsa20(nonce, key).update(data));
  const inPlace = Buffer.from(data);
  const cipher = new XSalsa20(nonce, key);
  cipher.update(inPlace.subarray(0, 17), inPlace.subarray(0, 17));
  cipher.update(inPlace.subarray(17), inPlace.subarray(17));
  assert.ok(inPlace.equals(expected));

  const wide = Buffer.alloc(data.length + 10, 0xaa);
  new XSalsa20(nonce, key).update(data, wide.subarray(5, 5 + data.length));
  assert.ok(wide.subarray(5, 5 + data.length).equals(expected));
  assert.deepEqual([...wide.subarray(0, 5), ...wide.subarray(5 + data.length)], Array(10).fill(0xaa), 'nothing outside the output view is written');
});

test('two ciphers used in turn keep their own positions (one kernel is shared)', () => {
  const [keyA, keyB] = [randomBytes(32), randomBytes(32)];
  const [nonceA, nonceB] = [randomBytes(24), randomBytes(24)];
  const a = new XSalsa20(nonceA, keyA);
  const b = new XSalsa20(nonceB, keyB);
  const stockA = stockXSalsa20(nonceA, keyA);
  const stockB = stockXSalsa20(nonceB, keyB);
  for (const length of updateLengths(99, 60)) {
    const input = randomBytes(length);
    assert.ok(Buffer.from(a.update(input)).equals(Buffer.from(stockA.update(input))));
    assert.ok(Buffer.from(b.update(input)).equals(Buffer.from(stockB.update(input))));
  }
});

test('the block counter carries into its high word past 2^32 blocks', () => {
  // 256 GiB into a stream (too far to reach through the stock package): eight blocks from block
  // 2^32 - 2 in one update, where the kernel carries between lanes, against each block computed
  // alone, as lane 0 with both counter words set from JavaScript.
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const cipher = new XSalsa20(nonce, key) as unknown as { counter: number; update: XSalsa20['update'] };
  cipher.counter = 2 ** 32 - 2;
  const across = Buffer.from(cipher.update(new Uint8Array(8 * 64)));
  const blockByBlock = Buffer.concat(
    Array.from({ length: 8 }, (_, i) => {
      const one = new XSalsa20(nonce, key) as unknown as { counter: number; update: XSalsa20['update'] };
      one.counter = 2 ** 32 - 2 + i;
      return Buffer.from(one.update(new Uint8Array(64)));
    }),
  );
  assert.ok(across.equals(blockByBlock), 'four-block groups and single blocks agree across the carry');
  assert.ok(!across.subarray(64, 128).equals(across.subarray(128, 192)), 'blocks 2^32-1 and 2^32 differ');
});
