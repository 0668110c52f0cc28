// Every decoder of outside input gets random bytes and mutations of valid input (fast-check) and
// only ever throws its own typed error: the protocols' messages and framing (ProtocolError), the
// delta engine's signature and delta (DeltaError), the index's stored values (StoreCorruptError),
// mesh keys (InvalidMeshKeyError) and the folder's settings (ConfigError).
//
// MESH_FUZZ_RUNS sets the runs per property: FUZZ_CI_RUNS by default (npm test), more with
// `npm run fuzz` (20,000 unless MESH_FUZZ_RUNS says otherwise). A failure prints fast-check's seed
// and path; rerun with MESH_FUZZ_SEED=<seed> to reproduce it.
import assert from 'node:assert/strict';
import type { Stream } from '@libp2p/interface';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyDelta, collect, DeltaError, encodeDelta, encodeSignature, decodeSignature, signatureOptionsFor } from '../src/delta/index.js';
import { InvalidMeshKeyError } from '../src/node/errors.js';
import { ConfigError, parseFolderConfig } from '../src/node/config.js';
import { generateMeshKey, parseMeshKey } from '../src/node/keys.js';
import { MeshProtocolError, StreamEndedError } from '../src/protocol/errors.js';
import {
  BatchBuilder,
  decodeIndexBatch,
  decodeIndexRequest,
  decodeTransferRequest,
  decodeTransferResponse,
  encodeIndexRequest,
  encodeTransferRequest,
  encodeTransferResponse,
} from '../src/protocol/messages-codec.js';
import { readChunks, readMessage, StreamReader } from '../src/protocol/streams.js';
import { StoreCorruptError } from '../src/store/errors.js';
import { decodeRecord, encodeRecord } from '../src/store/record-codec.js';
import { decodeScanEntry, encodeScanEntry } from '../src/store/scan-entry-codec.js';
import { DEVICE_A, DEVICE_B, fileChange } from './protocol-helpers.js';
import { chunksOf, memoryBasis, pseudoRandomBytes } from './helpers.js';

/** Runs per property in CI; `npm run fuzz` raises it. */
const FUZZ_CI_RUNS = 300;
const RUNS = Number(process.env.MESH_FUZZ_RUNS ?? FUZZ_CI_RUNS);
const SEED = process.env.MESH_FUZZ_SEED === undefined ? undefined : Number(process.env.MESH_FUZZ_SEED);
const options = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

/** Random bytes, or a valid sample with a few bytes changed, cut, inserted or repeated. */
function inputs(samples: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), value: fc.nat(64) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), value: fc.nat(64) }),
  );
  const mutated = fc.tuple(fc.constantFrom(...samples), fc.array(edit, { minLength: 1, maxLength: 6 })).map(([sample, edits]) => {
    let bytes = Buffer.from(sample);
    for (const { kind, at, value } of edits) {
      const i = bytes.length === 0 ? 0 : at % bytes.length;
      if (kind === 'set' && bytes.length > 0) bytes[i] = value;
      else if (kind === 'cut') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + value)]);
      else if (kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, i), Buffer.of(value), bytes.subarray(i)]);
      else if (kind === 'repeat') bytes = Buffer.concat([bytes.subarray(0, i + value), bytes.subarray(i)]);
    }
    return new Uint8Array(bytes);
  });
  return fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated);
}

/** Calls `decode`; passes if it returns or throws an instance of `typed`. */
function onlyTyped(typed: abstract new (...args: never[]) => Error, decode: () => unknown): void {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof typed, `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

async function onlyTypedAsync(typed: abstract new (...args: never[]) => Error, decode: () => Promise<unknown>): Promise<void> {
  try {
    await decode();
  } catch (error) {
    assert.ok(error instanceof typed, `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

/**
 * A libp2p stream that has received `bytes` and then the peer's end (or a reset, with `reset`):
 * the parts of the Stream interface StreamReader uses.
 */
function receivedStream(bytes: Uint8Array, pieces: number, reset = false): Stream {
  const target = new EventTarget() as EventTarget & Record<string, unknown>;
  Object.assign(target, {
    status: 'open',
    readStatus: 'readable',
    remoteWriteStatus: 'writable',
    readBufferLength: 0,
    maxReadBufferLength: 0,
    pause() {},
    resume() {},
  });
  const reader = new StreamReader(target as unknown as Stream);
  const size = Math.max(1, Math.ceil(bytes.length / pieces));
  for (let at = 0; at < bytes.length; at += size) {
    const event = new Event('message') as Event & { data: Uint8Array };
    event.data = bytes.subarray(at, at + size);
    target.dispatchEvent(event);
  }
  if (reset) {
    const event = new Event('close') as Event & { error: Error; local: boolean };
    event.error = new Error('stream reset');
    event.local = false;
    target.dispatchEvent(event);
  } else {
    target.dispatchEvent(new Event('remoteCloseWrite'));
  }
  return Object.assign(target, { reader }) as unknown as Stream;
}

const readerOf = (stream: Stream) => (stream as unknown as { reader: StreamReader }).reader;

// Valid samples to mutate.
const record = fileChange('docs/notes.txt', 300_000, { version: [{ device: DEVICE_A, value: 3 }, { device: DEVICE_B, value: 1 }] });
const batch = (() => {
  const builder = new BatchBuilder();
  builder.add({ ...record, sequence: 4 });
  builder.add({ ...fileChange('b', 0), sequence: 5 });
  return builder.take(5, 8);
})();
const transferRequest = encodeTransferRequest({ path: 'docs/notes.txt', version: record.version, contentHash: record.contentHash });
const framedSamples = [Buffer.concat([Buffer.of(transferRequest.length), transferRequest]), Buffer.of(3, 0, 1, 2, 0)];

describe('fuzzing: every decoder only throws its own typed errors', () => {
  it(`protocol messages: index request and batch, transfer request and response (${RUNS} runs each)`, () => {
    fc.assert(fc.property(inputs([encodeIndexRequest(2 ** 40)]), (bytes) => onlyTyped(MeshProtocolError, () => decodeIndexRequest(bytes))), options);
    fc.assert(fc.property(inputs([batch, new BatchBuilder().take(9, 9)]), (bytes) => onlyTyped(MeshProtocolError, () => decodeIndexBatch(bytes))), options);
    fc.assert(fc.property(inputs([transferRequest]), (bytes) => onlyTyped(MeshProtocolError, () => decodeTransferRequest(bytes))), options);
    fc.assert(
      fc.property(inputs([encodeTransferResponse({ status: 'BUSY', message: 'busy' })]), (bytes) => onlyTyped(MeshProtocolError, () => decodeTransferResponse(bytes))),
      options,
    );
  });

  it(`framing: length-prefixed messages and chunked streams, cut or reset anywhere (${RUNS} runs each)`, async () => {
    await fc.assert(
      fc.asyncProperty(inputs(framedSamples), fc.integer({ min: 1, max: 8 }), fc.boolean(), async (bytes, pieces, reset) => {
        const reader = readerOf(receivedStream(bytes, pieces, reset));
        await onlyTypedAsync(MeshProtocolError, async () => {
          while ((await readMessage(reader, 1024, 'a message')) !== undefined);
        });
      }),
      options,
    );
    // A message the reader says is queued whole is read without the stream's end cutting it short.
    await fc.assert(
      fc.asyncProperty(inputs(framedSamples), fc.integer({ min: 1, max: 8 }), async (bytes, pieces) => {
        const reader = readerOf(receivedStream(bytes, pieces, false));
        for (;;) {
          const queued = reader.messageQueued();
          let message: Uint8Array | undefined;
          try {
            message = await readMessage(reader, 1024, 'a message');
          } catch (error) {
            assert.ok(!queued || !(error instanceof StreamEndedError), 'a queued message ran past the end of the stream');
            return;
          }
          if (message === undefined) {
            assert.equal(queued, false, 'a message said to be queued was not there');
            return;
          }
        }
      }),
      options,
    );
    const chunked = Buffer.concat([Buffer.of(4, 0, 1, 2, 3), Buffer.of(1, 2), Buffer.of(0)]);
    await fc.assert(
      fc.asyncProperty(inputs([chunked]), fc.integer({ min: 1, max: 8 }), fc.boolean(), async (bytes, pieces, reset) => {
        const reader = readerOf(receivedStream(bytes, pieces, reset));
        await onlyTypedAsync(MeshProtocolError, () => collect(readChunks(reader, 'a delta', { maxBytes: 4096 })));
      }),
      options,
    );
  });

  it(`the delta engine: signatures and deltas (${RUNS} runs each)`, async () => {
    const basis = pseudoRandomBytes(5000, 1);
    const target = Buffer.concat([basis.subarray(0, 2000), pseudoRandomBytes(300, 2), basis.subarray(2100)]);
    const signature = await collect(encodeSignature(chunksOf(basis), { ...signatureOptionsFor(basis.length), blockLength: 700 }));
    const delta = await collect(encodeDelta(await decodeSignature(chunksOf(signature)), chunksOf(target)));
    await fc.assert(
      fc.asyncProperty(inputs([signature]), async (bytes) => onlyTypedAsync(DeltaError, () => decodeSignature(chunksOf(bytes, 97)))),
      options,
    );
    await fc.assert(
      fc.asyncProperty(inputs([delta]), async (bytes) => onlyTypedAsync(DeltaError, () => collect(applyDelta(memoryBasis(basis), chunksOf(bytes, 97))))),
      options,
    );
  });

  it(`the index's stored values: records and scan entries (${RUNS} runs each)`, () => {
    fc.assert(fc.property(inputs([encodeRecord({ ...record, sequence: 4 })]), (bytes) => onlyTyped(StoreCorruptError, () => decodeRecord(bytes))), options);
    fc.assert(
      fc.property(inputs([encodeScanEntry(record)]), (bytes) => onlyTyped(StoreCorruptError, () => decodeScanEntry('docs/notes.txt', bytes))),
      options,
    );
  });

  it(`text: mesh keys and folder settings (${RUNS} runs each)`, () => {
    const key = generateMeshKey();
    const keyText = fc.oneof(fc.string({ maxLength: 80 }), fc.tuple(fc.nat(key.length), fc.string({ maxLength: 3 })).map(([at, s]) => key.slice(0, at) + s + key.slice(at + 1)));
    fc.assert(fc.property(keyText, (text) => onlyTyped(InvalidMeshKeyError, () => parseMeshKey(text))), options);
    const config = 'port = 41235\npeers = ["/ip4/192.168.1.20/tcp/41235"]\nmdns = true\npull-concurrency = 4\n';
    const configText = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.tuple(fc.nat(config.length), fc.string({ maxLength: 8 })).map(([at, s]) => config.slice(0, at) + s + config.slice(at + 1)),
    );
    fc.assert(fc.property(configText, (text) => onlyTyped(ConfigError, () => parseFolderConfig(text, 'config'))), options);
  });
});
