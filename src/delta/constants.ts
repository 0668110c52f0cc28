/**
 * Limits and format constants of the delta engine. Every length, count and index read from a
 * signature or delta is checked against these before it is used.
 */

/** Smallest block: rsync's floor, used for every file up to BLOCK_SQRT_THRESHOLD bytes. */
export const MIN_BLOCK_LENGTH = 700;
/** Largest block chosen by the sqrt rule (rsync's MAX_BLOCK_SIZE). */
export const MAX_BLOCK_LENGTH = 128 * 1024;
/** Files up to this size use MIN_BLOCK_LENGTH (700 * 700). */
export const BLOCK_SQRT_THRESHOLD = MIN_BLOCK_LENGTH * MIN_BLOCK_LENGTH;
/** Block length when the input size is unknown (a pipe): librsync's default is 2 KiB; ours is a middle ground. */
export const DEFAULT_STREAM_BLOCK_LENGTH = 8 * 1024;
/** Bounds accepted from a signature or delta header (wider than what we choose, narrower than what would hurt). */
export const BLOCK_LENGTH_LIMITS = { min: 64, max: 1024 * 1024 } as const;

/** Full length of the per-block strong hash (seeded xxh128). */
export const STRONG_HASH_FULL_LENGTH = 16;
/** Shortest truncated strong hash we produce or accept (rsync's SHORT_SUM_LENGTH). */
export const STRONG_HASH_MIN_LENGTH = 2;
/** Bits of confidence added by rsync's formula for the truncated strong hash (BLOCKSUM_BIAS). */
export const STRONG_HASH_BIAS_BITS = 10;
/** Length of the per-transfer seed of the strong block hash. */
export const SEED_LENGTH = 8;

/** Most blocks a signature may describe: 2^23 blocks of 128 KiB is 1 TiB. */
export const MAX_SIGNATURE_BLOCKS = 1 << 23;
/** Block records per chunk of an encoded signature. */
export const SIGNATURE_CHUNK_RECORDS = 4096;
/** Largest file length a signature or delta may claim (JavaScript numbers stay exact below 2^53). */
export const MAX_FILE_LENGTH = Number.MAX_SAFE_INTEGER;

/** Largest literal carried by one delta instruction. */
export const MAX_LITERAL_LENGTH = 1024 * 1024;
/** Longest varint accepted: 8 bytes hold 56 bits, enough for any safe integer. */
export const MAX_VARINT_BYTES = 8;

/** Candidates examined per weak-hash lookup (rsync 3.5 caps its chain walk at 1024 too). */
export const MAX_CHAIN_WALK = 1024;
/**
 * Strong hashes computed for weak matches that turned out false, before delta gives up matching and
 * sends the rest as literal data: a fixed allowance plus one per FALSE_MATCH_BYTES_PER_CREDIT bytes
 * scanned. Honest data sees about blocks/2^32 false matches per byte; a crafted signature cannot
 * make delta cost more than sending the file whole.
 */
export const FALSE_MATCH_ALLOWANCE = 4096;
export const FALSE_MATCH_BYTES_PER_CREDIT = 4096;

/** Bytes read from a file or stream at a time. */
export const IO_CHUNK_LENGTH = 1024 * 1024;
/** Encoded output is yielded in pieces of about this size. */
export const OUTPUT_CHUNK_LENGTH = 256 * 1024;

export const SIGNATURE_MAGIC = 0x4d534947; // "MSIG"
export const DELTA_MAGIC = 0x4d444c54; // "MDLT"
export const FORMAT_VERSION = 1;
/** Delta format with the fine round's instructions (SIGN, COPY_AT); patch reads both versions. */
export const FINE_FORMAT_VERSION = 2;

/** Instruction tags of the delta format. */
export const OP_END = 0x00;
export const OP_COPY = 0x01;
export const OP_LITERAL = 0x02;
/** Version 2: asks the receiver for fine block hashes of a range of its basis (no output). */
export const OP_SIGN = 0x03;
/** Version 2: copies a byte range of the basis (the fine round's matches). */
export const OP_COPY_AT = 0x04;

/**
 * The fine round (fine-round.ts): a literal range between two matched blocks is matched again
 * against FINE_BLOCK_LENGTH blocks of the basis gap between those matches, which the receiver
 * hashes on request. 512 B minimises hashes plus the partial blocks left at each edge of an edit
 * (about 26 KiB of gap per edit of a 256 MiB file: 312 B of hashes, 512 B of edges).
 */
export const FINE_BLOCK_LENGTH = 512;
/** Bounds of a fine block length asked for by a SIGN instruction. */
export const FINE_BLOCK_LENGTH_LIMITS = { min: 64, max: 64 * 1024 } as const;
/** Files whose blocks are shorter than this get no fine round (they gain little, and pay a round trip). */
export const FINE_MIN_COARSE_BLOCK_LENGTH = 4 * FINE_BLOCK_LENGTH;
/** Longest basis range one SIGN may ask for (its answer: 8 Ki blocks, at most 160 KiB). */
export const MAX_FINE_GAP_LENGTH = 4 * 1024 * 1024;
/** SIGNs sent whose answers the sender has not used yet, at most (the pipeline's depth). */
export const MAX_PENDING_SIGNS = 64;
/** Instructions and ranges the sender holds back behind an unanswered SIGN, at most. */
export const MAX_HELD_ENTRIES = 4096;

/** Length of the content hash carried at the end of a delta. */
export const CONTENT_HASH_LENGTH = 32;
