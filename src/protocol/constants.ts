import { MAX_PATH_BYTES } from '../folder/paths.js';

/** Protocol ids, as libp2p negotiates them. */
export const INDEX_PROTOCOL = '/mesh/index/1.0.0';
/** 2.0.0: the fine round (the client answers SIGN instructions on the same stream). */
export const TRANSFER_PROTOCOL = '/mesh/transfer/2.0.0';
export const FETCH_PROTOCOL = '/mesh/fetch/1.0.0';

const KiB = 1024;
const MiB = 1024 * KiB;

// Records on the wire (wire-record.ts).
/** Most block hashes a record may carry: 2^20 blocks of 128 KiB, files up to 128 GiB. */
export const MAX_WIRE_BLOCKS = 2 ** 20;
/** Longest symlink target, in UTF-8 bytes (PATH_MAX). */
export const MAX_SYMLINK_TARGET_BYTES = 4096;
/** A record at every limit at once: block hashes, path, target and a 1024-device vector, with room to spare. */
export const MAX_WIRE_RECORD_BYTES = MAX_WIRE_BLOCKS * 32 + MAX_PATH_BYTES + MAX_SYMLINK_TARGET_BYTES + 64 * KiB;

// Index exchange.
/** Most records in one IndexBatch. */
export const MAX_BATCH_RECORDS = 1000;
/** A batch is cut before it grows past this (a single larger record travels alone). */
export const BATCH_TARGET_BYTES = 1 * MiB;
/**
 * Batches that arrived together are handed to one apply (each apply drains its transfers at its
 * end: one apply per batch would drain them every batch), another joined while they hold fewer
 * records and bytes than these. So only partial batches (a scan's commits, 250 changes each) are
 * joined: joining full ones raised bench:pi's peak RSS in its index exchange of 100,000 records
 * from 195 to 212-215 MiB.
 */
export const MAX_APPLY_RECORDS = MAX_BATCH_RECORDS;
export const MAX_APPLY_BATCH_BYTES = BATCH_TARGET_BYTES;
/** Longest IndexBatch accepted: a full batch, or one record at every limit. */
export const MAX_INDEX_MESSAGE_BYTES = BATCH_TARGET_BYTES + MAX_WIRE_RECORD_BYTES;
/** Longest IndexRequest (one varint) accepted. */
export const MAX_INDEX_REQUEST_BYTES = 64;

// Transfer.
/** Longest TransferRequest accepted: a 4 KiB path, 1024 counters and a hash fit easily. */
export const MAX_TRANSFER_REQUEST_BYTES = 64 * KiB;
/** Longest TransferResponse accepted. */
export const MAX_TRANSFER_RESPONSE_BYTES = 4 * KiB;
/**
 * Largest signature a server reads: 64 MiB describes a basis of about 400 GiB in 128 KiB blocks.
 * The delta engine alone would accept 2^23 blocks (160 MiB with full hashes) per transfer.
 */
export const MAX_SIGNATURE_BYTES = 64 * MiB;
/** A refusal's message is cut to this many characters before it is sent. */
export const MAX_REFUSAL_MESSAGE_LENGTH = 1024;

// Fetch (whole files, many per stream).
/** Most files one FetchRequest asks for. */
export const MAX_FETCH_FILES = 256;
/** Largest file fetched whole: larger ones go by delta (transfer), whatever their basis. */
export const MAX_FETCH_FILE_BYTES = 1 * MiB;
/** A client cuts a batch before its files' sizes add up to more than this. */
export const FETCH_BATCH_TARGET_BYTES = 4 * MiB;
/** Longest FetchRequest accepted (a client cuts its batch before this). */
export const MAX_FETCH_REQUEST_BYTES = 1 * MiB;
/** Longest FetchReply accepted: a whole file, status and message (compressed or not). */
export const MAX_FETCH_REPLY_BYTES = MAX_FETCH_FILE_BYTES + 8 * KiB;

// Chunked byte streams (signature and delta).
/** Most payload bytes a receiver accepts in one chunk, as sent or once inflated. */
export const MAX_CHUNK_PAYLOAD_BYTES = 1 * MiB;
/**
 * Bytes of payload a sender puts in one chunk: as many as a receiver accepts. Each chunk is a write
 * (a muxer frame) and a step through the receiver's pipeline; with 256 KiB chunks bench:mesh's new
 * 256 MiB file moved ~7% slower (110 against 118 MB/s on average, slower in five of six alternating
 * pairs of runs).
 */
export const CHUNK_PAYLOAD_BYTES = MAX_CHUNK_PAYLOAD_BYTES;
/** Brotli quality: 1 is the fastest, and already halves text. */
export const BROTLI_QUALITY = 1;
/** A chunk is sent compressed only when that saves at least this fraction of it. */
export const MIN_COMPRESSION_SAVING = 0.1;
/** After a chunk that did not compress, this many chunks are sent raw without trying... */
export const INCOMPRESSIBLE_SKIP_CHUNKS = 8;
/**
 * ...twice as many after each further one that did not, up to this (16 MiB of chunks): brotli on
 * random data is slow, and a large incompressible file used to spend a tenth of its chunks on it.
 */
export const MAX_INCOMPRESSIBLE_SKIP_CHUNKS = 64;

// Flow control (see shared/notes/stack.md: the obvious code does not bound memory).
/** A writer waits while the stream holds more than this many unsent bytes. */
export const WRITE_HIGH_WATER = 1 * MiB;
/** A reader pauses the stream when more than this many received bytes wait to be read... */
export const READ_HIGH_WATER = 1 * MiB;
/** ...and resumes it below this. */
export const READ_LOW_WATER = 512 * KiB;
/**
 * A chunked stream's reader hands on the pieces queued for a chunk joined, up to this many bytes:
 * fewer, larger pieces through the stages after it, for one copy.
 */
export const JOINED_PIECE_MAX_BYTES = 256 * KiB;

// Stream limits, per connection and protocol.
export const INDEX_MAX_INBOUND_STREAMS = 2;
export const INDEX_MAX_OUTBOUND_STREAMS = 2;
/** The puller runs at most 4 pulls at once; 8 leaves room for a retry while an old stream closes. */
export const TRANSFER_MAX_INBOUND_STREAMS = 8;
export const TRANSFER_MAX_OUTBOUND_STREAMS = 8;
/** The puller runs at most 2 fetch batches per peer at once; 4 leaves room for a retry. */
export const FETCH_MAX_INBOUND_STREAMS = 4;
export const FETCH_MAX_OUTBOUND_STREAMS = 4;
/** Transfers (and fetch batches) one server runs at once over all peers; more are answered BUSY. */
export const MAX_ACTIVE_TRANSFERS = 8;
/**
 * Transfers one server runs at once for one peer (the puller's default concurrency): a peer that
 * holds its transfers open without reading cannot take every slot from the others.
 */
export const MAX_ACTIVE_TRANSFERS_PER_PEER = 4;

// Timeouts (milliseconds).
/** A transfer stream on which nothing moves for this long is aborted. */
export const TRANSFER_IDLE_TIMEOUT = 30_000;
/** The index stream's first message (request or first batch) must come within this. */
export const INDEX_FIRST_MESSAGE_TIMEOUT = 30_000;
/**
 * An index stream that ended (not by a protocol error) waits at most this long to see its
 * connection close: then it ended with it (the peer left, or a duplicate connection was closed),
 * and no warning is printed.
 */
export const INDEX_CONNECTION_CLOSE_WAIT = 1000;
/** An index server with nothing to send sends an empty batch this often... */
export const INDEX_KEEP_ALIVE_INTERVAL = 60_000;
/** ...so a client that hears nothing for this long (3 keep-alives) gives the stream up. */
export const INDEX_IDLE_TIMEOUT = 180_000;
/** A chunk sender silent for this long (busy computing) sends a keep-alive chunk. */
export const CHUNK_KEEP_ALIVE_INTERVAL = TRANSFER_IDLE_TIMEOUT / 3;
