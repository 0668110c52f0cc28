import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { IO_CHUNK_LENGTH } from './constants.js';
import type { Basis } from './patch.js';

/** A file's bytes in chunks of IO_CHUNK_LENGTH, read ahead while the consumer computes. */
export function readFileChunks(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: IO_CHUNK_LENGTH }) as AsyncIterable<Uint8Array>;
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
