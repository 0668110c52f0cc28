/** One tool through every scenario: two nodes for the common ones, then three nodes for the mesh of three. */
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLan } from '../../test/netns.js';
import { forgetRecentDeletes } from '../fresh-disk.js';
import { BenchScope } from '../scope.js';
import { MemorySampler, type Cluster, type NodeMemory, type Tool } from './cluster.js';
import * as scenario from './scenarios.js';

export interface ToolResults {
  tool: string;
  setup: string;
  latency?: scenario.LatencyFigures;
  small?: scenario.StepFigures;
  large?: scenario.ThroughputFigures;
  edit?: scenario.EditFigures;
  rename?: scenario.StepFigures;
  deleteFolder?: scenario.StepFigures;
  conflict?: scenario.ConflictFigures;
  /** Each node's memory after the two-node scenarios (RSS now, peak seen). */
  memory?: NodeMemory[];
  threeNodes?: scenario.LatencyFigures;
  /** Steps that failed (timed out, a node died), by step name. */
  errors: Record<string, string>;
}

/** Work folders still on disk: removed at exit too, whatever ends the run. */
const workDirs = new Set<string>();
let exitHookInstalled = false;

/** After the first createLan: its exit hook (kill the nodes, delete the namespaces) then runs before this one. */
function removeWorkDirsAtExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of workDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  });
}

/** A LAN of `nodes` hosts, the tool started on it with a fresh work folder; the LAN removed when `scope` closes, the folder at exit. */
async function startCluster(scope: BenchScope, tool: Tool, nodes: number): Promise<{ cluster: Cluster; staging: string }> {
  const lan = await createLan(scope, nodes);
  removeWorkDirsAtExit();
  // Each tool starts without the cost of files deleted before it (fresh-disk.ts).
  console.log(`  ${await forgetRecentDeletes()}`);
  // Removed only when the whole run ends: on ext4 without a journal (this machine's disk) a new
  // file's inode search skips every inode freed in the last minute or more, so deleting one tool's
  // thousands of files slowed the next tool's small files (seen as 1.3-1.7 s of system time).
  const workDir = await mkdtemp(path.join(os.tmpdir(), `mesh-compare-${tool.name}-`));
  workDirs.add(workDir);
  // Outside every node's folder, on the same file system: files are made here, then renamed in whole.
  const staging = path.join(workDir, 'staging');
  await mkdir(staging);
  return { cluster: await tool.start(scope, lan, workDir, nodes), staging };
}

/**
 * Runs `step` and stores its figures under `name`; a failed step is recorded and the next one runs,
 * unless the cluster itself has failed (then the error ends this tool's run).
 */
async function record<K extends keyof ToolResults>(results: ToolResults, cluster: Cluster, name: K, step: () => Promise<ToolResults[K]>): Promise<void> {
  const started = Date.now();
  try {
    results[name] = await step();
    console.log(`  ${results.tool}: ${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    results.errors[name] = error instanceof Error ? error.message : String(error);
    console.log(`  ${results.tool}: ${name} FAILED: ${results.errors[name].split('\n')[0]}`);
    if (cluster.failure() !== undefined) throw error;
  }
}

async function twoNodes(tool: Tool, fileBytes: number, results: ToolResults): Promise<void> {
  const scope = new BenchScope();
  let sampler: MemorySampler | undefined;
  try {
    const { cluster, staging } = await startCluster(scope, tool, 2);
    sampler = new MemorySampler(cluster);
    await record(results, cluster, 'latency', () => scenario.latency(cluster));
    await record(results, cluster, 'small', () => scenario.smallFiles(cluster, staging));
    await record(results, cluster, 'large', () => scenario.largeFile(cluster, staging, fileBytes));
    if (results.large !== undefined) {
      await record(results, cluster, 'edit', () => scenario.edit(cluster, staging, fileBytes));
      await record(results, cluster, 'rename', () => scenario.renameLarge(cluster, fileBytes + 1));
    }
    await record(results, cluster, 'deleteFolder', () => scenario.deleteFolder(cluster, staging));
    if (tool.twoWay) await record(results, cluster, 'conflict', () => scenario.concurrentEdit(cluster));
    results.memory = sampler.now();
  } finally {
    sampler?.stop();
    await scope.close();
  }
}

async function threeNodes(tool: Tool, results: ToolResults): Promise<void> {
  const scope = new BenchScope();
  try {
    const { cluster } = await startCluster(scope, tool, 3);
    await record(results, cluster, 'threeNodes', () => scenario.threeNodeLatency(cluster));
  } finally {
    await scope.close();
  }
}

export async function runTool(tool: Tool, fileBytes: number): Promise<ToolResults> {
  const results: ToolResults = { tool: tool.name, setup: tool.setup, errors: {} };
  for (const [part, run] of [
    ['two nodes', () => twoNodes(tool, fileBytes, results)],
    ['three nodes', () => (tool.twoWay ? threeNodes(tool, results) : Promise.resolve())],
  ] as const) {
    try {
      await run();
    } catch (error) {
      results.errors[part] = error instanceof Error ? error.message : String(error);
      console.log(`  ${tool.name}: ${part} stopped: ${results.errors[part]}`);
    }
  }
  return results;
}
