// `mesh join` sets V8 flags at run time: it tiers functions up later (src/cli/tier-up.ts) where V8
// takes that flag, and favours memory (src/cli/memory-mode.ts). On every Node it runs on, it must
// leave V8 alone where a flag does not exist: an unknown flag costs a line of noise on stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

function stderrOf(script: string): string {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return run.stderr;
}

test('tiering up later says nothing on stderr, on the V8 of this Node and on any other', () => {
  const tierUp = (call: string) => stderrOf(`import { tierUpLater } from './src/cli/tier-up.ts'; ${call};`);
  assert.equal(tierUp('tierUpLater()'), '');
  assert.equal(tierUp("tierUpLater('12.4.254.21')"), '');
  assert.equal(tierUp("tierUpLater('13.6.233.17')"), '');
});

test('favouring memory and a bulk flow starting and ending say nothing on stderr on this Node', () => {
  const script = "import { bulkFlowing, favourMemory } from './src/cli/memory-mode.ts'; favourMemory(); bulkFlowing(true); bulkFlowing(false);";
  assert.equal(stderrOf(script), '');
  // The check can fail: a flag this V8 does not know is reported on stderr.
  assert.match(stderrOf("import { setFlagsFromString } from 'node:v8'; setFlagsFromString('--no-such-flag-in-any-v8');"), /no-such-flag/);
});
