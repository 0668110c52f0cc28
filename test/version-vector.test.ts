import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteReader, ByteWriter } from '../src/delta/byte-reader.js';
import {
  compare,
  decodeVector,
  encodeVector,
  increment,
  MAX_VECTOR_DEVICES,
  merge,
  vectorProblem,
  VersionVectorError,
  type Ordering,
  type VersionVector,
} from '../src/store/version-vector.js';

// A small pool of devices, so that random vectors share devices and every ordering turns up.
const DEVICES = ['0000000000000001', '00000000000000a2', '3b00000000000000', '7fffffffffffffff', 'c0ffee0000000000', 'ffffffffffffffff'];
const device = fc.constantFrom(...DEVICES);
const counter = fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const vector: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.record({ device, value: counter }), { selector: (c) => c.device, maxLength: DEVICES.length })
  // Plain objects (fc.record makes null-prototype ones), as the code under test makes them.
  .map((counters) => counters.map(({ device, value }) => ({ device, value })).sort((a, b) => (a.device < b.device ? -1 : 1)));

const FLIPPED: Record<Ordering, Ordering> = { equal: 'equal', dominates: 'dominated', dominated: 'dominates', concurrent: 'concurrent' };

function sameVector(a: VersionVector, b: VersionVector): boolean {
  return a.length === b.length && a.every((c, k) => c.device === b[k].device && c.value === b[k].value);
}

class FormatError extends Error {
  override name = 'FormatError';
}

function readerOf(bytes: Uint8Array, fail = (message: string) => new VersionVectorError(message)): ByteReader {
  async function* oneChunk(): AsyncGenerator<Uint8Array> {
    yield bytes;
  }
  return new ByteReader(oneChunk(), fail);
}

async function decodeAll(bytes: Uint8Array): Promise<VersionVector> {
  const reader = readerOf(bytes);
  const decoded = await decodeVector(reader);
  await reader.expectEnd('a version vector');
  return decoded;
}

/** Hand-made encodings, for inputs encodeVector refuses to produce. */
function rawVector(count: number, counters: [string, number][]): Uint8Array {
  const writer = new ByteWriter();
  writer.varint(count);
  for (const [id, value] of counters) {
    writer.bytes(Buffer.from(id, 'hex'));
    writer.varint(value);
  }
  return writer.take();
}

describe('version vectors: merge', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(vector, vector, vector, (a, b, c) => {
        assert.deepEqual(merge(a, b), merge(b, a));
        assert.deepEqual(merge(merge(a, b), c), merge(a, merge(b, c)));
        assert.deepEqual(merge(a, a), a);
      }),
    );
  });

  it('gives a valid vector that both inputs are equal to or dominated by', () => {
    fc.assert(
      fc.property(vector, vector, (a, b) => {
        const m = merge(a, b);
        assert.equal(vectorProblem(m), undefined);
        assert.ok(['equal', 'dominated'].includes(compare(a, m)), `a vs merge: ${compare(a, m)}`);
        assert.ok(['equal', 'dominated'].includes(compare(b, m)), `b vs merge: ${compare(b, m)}`);
      }),
    );
  });
});

describe('version vectors: compare', () => {
  it('a dominates or equals b exactly when merging b into a changes nothing', () => {
    fc.assert(
      fc.property(vector, vector, (a, b) => {
        const ordering = compare(a, b);
        const absorbs = ordering === 'dominates' || ordering === 'equal';
        assert.equal(absorbs, sameVector(merge(a, b), a), `compare says ${ordering}`);
      }),
    );
  });

  it('is antisymmetric: swapping the sides swaps dominates and dominated, keeps equal and concurrent', () => {
    fc.assert(fc.property(vector, vector, (a, b) => assert.equal(compare(b, a), FLIPPED[compare(a, b)])));
  });

  it('says equal only for equal vectors', () => {
    fc.assert(fc.property(vector, vector, (a, b) => assert.equal(compare(a, b) === 'equal', sameVector(a, b))));
  });

  it('finds the four orderings on small cases', () => {
    const [x, y] = DEVICES;
    assert.equal(compare([], []), 'equal');
    assert.equal(compare([{ device: x, value: 1 }], []), 'dominates');
    assert.equal(compare([{ device: x, value: 1 }], [{ device: x, value: 2 }]), 'dominated');
    assert.equal(compare([{ device: x, value: 1 }], [{ device: y, value: 1 }]), 'concurrent');
  });
});

describe('version vectors: increment', () => {
  it("makes a vector dominate its previous self, raising only that device's counter by one", () => {
    fc.assert(
      fc.property(
        vector.filter((v) => v.every((c) => c.value < Number.MAX_SAFE_INTEGER)),
        device,
        (v, d) => {
          const next = increment(v, d);
          assert.equal(vectorProblem(next), undefined);
          assert.equal(compare(next, v), 'dominates');
          assert.equal(compare(v, next), 'dominated');
          const before = new Map(v.map((c) => [c.device, c.value]));
          for (const c of next) assert.equal(c.value, (before.get(c.device) ?? 0) + (c.device === d ? 1 : 0));
          assert.equal(next.length, before.size + (before.has(d) ? 0 : 1));
        },
      ),
    );
  });

  it('refuses a malformed device id and a counter that would pass 2^53', () => {
    assert.throws(() => increment([], 'not-a-device'), VersionVectorError);
    assert.throws(() => increment([], 'ABCDEF0123456789'), VersionVectorError);
    assert.throws(() => increment([{ device: DEVICES[0], value: Number.MAX_SAFE_INTEGER }], DEVICES[0]), VersionVectorError);
  });
});

describe('version vectors: encoding', () => {
  it('round-trips every valid vector, with nothing left over', async () => {
    await fc.assert(fc.asyncProperty(vector, async (v) => assert.deepEqual(await decodeAll(encodeVector(v)), v)));
  });

  it('round-trips the largest vector allowed', async () => {
    const big = Array.from({ length: MAX_VECTOR_DEVICES }, (_, k) => ({ device: k.toString(16).padStart(16, '0'), value: k + 1 }));
    assert.deepEqual(await decodeAll(encodeVector(big)), big);
  });

  it('refuses to encode a vector that would not decode to itself', () => {
    const [x, y] = DEVICES;
    const bad: Record<string, VersionVector> = {
      'short device id': [{ device: 'abc', value: 1 }],
      'upper-case device id': [{ device: 'ABCDEF0123456789', value: 1 }],
      'zero counter': [{ device: x, value: 0 }],
      'fractional counter': [{ device: x, value: 1.5 }],
      'counter past 2^53': [{ device: x, value: 2 ** 53 }],
      unsorted: [
        { device: y, value: 1 },
        { device: x, value: 1 },
      ],
      duplicate: [
        { device: x, value: 1 },
        { device: x, value: 2 },
      ],
    };
    for (const [name, v] of Object.entries(bad)) assert.throws(() => encodeVector(v), VersionVectorError, name);
  });

  it('rejects zero counters, unsorted or repeated devices, too many devices and counters past 2^53', async () => {
    const [x, y] = DEVICES;
    const bad: Record<string, Uint8Array> = {
      'zero counter': rawVector(1, [[x, 0]]),
      unsorted: rawVector(2, [
        [y, 1],
        [x, 1],
      ]),
      repeated: rawVector(2, [
        [x, 1],
        [x, 1],
      ]),
      'too many devices': rawVector(MAX_VECTOR_DEVICES + 1, []),
      'counter past 2^53': rawVector(1, [[x, 2 ** 53]]),
    };
    for (const [name, bytes] of Object.entries(bad)) await assert.rejects(decodeAll(bytes), VersionVectorError, name);
  });

  it('rejects input truncated at any length', async () => {
    await fc.assert(
      fc.asyncProperty(
        vector.filter((v) => v.length > 0),
        fc.nat(),
        async (v, cut) => {
          const bytes = encodeVector(v);
          await assert.rejects(decodeAll(bytes.subarray(0, cut % bytes.length)), VersionVectorError);
        },
      ),
    );
  });

  it("reports every problem, truncation included, as the enclosing format's error", async () => {
    const formatError = (message: string) => new FormatError(message);
    const zero = rawVector(1, [[DEVICES[0], 0]]);
    const truncated = encodeVector([{ device: DEVICES[0], value: 300 }]).subarray(0, 9);
    await assert.rejects(decodeVector(readerOf(zero, formatError)), FormatError);
    await assert.rejects(decodeVector(readerOf(truncated, formatError)), FormatError);
  });
});
