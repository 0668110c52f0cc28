import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pseudoRandomBytes, tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
// Resolved here: the command runs in a temp directory where 'tsx' would not be found.
const TSX = import.meta.resolve('tsx');

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `mesh ARGS` from source, as a user would run the command. */
function mesh(args: string[], options: { cwd: string; stdin?: Buffer }): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: options.cwd });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(options.stdin);
  });
}

/** One clear line on stderr, no stack trace. */
function assertOneLine(result: Result, pattern: RegExp): void {
  const lines = result.stderr.trim().split('\n').filter((line) => !line.startsWith('(run with --help'));
  assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
}

describe('mesh rdiff', () => {
  it('signature, delta and patch through files rebuild the new file', async (t) => {
    const cwd = await tempDir(t);
    const old = pseudoRandomBytes(300_000, 1);
    const changed = Buffer.concat([old.subarray(0, 1000), Buffer.from('inserted'), old.subarray(1000)]);
    await writeFile(join(cwd, 'old'), old);
    await writeFile(join(cwd, 'new'), changed);
    assert.equal((await mesh(['rdiff', 'signature', 'old', 'sig'], { cwd })).code, 0);
    assert.equal((await mesh(['rdiff', 'delta', 'sig', 'new', 'delta'], { cwd })).code, 0);
    const patched = await mesh(['rdiff', 'patch', 'old', 'delta', 'out', '--stats'], { cwd });
    assert.equal(patched.code, 0);
    assert.match(patched.stderr, /patch: 300008 bytes/);
    assert.deepEqual(await readFile(join(cwd, 'out')), changed);
    // The delta carries the change, not the file.
    assert.ok((await readFile(join(cwd, 'delta'))).length < 2000);
  });

  it('- reads stdin and writes stdout', async (t) => {
    const cwd = await tempDir(t);
    const old = pseudoRandomBytes(50_000, 2);
    const changed = Buffer.from(old.slice(0, 40_000));
    await writeFile(join(cwd, 'old'), old);
    const sig = await mesh(['rdiff', 'signature', '-', '-'], { cwd, stdin: Buffer.from(old) });
    assert.equal(sig.code, 0);
    const delta = await mesh(['rdiff', 'delta', '-', 'old', '-'], { cwd, stdin: sig.stdout });
    assert.equal(delta.code, 0);
    await writeFile(join(cwd, 'new'), changed);
    const delta2 = await mesh(['rdiff', 'delta', '-', 'new', '-'], { cwd, stdin: sig.stdout });
    const out = await mesh(['rdiff', 'patch', 'old', '-', '-'], { cwd, stdin: delta2.stdout });
    assert.equal(out.code, 0);
    assert.deepEqual(out.stdout, changed);
  });

  it('patch against the wrong basis fails with one line and leaves OUT unwritten', async (t) => {
    const cwd = await tempDir(t);
    const old = pseudoRandomBytes(20_000, 3);
    await writeFile(join(cwd, 'old'), old);
    await writeFile(join(cwd, 'other'), pseudoRandomBytes(20_000, 4));
    await writeFile(join(cwd, 'new'), Buffer.concat([old, Buffer.from('tail')]));
    await mesh(['rdiff', 'signature', 'old', 'sig'], { cwd });
    await mesh(['rdiff', 'delta', 'sig', 'new', 'delta'], { cwd });
    const result = await mesh(['rdiff', 'patch', 'other', 'delta', 'out'], { cwd });
    assert.equal(result.code, 1);
    assertOneLine(result, /does not match.*out was not written/);
    assert.deepEqual((await readdir(cwd)).sort(), ['delta', 'new', 'old', 'other', 'sig']);
  });

  it('bad input gets one clear line and a non-zero exit', async (t) => {
    const cwd = await tempDir(t);
    await writeFile(join(cwd, 'old'), 'x');
    await writeFile(join(cwd, 'sig'), 'not a signature');
    const cases: [string[], number, RegExp][] = [
      [['rdiff', 'signature', 'missing', 'out'], 1, /missing: no such file or directory/],
      [['rdiff', 'signature', 'old', 'sig'], 1, /sig: already exists \(use --force/],
      [['rdiff', 'delta', 'sig', 'old', 'delta'], 1, /malformed signature: .*bad magic/],
      [['rdiff', 'signature', '--block-size', 'lots', 'old', 's'], 2, /--block-size must be a whole number/],
      [['rdiff', 'signature', '--sum-size', '40', 'old', 's'], 2, /strong hash length must be .* 2 to 16/],
      [['rdiff', 'patch', '-', 'sig', 'out'], 2, /basis as a file/],
      [['rdiff', 'frobnicate'], 2, /unknown command 'frobnicate'/],
      [['rdiff', 'signature', 'old'], 2, /missing required argument 'sig'/],
      [['rdiff', 'signature', cwd, 's'], 1, /not a regular file/],
    ];
    for (const [args, code, pattern] of cases) {
      const result = await mesh(args, { cwd });
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assertOneLine(result, pattern);
    }
  });
});
