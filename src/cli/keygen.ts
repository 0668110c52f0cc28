import type { Command } from 'commander';
import { fetchStatus } from '../control/control-client.js';
import { CliError, printable } from './errors.js';
import { meshFolderRoot } from './status.js';

/** `mesh keygen`: a new mesh key on stdout, one line, for `mesh join --key` on every machine. */
export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('print a new mesh key (give the same key to `mesh join --key` on every machine of the mesh)')
    .action(async () => {
      // Loaded here: the key module brings libp2p's crypto, which other commands do not need.
      const { generateMeshKey } = await import('../node/keys.js');
      process.stdout.write(`${generateMeshKey()}\n`);
    });
}

/** `mesh key [dir]`: the key of the mesh a folder belongs to, and the command that joins another machine to it. */
export function registerKey(program: Command): void {
  program
    .command('key')
    .description('print the mesh key of a folder and the command to run on another machine')
    .argument('[dir]', 'the folder (default: the current directory)')
    .action(async (dir: string | undefined) => {
      const { formatMeshKey, readStoredMeshKey } = await import('../node/keys.js');
      const root = await meshFolderRoot(dir);
      const key = await readStoredMeshKey(root);
      if (key === undefined) throw new CliError(`${printable(root)} has no mesh key yet (mesh join ${printable(root)} makes one, or takes one with --key)`);
      const text = formatMeshKey(key);
      const lines = [`mesh key: ${text}`, `On each other machine, run:  npx mesh join <dir> --key ${text}`];
      // With the node running, its addresses too, for networks where multicast discovery does not pass.
      const status = await fetchStatus(root).catch(() => undefined);
      const lan = status?.node.addresses.find((address) => !address.startsWith('/ip4/127.') && !address.startsWith('/ip6/::1/'));
      if (lan !== undefined) lines.push(`Where machines do not find each other on their own, add:  --peer ${lan}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
