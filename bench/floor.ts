/**
 * The least time a new large file can take to reach another node on this machine, with the work
 * mesh cannot leave out (issue 4): the sender hashes the file before it announces it, every byte
 * crosses the private network's XSalsa20 and noise's ChaCha20-Poly1305 on both sides, and the
 * receiver checks the SHA-256 of what it wrote. Each of those is timed alone on this machine, then
 * a bare transfer (read, TCP between two network namespaces, write, fsync: what any tool pays) is
 * timed; the floor assumes everything else costs nothing and the two nodes' work shares the cores
 * perfectly. Printed beside the anchor of issue 7 (tuned Syncthing's MB/s from the last
 * `npm run bench:compare`, bench-out/compare.json) and 2.5 times it.
 *
 *   npm run bench:floor                       256 MiB, about a minute; needs root (namespaces)
 *   MESH_FLOOR_MIB=64 npx tsx bench/floor.ts  quick run
 *
 * Writes bench-out/floor.json. Exit code 0; 1 when it could not run.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { DEFAULT_WATCH_DELAY_MS } from '../src/folder/watch-timing.js';
import { XSalsa20 } from '../src/node/xsalsa20.js';
import { createLan, netnsUnavailable, type Lan } from '../test/netns.js';
import { BenchError, describeMachine, fileMibFromEnvironment, randomChunks, runBench } from './common.js';
import { forgetRecentDeletes } from './fresh-disk.js';
import { ROOT } from './mesh-cli.js';
import { BenchScope } from './scope.js';

const MIB = 1024 * 1024;
const MB = 1e6;
const DEFAULT_FILE_MIB = 256;
const MIN_FILE_MIB = 16;
const MAX_FILE_MIB = 4096;
/** Each measurement is the best of this many runs: the floor is what the machine can do, not its noise. */
const RUNS = 3;
/** Issue 7's target for a new large file: this many times tuned Syncthing's MB/s. */
const TARGET_RATIO = 2.5;

/** Noise's largest message: 65,535 bytes on the wire, of which TAG_BYTES are the tag. */
const TAG_BYTES = 16;
const NOISE_PLAINTEXT_BYTES = 65_535 - TAG_BYTES;
/** What the private network XORs per noise message: the message and its 2-byte length. */
const PNET_MESSAGE_BYTES = 65_535 + 2;
/** The pieces the file is hashed in (mesh reads files in 1 MiB pieces). */
const HASH_PIECE_BYTES = MIB;
const TRANSFER_PORT = 41_299;
const PEER_SCRIPT = path.join(ROOT, 'bench', 'floor-peer.mjs');
const COMPARE_JSON = path.join(ROOT, 'bench-out', 'compare.json');
const OUT_JSON = path.join(ROOT, 'bench-out', 'floor.json');

interface PeerFigures {
  bytes: number;
  cpuSeconds: number;
  seconds: number;
}

/** CPU seconds `work` takes on this thread, the best of RUNS. */
function bestCpuSeconds(work: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < RUNS; run++) {
    const before = process.cpuUsage();
    work();
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  return best;
}

/** `total` bytes in messages of `size` (the last one shorter), each given to `each`. */
function inMessages(total: number, size: number, each: (message: Buffer) => void): void {
  const message = randomBytes(size);
  for (let done = 0; done < total; done += size) each(done + size <= total ? message : message.subarray(0, total - done));
}

function sha256Seconds(bytes: number): number {
  return bestCpuSeconds(() => {
    const hash = createHash('sha256');
    inMessages(bytes, HASH_PIECE_BYTES, (piece) => hash.update(piece));
    hash.digest();
  });
}

/** Noise seals each message with its own nonce (a counter) under one key; here the nonce stays (the cost is the same). */
function chachaSeconds(bytes: number): { seal: number; open: number } {
  const key = randomBytes(32);
  const nonce = Buffer.alloc(12);
  // The last message sealed of each length (a full one, and the file's short tail), opened below.
  const sealed = new Map<number, { ciphertext: Buffer; tag: Buffer }>();
  const seal = bestCpuSeconds(() =>
    inMessages(bytes, NOISE_PLAINTEXT_BYTES, (message) => {
      const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
      const ciphertext = cipher.update(message);
      cipher.final();
      sealed.set(message.length, { ciphertext, tag: cipher.getAuthTag() });
    }),
  );
  const open = bestCpuSeconds(() =>
    inMessages(bytes, NOISE_PLAINTEXT_BYTES, (message) => {
      const { ciphertext, tag } = sealed.get(message.length)!;
      const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(tag);
      decipher.update(ciphertext);
      decipher.final(); // throws unless the tag checks: the whole open was done
    }),
  );
  return { seal, open };
}

/** mesh's own XSalsa20 (the private network's cipher), one side: the same work XORs either way. */
function xsalsaSeconds(bytes: number): number {
  return bestCpuSeconds(() => {
    const stream = new XSalsa20(randomBytes(24), randomBytes(32));
    inMessages(bytes, PNET_MESSAGE_BYTES, (message) => stream.update(message, message));
  });
}

/** The first line of `child`'s output that `wanted` accepts; rejects if its output ends first. */
function lineOf(child: ChildProcess, wanted: (line: string) => boolean): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const found = new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      if (wanted(line)) resolve(line);
    });
    lines.on('close', () => reject(new BenchError('bench:floor: a transfer peer ended without its figures (see its stderr above)')));
  });
  found.catch(() => undefined); // awaited later; not an unhandled rejection meanwhile
  return found;
}

/** One bare transfer of `file` from host 0 to host 1 (the page cache as it is: the sender just wrote its file, as in bench:mesh). */
async function bareTransfer(lan: Lan, file: string, target: string): Promise<{ sender: PeerFigures; receiver: PeerFigures }> {
  const output: SpawnOptions = { stdio: ['ignore', 'pipe', 'inherit'] };
  const receiver = lan.spawn(1, process.execPath, [PEER_SCRIPT, 'receive', String(TRANSFER_PORT), target], output);
  const listening = lineOf(receiver, (line) => line === 'listening');
  const received = lineOf(receiver, (line) => line.startsWith('{'));
  await listening;
  const sender = lan.spawn(0, process.execPath, [PEER_SCRIPT, 'send', lan.hosts[1].address, String(TRANSFER_PORT), file], output);
  const [sentLine, receivedLine] = await Promise.all([lineOf(sender, (line) => line.startsWith('{')), received]);
  await Promise.all([sender, receiver].map(async (child) => {
    if (child.exitCode === null) await once(child, 'exit');
  }));
  return { sender: JSON.parse(sentLine) as PeerFigures, receiver: JSON.parse(receivedLine) as PeerFigures };
}

interface Anchor {
  date: string;
  syncthingTunedMBps: number;
  mesh: { mbPerSecond: number; cpuSeconds: number } | undefined;
}

/** Tuned Syncthing's (and mesh's) new-file MB/s from the last bench:compare, if it ran with both. */
function lastCompare(): Anchor | undefined {
  if (!existsSync(COMPARE_JSON)) return undefined;
  const compare = JSON.parse(readFileSync(COMPARE_JSON, 'utf8')) as { date: string; results: { tool: string; large?: { mbPerSecond: number; cpuSeconds: number } }[] };
  const largeOf = (tool: string) => compare.results.find((result) => result.tool === tool)?.large;
  const syncthing = largeOf('syncthing-tuned');
  return syncthing === undefined ? undefined : { date: compare.date, syncthingTunedMBps: syncthing.mbPerSecond, mesh: largeOf('mesh') };
}

async function main(): Promise<number> {
  const bytes = fileMibFromEnvironment('MESH_FLOOR_MIB', { fallback: DEFAULT_FILE_MIB, min: MIN_FILE_MIB, max: MAX_FILE_MIB }) * MIB;
  const unavailable = await netnsUnavailable();
  if (unavailable !== undefined) throw new BenchError(`bench:floor needs network namespaces (run it as root): ${unavailable}`);
  const machine = describeMachine();
  console.log(`bench:floor: the least time a new ${bytes / MIB} MiB file can take from one mesh node to another here`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load average ${machine.loadAverage1m.toFixed(2)} at start`);

  const sha256 = sha256Seconds(bytes);
  const chacha = chachaSeconds(bytes);
  const xsalsa = xsalsaSeconds(bytes);

  const scope = new BenchScope();
  let best: { sender: PeerFigures; receiver: PeerFigures } | undefined;
  try {
    const lan = await createLan(scope, 2);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-floor-'));
    scope.after(() => rm(dir, { recursive: true, force: true }));
    console.log(await forgetRecentDeletes());
    const file = path.join(dir, 'sent.bin');
    await writeFile(file, randomChunks('mesh bench floor', bytes, MIB));
    for (let run = 0; run < RUNS; run++) {
      const target = path.join(dir, 'received.bin');
      const figures = await bareTransfer(lan, file, target);
      if (figures.receiver.bytes !== bytes) throw new Error(`the receiver got ${figures.receiver.bytes} bytes of ${bytes}`);
      await rm(target);
      const cost = (f: typeof figures) => f.sender.cpuSeconds + f.receiver.cpuSeconds;
      if (best === undefined || cost(figures) < cost(best)) best = figures;
    }
  } finally {
    await scope.close();
  }
  const bare = best!;

  // Before any byte moves: the watcher's quiet time and the sender's hash of the file (its record names the content).
  const beforeTransfer = DEFAULT_WATCH_DELAY_MS / 1000 + sha256;
  // While bytes move, on either node: the bare transfer, both ciphers on both sides, the receiver's check.
  const transferCpu = bare.sender.cpuSeconds + bare.receiver.cpuSeconds + 2 * xsalsa + chacha.seal + chacha.open + sha256;
  const transferSeconds = Math.max(transferCpu / machine.cores, bare.receiver.seconds);
  const floorSeconds = beforeTransfer + transferSeconds;
  const floorMBps = bytes / MB / floorSeconds;

  const row = (what: string, value: string) => console.log(`  ${what.padEnd(74)} ${value}`);
  console.log(`\nwork mesh cannot leave out, CPU seconds on this machine (best of ${RUNS}):`);
  row('SHA-256 of the file (the sender before announcing it; the receiver again)', `${sha256.toFixed(3)} s, each`);
  row('noise ChaCha20-Poly1305: seal on the sender, open on the receiver', `${chacha.seal.toFixed(3)} s + ${chacha.open.toFixed(3)} s`);
  row('private network XSalsa20 (mesh\'s WebAssembly SIMD), each side', `${xsalsa.toFixed(3)} s`);
  row(`bare transfer, both nodes (read, TCP, write, fsync; ${bare.receiver.seconds.toFixed(2)} s)`, `${bare.sender.cpuSeconds.toFixed(2)} s + ${bare.receiver.cpuSeconds.toFixed(2)} s`);
  console.log('\nthe floor, with everything else free and the cores shared perfectly:');
  row(`before the transfer: watch delay ${DEFAULT_WATCH_DELAY_MS} ms + the sender's hash`, `${beforeTransfer.toFixed(2)} s`);
  row(`the transfer: ${transferCpu.toFixed(2)} CPU-s on ${machine.cores} cores`, `${transferSeconds.toFixed(2)} s`);
  row('least time for the new file', `${floorSeconds.toFixed(2)} s, ${floorMBps.toFixed(0)} MB/s`);

  const anchor = lastCompare();
  if (anchor === undefined) {
    console.log('\nno bench-out/compare.json with tuned Syncthing: run `npm run bench:compare` for the anchor');
  } else {
    const target = TARGET_RATIO * anchor.syncthingTunedMBps;
    const mesh = anchor.mesh === undefined ? '-' : `${anchor.mesh.mbPerSecond.toFixed(0)} MB/s with ${anchor.mesh.cpuSeconds.toFixed(2)} CPU-s`;
    console.log(`\nthe anchor (bench:compare of ${anchor.date}): tuned Syncthing ${anchor.syncthingTunedMBps.toFixed(0)} MB/s; mesh ${mesh}`);
    row(`issue 7's target, ${TARGET_RATIO}x tuned Syncthing`, `${target.toFixed(0)} MB/s, ${(bytes / MB / target).toFixed(2)} s`);
    row('the floor against it', `${(floorMBps / target).toFixed(2)}x`);
    // What the cores could still give the rest of mesh (libp2p, yamux, the protocol, writes, the collector) within the target's time.
    const spare = (bytes / MB / target - beforeTransfer) * machine.cores - transferCpu;
    row('CPU left for everything else within the target', `${Math.max(0, spare).toFixed(2)} s`);
    if (anchor.mesh !== undefined) row("what everything else cost mesh in that run", `${(anchor.mesh.cpuSeconds - transferCpu - sha256).toFixed(2)} s`);
  }

  await mkdir(path.dirname(OUT_JSON), { recursive: true });
  writeFileSync(
    OUT_JSON,
    `${JSON.stringify({ date: new Date().toISOString(), machine, fileBytes: bytes, cpuSeconds: { sha256, chachaSeal: chacha.seal, chachaOpen: chacha.open, xsalsa20: xsalsa }, bare, floor: { beforeTransfer, transferCpu, transferSeconds, seconds: floorSeconds, mbPerSecond: floorMBps }, anchor }, undefined, 2)}\n`,
  );
  console.log(`\nwritten to ${path.relative(ROOT, OUT_JSON)}`);
  return 0;
}

await runBench('bench:floor', main);
