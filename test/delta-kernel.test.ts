import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { roll, rollFactor, weakHash } from '../src/delta/rolling-hash.js';
import { Kernel, KERNEL_SCRATCH_BYTES } from '../src/delta/wasm-kernel.js';

// The WebAssembly kernel must agree with the plain JavaScript definition of the rolling hash.
describe('the WebAssembly kernel agrees with the JavaScript rolling hash', () => {
  const kernel = new Kernel(64 * 1024);
  const at = KERNEL_SCRATCH_BYTES;

  it('weak hash of any range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.nat(), (bytes, cut) => {
        kernel.bytes.set(bytes, at);
        const start = bytes.length === 0 ? 0 : cut % bytes.length;
        assert.equal(kernel.weak(at + start, at + bytes.length), weakHash(bytes, start, bytes.length));
      }),
      { numRuns: 300 },
    );
  });

  it('rolling scan over any window length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 4000 }), fc.integer({ min: 1, max: 1000 }), (bytes, size) => {
        const blockLength = Math.min(size, bytes.length - 1);
        kernel.bytes.set(bytes, at + 256);
        kernel.setScanWindow(blockLength);
        // An empty prefilter: the scan runs to `stop`.
        const bits = at;
        kernel.bytes.fill(0, bits, bits + 256);
        const data = at + 256;
        const steps = bytes.length - blockLength;
        let expected = weakHash(bytes, 0, blockLength);
        const end = kernel.scan(data, data + steps, blockLength, expected, bits, 32 - 11);
        const factor = rollFactor(blockLength);
        for (let i = 0; i < steps; i++) expected = roll(expected, factor, bytes[i], bytes[i + blockLength]);
        assert.equal(end, data + steps);
        assert.equal(kernel.scannedHash, expected);
        assert.equal(expected, weakHash(bytes, steps, bytes.length));
      }),
      { numRuns: 200 },
    );
  });
});
