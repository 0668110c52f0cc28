/** mesh in bench:compare: `mesh join` (dist/) on each host, static peers (mDNS off, as discovery is for the others). */
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BUILT_CLI, startJoin, type JoinProcess } from '../../test/join-helpers.js';
import type { Lan } from '../../test/netns.js';
import { meshKeygen } from '../mesh-cli.js';
import type { Cluster, Tool } from './cluster.js';
import { lastLines, logPath } from './logs.js';

const PORT = 41235;
const START_TIMEOUT_MS = 60_000;

function saveLogs(tool: string, nodes: readonly JoinProcess[]): void {
  nodes.forEach((node, i) => writeFileSync(logPath(tool, nodes.length, i), `${node.stdout}\n--- stderr ---\n${node.stderr}`));
}

export const meshTool: Tool = {
  name: 'mesh',
  twoWay: true,
  setup: `mesh join (dist/bundle/mesh.js) on each host, --no-mdns, --port ${PORT} and --peer /ip4/OTHER/tcp/${PORT} for each other host, a key from mesh keygen; default settings otherwise (watch delay 50 ms)`,
  async start(scope, lan: Lan, workDir, count): Promise<Cluster> {
    const key = await meshKeygen();
    const dirs = lan.hosts.slice(0, count).map((host) => path.join(workDir, `mesh-${host.index}`));
    const nodes: JoinProcess[] = [];
    // Registered before the nodes, so it runs after they have stopped (their last lines written).
    scope.after(async () => saveLogs('mesh', nodes));
    for (const [i, dir] of dirs.entries()) {
      await mkdir(dir);
      const peers = lan.hosts.slice(0, count).filter((other) => other.index !== i).flatMap((other) => ['--peer', `/ip4/${other.address}/tcp/${PORT}`]);
      nodes.push(startJoin(scope, lan, i, dir, key, ['--no-mdns', '--port', String(PORT), ...peers], { cli: BUILT_CLI }));
    }
    for (const node of nodes) {
      await node.waitForOutput(/scanned the folder/, START_TIMEOUT_MS);
      await node.waitForOutput(count === 2 ? /peer connected/ : /peer connected[^]*peer connected/, START_TIMEOUT_MS);
    }
    return {
      tool: 'mesh',
      lan,
      dirs,
      changed: async () => undefined,
      failure() {
        const index = nodes.findIndex((node) => node.child.exitCode !== null || node.child.signalCode !== null);
        if (index < 0) return undefined;
        return `mesh node ${index} exited (${nodes[index].child.exitCode ?? nodes[index].child.signalCode})\n${lastLines(nodes[index].stdout + nodes[index].stderr)}`;
      },
      extraCpuSeconds: () => 0,
    };
  },
};
