/** Files the benchmarks make and check on a receiving node: cheap probes, then the content itself. */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { readChunks } from './edit-pair.js';

/** The file's size, or undefined while it is not there. */
export async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}

/** Whether the file holds exactly `expected` (false while it is missing). */
export async function contentIs(file: string, expected: Buffer): Promise<boolean> {
  try {
    return (await readFile(file)).equals(expected);
  } catch {
    return false;
  }
}

/** SHA-256 of a file, streamed (the large file is never held whole). */
export async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of readChunks(file)) hash.update(chunk);
  return hash.digest('hex');
}

/** The small file of the latency runs: its number in the first line, padded to `length` bytes. */
export function latencyContent(edit: number, length: number): Buffer {
  const header = `latency edit ${edit}\n`;
  return Buffer.from(header.padEnd(length, '.'), 'latin1');
}
