import { MAX_VARINT_BYTES } from './constants.js';

type ErrorFactory = (message: string) => Error;

/**
 * Reads a binary format from a stream of chunks without trusting it: every read states how many
 * bytes it wants (callers bound that before asking), a truncated stream throws the format's own
 * error, and nothing is allocated by a length the input claims until the bytes are really there.
 */
export class ByteReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private chunk: Uint8Array = new Uint8Array(0);
  private offset = 0;
  private done = false;
  /** Bytes consumed so far, for error messages. */
  position = 0;

  constructor(
    source: AsyncIterable<Uint8Array>,
    /** Makes the format's own error; public so that decoders of embedded parts report through it too. */
    readonly fail: ErrorFactory,
  ) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /**
   * Stops the source after a failure (its finally blocks run: a file is closed, a stream let go)
   * rather than leaving that to the garbage collector.
   */
  async close(): Promise<void> {
    this.done = true;
    await this.iterator.return?.().catch(() => undefined);
  }

  private async fill(): Promise<boolean> {
    while (this.offset >= this.chunk.length) {
      if (this.done) return false;
      const next = await this.iterator.next();
      if (next.done === true) {
        this.done = true;
        return false;
      }
      this.chunk = next.value;
      this.offset = 0;
    }
    return true;
  }

  private truncated(what: string): Error {
    return this.fail(`truncated: input ended at byte ${this.position} while reading ${what}`);
  }

  async u8(what: string): Promise<number> {
    if (!(await this.fill())) throw this.truncated(what);
    this.position++;
    return this.chunk[this.offset++];
  }

  /** Exactly `length` bytes, copied into one new array. The caller has bounded `length`. */
  async bytes(length: number, what: string): Promise<Uint8Array> {
    // Not zero-filled: every byte is copied into, or we throw.
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      if (!(await this.fill())) throw this.truncated(what);
      const take = Math.min(length - filled, this.chunk.length - this.offset);
      out.set(this.chunk.subarray(this.offset, this.offset + take), filled);
      this.offset += take;
      filled += take;
      this.position += take;
    }
    return out;
  }

  async u32(what: string): Promise<number> {
    if (this.chunk.length - this.offset >= 4) {
      const c = this.chunk;
      const o = this.offset;
      this.offset += 4;
      this.position += 4;
      return ((c[o] << 24) | (c[o + 1] << 16) | (c[o + 2] << 8) | c[o + 3]) >>> 0;
    }
    const b = await this.bytes(4, what);
    return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  }

  /** Unsigned LEB128 of at most MAX_VARINT_BYTES bytes and at most 2^53 - 1, so always a safe integer. */
  async varint(what: string): Promise<number> {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const byte = await this.u8(what);
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw this.fail(`${what}: varint has a redundant trailing zero byte`);
        // 8 bytes hold 56 bits: above 2^53 the sum above is already rounded.
        if (value > Number.MAX_SAFE_INTEGER) throw this.fail(`${what}: varint above 2^53 - 1`);
        return value;
      }
      scale *= 128;
    }
    throw this.fail(`${what}: varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  /**
   * Yields exactly `length` bytes as views of the input chunks (no copy). Sources hand out fresh
   * buffers, so a view stays valid after later reads.
   */
  async *views(length: number, what: string): AsyncGenerator<Uint8Array> {
    let left = length;
    while (left > 0) {
      if (!(await this.fill())) throw this.truncated(what);
      const take = Math.min(left, this.chunk.length - this.offset);
      const view = this.chunk.subarray(this.offset, this.offset + take);
      this.offset += take;
      this.position += take;
      left -= take;
      yield view;
    }
  }

  /** Throws unless the input has ended: trailing bytes mean the stream is not what it claims. */
  async expectEnd(what: string): Promise<void> {
    if (await this.fill()) throw this.fail(`${what}: unexpected bytes after the end at byte ${this.position}`);
  }
}

/** Appends unsigned LEB128 varints and fixed-width integers to a growable buffer. */
export class ByteWriter {
  private buffer: Uint8Array;
  length = 0;

  constructor(private readonly initialCapacity = 1024) {
    this.buffer = Buffer.allocUnsafe(initialCapacity);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < this.length + extra) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  u32(value: number): void {
    this.reserve(4);
    const b = this.buffer;
    const o = this.length;
    b[o] = value >>> 24;
    b[o + 1] = value >>> 16;
    b[o + 2] = value >>> 8;
    b[o + 3] = value;
    this.length += 4;
  }

  varint(value: number): void {
    this.reserve(8);
    let v = value;
    while (v >= 0x80) {
      this.buffer[this.length++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buffer[this.length++] = v;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  /**
   * Hands over what was written and starts again. A large output is handed over as it is (no copy)
   * and a new buffer started; a small one (the fine round flushes often) is copied out, so the
   * buffer is kept rather than a new one of initialCapacity allocated per call.
   */
  take(): Uint8Array {
    if (this.length < this.buffer.length / 16) {
      const copy = Buffer.allocUnsafe(this.length);
      copy.set(this.buffer.subarray(0, this.length));
      this.length = 0;
      return copy;
    }
    const out = this.buffer.subarray(0, this.length);
    this.buffer = Buffer.allocUnsafe(this.initialCapacity);
    this.length = 0;
    return out;
  }
}
