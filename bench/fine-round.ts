/**
 * bench:delta's fine round: one transfer of NEW against OLD as `mesh join` runs it (signature of
 * OLD, the delta with the fine round, the patch answering its SIGNs, NEW written to a file), in
 * this process, the sender and the receiver taking turns on one thread. Bytes are counted both
 * ways (signature and answers from the receiver, delta from the sender), before compression.
 */
import { createHash } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import {
  applyDelta,
  decodeSignature,
  encodeDelta,
  encodeDeltaWithFineRound,
  encodeSignature,
  FineRoundAnswers,
  newDeltaStats,
  openBasis,
  readFileChunks,
  readFileRange,
  signatureOptionsFor,
  type FineRoundSender,
} from '../src/delta/index.js';
import { answerStreamReader } from '../test/helpers.js';

export interface FineRoundRun {
  fineRound: boolean;
  seconds: number;
  cpuSeconds: number;
  signatureBytes: number;
  deltaBytes: number;
  answerBytes: number;
  literalBytes: number;
}

async function* counted(source: AsyncIterable<Uint8Array>, count: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    count(chunk.length);
    yield chunk;
  }
}

/** One transfer of `newFile` to `outFile` against `oldFile`, with or without the fine round. */
export async function runTransfer(oldFile: string, newFile: string, outFile: string, fineRound: boolean): Promise<FineRoundRun> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const basisLength = (await stat(oldFile)).size;
  const run: FineRoundRun = { fineRound, seconds: 0, cpuSeconds: 0, signatureBytes: 0, deltaBytes: 0, answerBytes: 0, literalBytes: 0 };
  const signature = await decodeSignature(
    counted(encodeSignature(readFileChunks(oldFile, { recycle: true }), signatureOptionsFor(basisLength)), (n) => (run.signatureBytes += n)),
  );
  const answers = new FineRoundAnswers();
  const target = await open(newFile, 'r');
  const sender: FineRoundSender = {
    nextAnswer: answerStreamReader(answers, (length) => (run.answerBytes += length)),
    readTarget: (start, end) => readFileRange(target, start, end),
  };
  const stats = newDeltaStats();
  const source = readFileChunks(newFile, { recycle: true });
  const delta = fineRound ? encodeDeltaWithFineRound(signature, source, sender, stats) : encodeDelta(signature, source, stats);
  const basis = await openBasis(oldFile);
  const out = await open(outFile, 'w');
  try {
    for await (const chunk of applyDelta(basis, counted(delta, (n) => (run.deltaBytes += n)), { receiver: answers, recycle: true })) await out.write(chunk);
  } finally {
    await out.close();
    await basis.close();
    await target.close();
  }
  const used = process.cpuUsage(cpu);
  run.seconds = (performance.now() - started) / 1000;
  run.cpuSeconds = (used.user + used.system) / 1e6;
  run.literalBytes = stats.literalBytes;
  return run;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of readFileChunks(file, { recycle: true })) hash.update(chunk);
  return hash.digest('hex');
}

/** Both transfers, median of `runs` each after one untimed warm-up; checks that OUT is NEW. */
export async function benchFineRound(oldFile: string, newFile: string, outFile: string, runs: number): Promise<FineRoundRun[]> {
  const results: FineRoundRun[] = [];
  const expected = await sha256(newFile);
  for (const fineRound of [false, true]) {
    await runTransfer(oldFile, newFile, outFile, fineRound);
    const timed: FineRoundRun[] = [];
    for (let i = 0; i < runs; i++) timed.push(await runTransfer(oldFile, newFile, outFile, fineRound));
    if ((await sha256(outFile)) !== expected) throw new Error(`the transfer ${fineRound ? 'with' : 'without'} the fine round rebuilt another file`);
    timed.sort((a, b) => a.seconds - b.seconds);
    results.push(timed[Math.floor(timed.length / 2)]);
  }
  await rm(outFile, { force: true });
  return results;
}
