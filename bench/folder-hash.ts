/**
 * Speed of the folder scanner's file hasher on one large file (page cache warm, as after a copy),
 * and of a first scan and a rescan of a folder of many small files.
 *
 *   npx tsx bench/folder-hash.ts                   512 MiB file, 20,000 small files
 *   MESH_BENCH_MIB=64 MESH_BENCH_FILES=2000 npx tsx bench/folder-hash.ts
 *
 * Target: at least 500 MB/s on the large file. Exit code 2 when missed. Everything it writes goes
 * to a temp directory that is removed at the end.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashFile } from '../src/folder/hasher.js';
import { initFolder, openScanner } from '../src/folder/index.js';
import { MemoryStore } from '../src/store/memory-store.js';

const MIB = 1024 * 1024;
const MB = 1e6;
const FILE_MIB = Number(process.env.MESH_BENCH_MIB ?? 512);
const SMALL_FILES = Number(process.env.MESH_BENCH_FILES ?? 20_000);
const SMALL_FILE_BYTES = 1024;
const FILES_PER_DIRECTORY = 500;
const RUNS = 3;
const TARGET_MB_S = 500;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function writeLargeFile(file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w');
  const chunk = Buffer.allocUnsafe(8 * MIB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  try {
    for (let at = 0; at < bytes; at += chunk.length) {
      chunk.writeUInt32LE(at >>> 0, 0); // no two chunks alike
      await handle.write(chunk, 0, Math.min(chunk.length, bytes - at), at);
    }
  } finally {
    await handle.close();
  }
}

function memorySha256MBs(bytes: number): number {
  const data = Buffer.alloc(MIB, 7);
  const hash = createHash('sha256');
  const started = performance.now();
  for (let at = 0; at < bytes; at += MIB) hash.update(data);
  hash.digest();
  return bytes / MB / ((performance.now() - started) / 1000);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-bench-hash-'));
try {
  const large = path.join(dir, 'large.bin');
  const bytes = FILE_MIB * MIB;
  await writeLargeFile(large, bytes);
  await hashFile(large); // warm: page cache and JIT
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    await hashFile(large);
    rates.push(bytes / MB / ((performance.now() - started) / 1000));
  }
  await rm(large);
  const rate = median(rates);
  console.log(`hashFile, ${FILE_MIB} MiB: ${rate.toFixed(0)} MB/s (runs: ${rates.map((r) => r.toFixed(0)).join(', ')}; SHA-256 in memory: ${memorySha256MBs(bytes).toFixed(0)} MB/s)`);

  const root = path.join(dir, 'folder');
  await mkdir(root);
  for (let i = 0; i < SMALL_FILES; i++) {
    const sub = path.join(root, `d${Math.floor(i / FILES_PER_DIRECTORY)}`);
    if (i % FILES_PER_DIRECTORY === 0) await mkdir(sub);
    await writeFile(path.join(sub, `f${i}.txt`), Buffer.alloc(SMALL_FILE_BYTES, i & 0xff));
  }
  await initFolder(root);
  const scanner = await openScanner({ root, store: new MemoryStore() });
  const first = await scanner.scan();
  const again = await scanner.scan();
  console.log(
    `scan of ${SMALL_FILES} files of ${SMALL_FILE_BYTES} B: first ${first.durationMs.toFixed(0)} ms (${first.counts.added} added), ` +
      `rescan ${again.durationMs.toFixed(0)} ms (${again.filesHashed} hashed)`,
  );
  if (rate < TARGET_MB_S) {
    console.log(`target missed: ${TARGET_MB_S} MB/s`);
    process.exitCode = 2;
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
