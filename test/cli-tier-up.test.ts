// `mesh join` asks V8 to tier functions up later (src/cli/tier-up.ts) where V8 takes that flag;
// on other versions it must leave V8 alone: an unknown flag costs a line of noise on stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

function stderrOf(call: string): string {
  const script = `import { tierUpLater } from './src/cli/tier-up.ts'; ${call};`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return run.stderr;
}

test('tiering up later says nothing on stderr, on the V8 of this Node and on any other', () => {
  assert.equal(stderrOf('tierUpLater()'), '');
  assert.equal(stderrOf("tierUpLater('12.4.254.21')"), '');
  assert.equal(stderrOf("tierUpLater('13.6.233.17')"), '');
});
