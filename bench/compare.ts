/**
 * Side-by-side benchmark of mesh, Syncthing and rsync (issue 7): the same scenarios for each tool,
 * its nodes in network namespaces on a bridge, wire bytes off the hosts' eth0, completion found by
 * polling the receiving folder.
 *
 *   npm run bench:compare                               every tool, 256 MiB large file (about 15 min); root
 *   MESH_COMPARE_MIB=32 npx tsx bench/compare.ts        a smaller large file
 *   MESH_COMPARE_TOOLS=mesh,syncthing-tuned ...         some of: mesh, syncthing, syncthing-tuned, rsync
 *
 * A tool that is not installed is skipped with a line saying how to get it (nothing is installed).
 * Results go to bench-out/compare.json and compare.md, each node's log to bench-out/compare-*.log.
 * Exit code: 0 the run finished (figures are reported, not judged), 1 it could not run, a step
 * failed, or a receiver ended with the wrong content.
 */
import { execFile } from 'node:child_process';
import { mkdir, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { netnsUnavailable } from '../test/netns.js';
import { BenchError, describeMachine, fileMibFromEnvironment, runBench } from './common.js';
import { EDIT_DESCRIPTION } from './edit-pair.js';
import { builtCliProblem } from './mesh-cli.js';
import type { Tool } from './compare/cluster.js';
import { OUT_DIR } from './compare/logs.js';
import { meshTool } from './compare/mesh.js';
import { buildTable, markdown } from './compare/report.js';
import { runTool, type ToolResults } from './compare/run-tool.js';
import { rsyncTool } from './compare/rsync.js';
import { problems } from './compare/scenarios.js';
import { syncthingDefault, syncthingTuned } from './compare/syncthing.js';

const MIB = 1024 * 1024;
const DEFAULT_FILE_MIB = 256;
const MIN_FILE_MIB = 4; // the edit's 256 overwrites of 10 KiB need room to spread out
const MAX_FILE_MIB = 4096;
const TOOLS: readonly Tool[] = [meshTool, syncthingDefault, syncthingTuned, rsyncTool];
/** The command each tool needs, and how to get it. */
const COMMANDS: Record<string, string> = { syncthing: 'syncthing', 'syncthing-tuned': 'syncthing', rsync: 'rsync' };
const INSTALL_HINT = 'apt-get install syncthing rsync';

function readTools(): Tool[] {
  const raw = process.env.MESH_COMPARE_TOOLS;
  if (raw === undefined || raw === '') return [...TOOLS];
  const names = raw.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = names.filter((name) => !TOOLS.some((tool) => tool.name === name));
  if (unknown.length > 0) throw new BenchError(`MESH_COMPARE_TOOLS: unknown ${unknown.join(', ')}; choose from ${TOOLS.map((t) => t.name).join(', ')}`);
  return TOOLS.filter((tool) => names.includes(tool.name));
}

async function installed(command: string): Promise<boolean> {
  try {
    await promisify(execFile)(command, ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** The tools that can run; a line for each that cannot. */
async function available(tools: readonly Tool[]): Promise<Tool[]> {
  const ready: Tool[] = [];
  for (const tool of tools) {
    const command = COMMANDS[tool.name];
    const problem = command === undefined ? builtCliProblem() : (await installed(command)) ? undefined : `${command} is not installed (${INSTALL_HINT})`;
    if (problem === undefined) ready.push(tool);
    else console.log(`skipping ${tool.name}: ${problem}`);
  }
  return ready;
}

async function checkFreeSpace(fileBytes: number, tools: number): Promise<void> {
  // Per tool (its folders stay until the run ends): the file on both nodes, its edited copy staged,
  // a receiver's temp file, small files.
  const needed = tools * (5 * fileBytes + 64 * MIB);
  const info = await statfs(os.tmpdir());
  const free = info.bavail * info.bsize;
  if (free < needed) throw new BenchError(`the benchmark needs ${(needed / 1e9).toFixed(2)} GB free in ${os.tmpdir()}, there is ${(free / 1e9).toFixed(2)} GB`);
}

function onSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`\ninterrupted by ${signal}: nodes, namespaces and temporary files removed\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

async function main(): Promise<number> {
  const fileBytes = fileMibFromEnvironment('MESH_COMPARE_MIB', { fallback: DEFAULT_FILE_MIB, min: MIN_FILE_MIB, max: MAX_FILE_MIB }) * MIB;
  const unavailable = await netnsUnavailable();
  if (unavailable !== undefined) throw new BenchError(`bench:compare runs its nodes in network namespaces: ${unavailable}`);
  const tools = await available(readTools());
  if (tools.length === 0) throw new BenchError('no tool to run');
  await checkFreeSpace(fileBytes, tools.length);
  await mkdir(OUT_DIR, { recursive: true });
  // The netns helpers' own hooks (kill the nodes, delete the namespaces) run first, installed with the first LAN.
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const machine = describeMachine();
  console.log(`bench:compare: ${tools.map((t) => t.name).join(', ')}; ${fileBytes / MIB} MiB large file`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.os}, load average ${machine.loadAverage1m.toFixed(2)} at start`);
  const results: ToolResults[] = [];
  for (const tool of tools) {
    const started = Date.now();
    console.log(`\n${tool.name}: ${tool.setup}`);
    results.push(await runTool(tool, fileBytes));
    console.log(`${tool.name}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  const table = buildTable(results, fileBytes);
  const text = markdown(table);
  console.log(`\n${text}\n\nratios: how many times better mesh is (> 1: mesh better; seconds, bytes and MiB: other / mesh, MB/s: mesh / other)`);
  const failed = results.flatMap((r) => Object.entries(r.errors).map(([step, message]) => `${r.tool}, ${step}: ${message}`));
  for (const line of [...failed, ...problems]) console.log(`  ${line}`);
  const how = {
    nodes: 'each node in its own network namespace on a bridge; wire bytes: the sum of every node\'s eth0 received bytes (each byte on the bridge once), until 2.5 s after the receiver had the change',
    completion: 'polling the receiving folder: content of the small file, size of the large one then its SHA-256, every file of a tree with its size then its content',
    edit: EDIT_DESCRIPTION,
    memory: 'sum of VmRSS (now) and of VmHWM (peak, sampled every 250 ms) of every process in a node\'s namespace',
    cpu: 'user + system seconds of every process in the nodes\' namespaces (with the workers they waited for), and of rsync\'s pushes',
  };
  await writeFile(path.join(OUT_DIR, 'compare.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, fileBytes, how, results, table, problems }, null, 2)}\n`);
  await writeFile(path.join(OUT_DIR, 'compare.md'), `${text}\n`);
  console.log(`\nresults written to bench-out/compare.json and compare.md; node logs in bench-out/compare-*.log`);
  return failed.length > 0 || problems.length > 0 ? 1 : 0;
}

await runBench('bench/compare', main);
