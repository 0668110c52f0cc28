/**
 * The delta engine as `mesh join` runs it: in one long-lived process, with the JIT warm. Reads one
 * JSON request per line on stdin, `{"args": ["signature", "OLD", "SIG"]}`, runs `mesh rdiff ARGS`
 * through the built command's own code (files in, files out) and answers one line on stdout,
 * `{"seconds": 0.21, "code": 0}`. Started by bench/delta.ts; plain JavaScript on dist/ so that its
 * memory is the engine's, with no TypeScript loader beside it.
 */
import '../dist/polyfills.js';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { run } from '../dist/cli/program.js';

for await (const line of createInterface({ input: process.stdin })) {
  /** @type {{ args: string[] }} */
  const request = JSON.parse(line);
  const start = process.hrtime.bigint();
  const code = await run(['node', 'mesh', 'rdiff', ...request.args]);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  process.stdout.write(`${JSON.stringify({ seconds, code })}\n`);
}
