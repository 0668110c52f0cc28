import type { Command } from 'commander';

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
