import { relativePathProblem } from '../folder/paths.js';
import { MAX_VECTOR_DEVICES, vectorProblem, type VersionVector } from '../store/version-vector.js';
import { BATCH_TARGET_BYTES, MAX_BATCH_RECORDS, MAX_FETCH_FILE_BYTES, MAX_FETCH_FILES, MAX_REFUSAL_MESSAGE_LENGTH } from './constants.js';
import { ProtocolError, type RefusalStatus } from './errors.js';
import { encodeVarint } from './varint.js';
import {
  FetchReply as WireFetchReply,
  FetchRequest as WireFetchRequest,
  IndexBatch,
  IndexRequest,
  TransferRequest as WireTransferRequest,
  TransferResponse as WireTransferResponse,
  WireRecord,
} from './messages.js';
import { CONTENT_HASH_BYTES, fromWire, toWire, vectorFromWire, vectorToWire, type RemoteRecord } from './wire-record.js';

/**
 * The protocols' messages as bytes and back. Encoders take checked values; decoders trust nothing:
 * every failure, the protobuf runtime's own included, is a ProtocolError.
 */

function decodeWith<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw new ProtocolError(`malformed ${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function safeCount(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new ProtocolError(`${what} ${value} is not a whole number below 2^53`);
  return value;
}

// ---- Index exchange ----

export function encodeIndexRequest(since: number): Uint8Array {
  return IndexRequest.encode({ since });
}

/** The `since` of a request. */
export function decodeIndexRequest(bytes: Uint8Array): number {
  const request = decodeWith('index request', () => IndexRequest.decode(bytes));
  return safeCount(request.since, 'since');
}

export interface Batch {
  readonly records: RemoteRecord[];
  /** The highest sequence the batch covers (its last record's, or the last one sent before for an empty batch). */
  readonly lastSequence: number;
  /**
   * The sender's highest sequence when it wrote the batch, never below lastSequence (a sender
   * that does not say is taken to have sent everything it had).
   */
  readonly head: number;
}

const RECORDS_TAG = (1 << 3) | 2;
const LAST_SEQUENCE_TAG = (2 << 3) | 0;
const HEAD_TAG = (3 << 3) | 0;

/**
 * Gathers records into one IndexBatch message of at most MAX_BATCH_RECORDS records and about
 * BATCH_TARGET_BYTES (a larger record travels alone). Each record is encoded once: a protobuf
 * message is the concatenation of its fields, so the batch is the records' bytes, each behind its
 * tag and length, then last_sequence and head (tested against the generated decoder).
 */
export class BatchBuilder {
  private parts: Uint8Array[] = [];
  private length = 0;
  private records = 0;

  get count(): number {
    return this.records;
  }

  get byteLength(): number {
    return this.length;
  }

  /**
   * Adds `record` unless the batch is full (then returns false and adds nothing: send the batch
   * and add it to the next). Throws UnsendableRecordError for a record no peer would accept.
   */
  add(record: RemoteRecord): boolean {
    if (this.records >= MAX_BATCH_RECORDS) return false;
    const bytes = WireRecord.encode(toWire(record));
    const header = Uint8Array.from([RECORDS_TAG, ...encodeVarint(bytes.length)]);
    if (this.records > 0 && this.length + header.length + bytes.length > BATCH_TARGET_BYTES) return false;
    this.parts.push(header, bytes);
    this.length += header.length + bytes.length;
    this.records++;
    return true;
  }

  /** The batch's bytes, and a fresh start. `head`: this index's highest sequence now. */
  take(lastSequence: number, head: number): Uint8Array {
    if (lastSequence > 0) this.parts.push(Uint8Array.from([LAST_SEQUENCE_TAG, ...encodeVarint(lastSequence)]));
    if (head > 0) this.parts.push(Uint8Array.from([HEAD_TAG, ...encodeVarint(head)]));
    const out = Buffer.concat(this.parts);
    this.parts = [];
    this.length = 0;
    this.records = 0;
    return out;
  }
}

/**
 * A batch a peer sent, every record checked (fromWire), in strictly increasing sequence order and
 * none above the batch's lastSequence.
 */
export function decodeIndexBatch(bytes: Uint8Array): Batch {
  const batch = decodeWith('index batch', () =>
    IndexBatch.decode(bytes, { limits: { records: MAX_BATCH_RECORDS, records$: { version: MAX_VECTOR_DEVICES } } }),
  );
  const lastSequence = safeCount(batch.lastSequence, 'last sequence');
  const head = Math.max(safeCount(batch.head, 'head'), lastSequence);
  const records = batch.records.map(fromWire);
  for (let k = 0; k < records.length; k++) {
    const { sequence } = records[k];
    if (k > 0 && sequence <= records[k - 1].sequence) throw new ProtocolError('batch records are not in sequence order');
    if (sequence > lastSequence) throw new ProtocolError(`batch holds sequence ${sequence} above its last sequence ${lastSequence}`);
  }
  return { records, lastSequence, head };
}

// ---- Transfer ----

/** Which version of which file a puller wants. */
export interface TransferRequest {
  /** Folder-relative path. */
  readonly path: string;
  /** The version the puller saw announced. */
  readonly version: VersionVector;
  /** That version's content hash (32 bytes). */
  readonly contentHash: Uint8Array;
  /** The client answers the delta's SIGN instructions (the fine round); default false. */
  readonly fineRound?: boolean;
  /**
   * The client checks what it rebuilds against `contentHash` itself, so a delta from an empty
   * signature may leave its file hash as zeros (DeltaOptions.receiverChecksContent); default false.
   */
  readonly contentChecked?: boolean;
}

/** Why `request` is not a valid transfer request, or undefined. */
export function transferRequestProblem(request: TransferRequest): string | undefined {
  const path = relativePathProblem(request.path);
  if (path !== undefined) return `path ${JSON.stringify(request.path)} ${path}`;
  if (request.version.length === 0) return 'empty version';
  const vector = vectorProblem(request.version);
  if (vector !== undefined) return vector;
  if (request.contentHash.length !== CONTENT_HASH_BYTES) return `content hash of ${request.contentHash.length} bytes, not ${CONTENT_HASH_BYTES}`;
  return undefined;
}

export function encodeTransferRequest(request: TransferRequest): Uint8Array {
  return WireTransferRequest.encode(transferRequestToWire(request));
}

function transferRequestToWire(request: TransferRequest): WireTransferRequest {
  const problem = transferRequestProblem(request);
  if (problem !== undefined) throw new RangeError(`invalid transfer request: ${problem}`);
  return {
    path: request.path,
    version: vectorToWire(request.version),
    contentHash: request.contentHash as Uint8Array<ArrayBuffer>,
    fineRound: request.fineRound === true,
    contentChecked: request.contentChecked === true,
  };
}

function transferRequestFromWire(wire: WireTransferRequest, what: string): TransferRequest {
  const request: TransferRequest = {
    path: wire.path,
    version: vectorFromWire(wire.version),
    contentHash: new Uint8Array(wire.contentHash),
    fineRound: wire.fineRound === true,
    contentChecked: wire.contentChecked === true,
  };
  const problem = transferRequestProblem(request);
  if (problem !== undefined) throw new ProtocolError(`${what}: ${problem}`);
  return request;
}

export function decodeTransferRequest(bytes: Uint8Array): TransferRequest {
  const wire = decodeWith('transfer request', () => WireTransferRequest.decode(bytes, { limits: { version: MAX_VECTOR_DEVICES } }));
  return transferRequestFromWire(wire, 'transfer request');
}

export type TransferStatus = 'OK' | RefusalStatus;

export interface TransferResponse {
  readonly status: TransferStatus;
  /** For people; untrusted when received. */
  readonly message: string;
}

const STATUS_TO_WIRE: Readonly<Record<TransferStatus, WireTransferResponse.Status>> = {
  OK: WireTransferResponse.Status.OK,
  NOT_FOUND: WireTransferResponse.Status.NOT_FOUND,
  CHANGED: WireTransferResponse.Status.CHANGED,
  BUSY: WireTransferResponse.Status.BUSY,
};
const STATUS_FROM_WIRE: ReadonlyMap<WireTransferResponse.Status, TransferStatus> = new Map(
  Object.entries(STATUS_TO_WIRE).map(([status, wire]) => [wire, status as TransferStatus]),
);

/** Cut by code points, so no surrogate pair is split. */
function cutMessage(message: string): string {
  return message.length <= MAX_REFUSAL_MESSAGE_LENGTH ? message : [...message].slice(0, MAX_REFUSAL_MESSAGE_LENGTH).join('');
}

export function encodeTransferResponse(response: TransferResponse): Uint8Array {
  return WireTransferResponse.encode({ status: STATUS_TO_WIRE[response.status], message: cutMessage(response.message) });
}

export function decodeTransferResponse(bytes: Uint8Array): TransferResponse {
  const wire = decodeWith('transfer response', () => WireTransferResponse.decode(bytes));
  const status = STATUS_FROM_WIRE.get(wire.status);
  if (status === undefined) throw new ProtocolError(`transfer response with status ${String(wire.status)}`);
  return { status, message: wire.message };
}

// ---- Fetch ----

/** The files a FetchRequest asks for: from 1 to MAX_FETCH_FILES exact versions. */
export function encodeFetchRequest(requests: readonly TransferRequest[]): Uint8Array {
  if (requests.length === 0 || requests.length > MAX_FETCH_FILES) throw new RangeError(`a fetch asks for 1 to ${MAX_FETCH_FILES} files, not ${requests.length}`);
  return WireFetchRequest.encode({ files: requests.map(transferRequestToWire) });
}

export function decodeFetchRequest(bytes: Uint8Array): TransferRequest[] {
  const wire = decodeWith('fetch request', () =>
    WireFetchRequest.decode(bytes, { limits: { files: MAX_FETCH_FILES, files$: { version: MAX_VECTOR_DEVICES } } }),
  );
  if (wire.files.length === 0) throw new ProtocolError('fetch request for no file');
  return wire.files.map((file, k) => transferRequestFromWire(file, `fetch request, file ${k}`));
}

/** One file of a fetch, as the server answers it: its bytes, or why not. */
export type FetchReply =
  | { readonly status: 'OK'; readonly content: Uint8Array; readonly compressed: boolean }
  | { readonly status: RefusalStatus; readonly message: string };

const FETCH_STATUS_TO_WIRE: Readonly<Record<TransferStatus, WireFetchReply.Status>> = {
  OK: WireFetchReply.Status.OK,
  NOT_FOUND: WireFetchReply.Status.NOT_FOUND,
  CHANGED: WireFetchReply.Status.CHANGED,
  BUSY: WireFetchReply.Status.BUSY,
};
const FETCH_STATUS_FROM_WIRE: ReadonlyMap<WireFetchReply.Status, TransferStatus> = new Map(
  Object.entries(FETCH_STATUS_TO_WIRE).map(([status, wire]) => [wire, status as TransferStatus]),
);

export function encodeFetchReply(reply: FetchReply): Uint8Array {
  if (reply.status === 'OK') {
    if (reply.content.length > MAX_FETCH_FILE_BYTES) throw new RangeError(`a fetched file holds at most ${MAX_FETCH_FILE_BYTES} bytes`);
    return WireFetchReply.encode({ status: WireFetchReply.Status.OK, message: '', content: reply.content as Uint8Array<ArrayBuffer>, compressed: reply.compressed });
  }
  return WireFetchReply.encode({ status: FETCH_STATUS_TO_WIRE[reply.status], message: cutMessage(reply.message), content: new Uint8Array(0), compressed: false });
}

/** A reply, checked: a known status, content only with OK, at most MAX_FETCH_FILE_BYTES of it, a bounded message. */
export function decodeFetchReply(bytes: Uint8Array): FetchReply {
  const wire = decodeWith('fetch reply', () => WireFetchReply.decode(bytes));
  const status = FETCH_STATUS_FROM_WIRE.get(wire.status);
  if (status === undefined) throw new ProtocolError(`fetch reply with status ${String(wire.status)}`);
  if (wire.message.length > MAX_REFUSAL_MESSAGE_LENGTH * 2) throw new ProtocolError(`fetch reply with a message of ${wire.message.length} characters`);
  if (status === 'OK') {
    if (wire.content.length > MAX_FETCH_FILE_BYTES) throw new ProtocolError(`fetch reply with ${wire.content.length} bytes, over ${MAX_FETCH_FILE_BYTES}`);
    return { status, content: wire.content, compressed: wire.compressed };
  }
  if (wire.content.length > 0 || wire.compressed) throw new ProtocolError(`fetch reply ${status} with content`);
  return { status, message: wire.message };
}
