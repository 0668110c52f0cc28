/** The built `mesh` command (dist/) as the benchmarks run it: where it is, whether it is current, a key. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runMeasured, sourcesChangedSince } from './common.js';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

/** Why the built command cannot be run (a message for the user), or undefined; warns when src/ is newer than dist/. */
export function builtCliProblem(): string | undefined {
  if (!existsSync(CLI)) return `${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first`;
  // The benchmark runs dist/, so an edit in src/ since the last build would go unmeasured.
  if (sourcesChangedSince(ROOT, CLI)) console.log('warning: src/ changed since the last build: run `npm run build` to measure the current code\n');
  return undefined;
}

/** A new mesh key from `mesh keygen`. */
export async function meshKeygen(): Promise<string> {
  const { stdout } = await runMeasured(process.execPath, [CLI, 'keygen']);
  const key = /mesh1[0-9a-f]{64}/.exec(stdout.toString('utf8'))?.[0];
  if (key === undefined) throw new Error(`\`mesh keygen\` printed no key: ${stdout.toString('utf8')}`);
  return key;
}
