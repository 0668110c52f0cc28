import { open, type FileHandle } from 'node:fs/promises';
import { IO_CHUNK_LENGTH } from './constants.js';
import type { Basis } from './patch.js';

/** Reads kept in flight ahead of the consumer, so the disk works while the engine hashes. */
const READ_AHEAD = 2;

export interface ReadOptions {
  /**
   * The consumer is done with each chunk when it asks for the next (it copies or hashes it at
   * once): buffers are then reused instead of allocated per chunk, which keeps memory flat.
   */
  recycle?: boolean;
}

/**
 * A file's bytes in chunks of IO_CHUNK_LENGTH, READ_AHEAD reads ahead of the consumer. Without
 * `recycle` each chunk is a new buffer the consumer may keep. Faster here than createReadStream,
 * which reads one chunk ahead through the stream machinery.
 */
export async function* readFileChunks(path: string, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
  const handle = await open(path, 'r');
  const pending: Promise<{ buffer: Buffer; length: number }>[] = [];
  // With `recycle`, READ_AHEAD + 1 buffers go round: the one handed out and those being read into.
  const spare: Buffer[] = [];
  let position = 0;
  let ended = false;
  const request = () => {
    // Not zero-filled: only the bytes read are handed out.
    const buffer = spare.pop() ?? Buffer.allocUnsafe(IO_CHUNK_LENGTH);
    const read = handle.read(buffer, 0, IO_CHUNK_LENGTH, position).then(({ bytesRead }) => {
      if (bytesRead < IO_CHUNK_LENGTH) ended = true;
      return { buffer, length: bytesRead };
    });
    // A read still in flight when the consumer stops early must not become an unhandled rejection.
    read.catch(() => undefined);
    pending.push(read);
    position += IO_CHUNK_LENGTH;
  };
  try {
    for (let i = 0; i < READ_AHEAD; i++) request();
    while (pending.length > 0) {
      const { buffer, length } = await pending.shift()!;
      if (!ended) request();
      if (length > 0) yield buffer.subarray(0, length);
      // The consumer asked for the next chunk, so (with `recycle`) it is done with this one.
      if (options.recycle === true) spare.push(buffer);
    }
  } finally {
    await Promise.allSettled(pending);
    await handle.close();
  }
}

/**
 * The bytes of `handle` from `start` to `end` (or to the file's end if sooner), in fresh buffers of
 * up to IO_CHUNK_LENGTH: the consumer may keep views of them (the delta's output does until sent).
 */
export async function* readFileRange(handle: FileHandle, start: number, end: number): AsyncGenerator<Uint8Array> {
  for (let at = start; at < end; ) {
    const buffer = Buffer.allocUnsafe(Math.min(IO_CHUNK_LENGTH, end - at));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
    if (bytesRead === 0) return;
    at += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

export interface OpenBasis extends Basis {
  close(): Promise<void>;
}

/** Opens a basis for patch: random-access reads, with the length as it was when opened. */
export async function openBasis(path: string): Promise<OpenBasis> {
  const handle: FileHandle = await open(path, 'r');
  try {
    const info = await handle.stat();
    return {
      length: info.size,
      read: async (target, position) => (await handle.read(target, 0, target.length, position)).bytesRead,
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** `bytes` as an async iterable of one chunk, what the streaming functions take. */
export async function* chunksOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Everything an async iterable yields, as one array: for tests and small inputs only. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of chunks) {
    parts.push(chunk);
    length += chunk.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
