/** Trees of small files for the benchmarks: nested folders of 1-4 KiB files, each unlike the others. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { keystream, xorshift32 } from './common.js';

const KIB = 1024;
export const SMALL_MIN_BYTES = KIB;
export const SMALL_MAX_BYTES = 4 * KIB;
const SEED = 0x2545f491;

/** `tops` folders of `subs` folders of `perFolder` files, under one root folder. */
export interface TreeShape {
  root: string;
  tops: number;
  subs: number;
  perFolder: number;
}

/** bench:mesh's and bench:compare's tree: 4 × 5 folders of 100 files. */
export const SMALL_TREE: TreeShape = { root: 'tree', tops: 4, subs: 5, perFolder: 100 };

export function fileCount(shape: TreeShape): number {
  return shape.tops * shape.subs * shape.perFolder;
}

/** The path (with / separators) of the index-th file of a tree. */
export function smallFilePath(shape: TreeShape, index: number): string {
  const folder = Math.floor(index / shape.perFolder);
  const top = Math.floor(folder / shape.subs);
  const sub = folder % shape.subs;
  return `${shape.root}/t${top}/s${sub}/f${String(index % shape.perFolder).padStart(3, '0')}.bin`;
}

/** Writes the tree under `parent` (parent/shape.root/...); returns each file's path and size. */
export async function generateSmallFiles(parent: string, shape: TreeShape): Promise<Map<string, number>> {
  const random = xorshift32(SEED);
  const pool = keystream(`mesh bench: small files of ${shape.root}`).update(Buffer.alloc(1024 * KIB));
  const sizes = new Map<string, number>();
  for (let index = 0; index < fileCount(shape); index++) {
    const relative = smallFilePath(shape, index);
    const file = path.join(parent, ...relative.split('/'));
    if (index % shape.perFolder === 0) await mkdir(path.dirname(file), { recursive: true });
    const length = SMALL_MIN_BYTES + (random() % (SMALL_MAX_BYTES - SMALL_MIN_BYTES + 1));
    const offset = random() % (pool.length - length);
    const header = Buffer.from(`mesh bench small file ${index}\n`, 'latin1');
    await writeFile(file, Buffer.concat([header, pool.subarray(offset, offset + length - header.length)]));
    sizes.set(relative, length);
  }
  return sizes;
}
