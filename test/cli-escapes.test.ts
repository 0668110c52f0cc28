// Names and messages that carry terminal escape codes (a file name on disk, a path or message a
// peer sent) are printed escaped by `mesh join`'s log, `mesh status`, `mesh conflicts` and
// `mesh scan`: never a raw control character on the terminal.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { describeEvent } from '../src/cli/join.js';
import { printable } from '../src/cli/errors.js';
import { formatReport } from '../src/cli/scan.js';
import { conflictLines, formatStatus } from '../src/cli/status.js';
import { STATUS_VERSION, type NodeStatus } from '../src/control/status.js';
import type { ApplyReport } from '../src/node/apply-report.js';
import type { ScanReport } from '../src/folder/report.js';
import { SOURCE_CLI } from './join-helpers.js';
import { tempDir } from './helpers.js';

/** ESC sequences (colour, window title, CSI in 8 bits), BEL, NUL, DEL, a newline that would forge a log line. */
const EVIL = 'a\x1b[31mred\x1b]0;title\x07\u009b2J\0\x7f\nforged line';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u;

function assertSafe(output: string, what: string): void {
  assert.ok(!CONTROL.test(output), `${what} printed a raw control character: ${JSON.stringify(output)}`);
  assert.ok(!output.includes('\nforged line'), `${what} let a name start a line of its own`);
  assert.ok(output.includes('\\x1b'), `${what} shows the escape as text`);
}

const scanReport = (paths: string[]): ScanReport => ({
  scope: [''],
  added: paths,
  modified: paths,
  deleted: paths,
  moved: paths.map((p) => ({ from: p, to: p })),
  counts: { added: 1, modified: 1, deleted: 1, moved: 1, metadataUpdated: 0, unchanged: 0, errors: 1 },
  bytes: { added: 0, modified: 0, deleted: 0, moved: 0 },
  filesHashed: 0,
  bytesHashed: 0,
  errors: paths.map((path) => ({ path, message: `cannot read ${path}` })),
  truncated: false,
  durationMs: 1,
});

describe('terminal escapes in names', () => {
  it('printable escapes C0, DEL and C1 controls and keeps every other character', () => {
    assert.equal(printable('\x1b[31m\x07\0\x7f\u009b'), '\\x1b[31m\\x07\\x00\\x7f\\x9b');
    assert.equal(printable('café 文件 🎉'), 'café 文件 🎉');
  });

  it("mesh join's log: pulls, failures, announcements and a peer's messages", () => {
    const failed = { status: 'failed', path: EVIL, error: new Error(`bad ${EVIL}`), peer: '12D3KooWpeer', peerAtFault: true };
    const applied = { status: 'applied', path: EVIL, decision: 'apply', action: 'file', conflictCopy: EVIL, pull: { peer: '12D3KooWpeer', source: 'copy', from: EVIL, attempts: [], literalBytes: 0, reusedBytes: 1 } };
    const report = { outcomes: [applied, failed], applied: [applied], skipped: [], failed: [failed], changedLocally: [], conflictCopies: [EVIL], literalBytes: 0, reusedBytes: 1 } as unknown as ApplyReport;
    const lines = [
      ...describeEvent({ kind: 'applied', report, peer: '12D3KooWpeer' }, 'verbose'),
      ...describeEvent({ kind: 'scanned', report: scanReport([EVIL]) }, 'verbose'),
      ...describeEvent({ kind: 'initial-scan', report: scanReport([EVIL]) }, 'verbose'),
      ...describeEvent({ kind: 'error', peer: '12D3KooWpeer', message: `peer misbehaved: ${EVIL}` }, 'verbose'),
      ...describeEvent({ kind: 'peer-connected', peer: '12D3KooWpeer', address: `/dns4/${EVIL}/tcp/1` }, 'verbose'),
    ];
    assert.ok(lines.length >= 8);
    assertSafe(lines.join('\n'), "mesh join's log");
  });

  it('mesh status and mesh conflicts', () => {
    const status: NodeStatus = {
      version: STATUS_VERSION,
      node: { id: '12D3KooWnode', device: '0123456789abcdef', addresses: [], startedAt: new Date().toISOString() },
      folder: { root: `/home/${EVIL}`, files: 1, directories: 0, symlinks: 0, bytes: 1, inSync: true, needFiles: 0, needBytes: 0, receivingIndexes: 0 },
      peers: [{ id: '12D3KooWpeer', address: `/dns4/${EVIL}/tcp/1`, connectedSince: new Date().toISOString(), bytesIn: 0, bytesOut: 0, index: { received: 3, head: 9 } }],
      transfers: [{ path: EVIL, peer: '12D3KooWpeer', bytes: 1, size: 2, startedAt: new Date().toISOString() }],
      received: 0,
      conflicts: [],
    } as unknown as NodeStatus;
    assertSafe(formatStatus(status), 'mesh status');
    const conflicts = conflictLines([{ path: `${EVIL}.sync-conflict-20260101-000000-0123456.txt`, original: EVIL, device: '0123456', size: 1, mtime: '' }] as never, '0123456789abcdef');
    assertSafe(conflicts.join('\n'), 'mesh conflicts');
  });

  it('mesh scan, run on a folder holding a file named with escape codes', async (t) => {
    const dir = await tempDir(t, 'mesh-escapes-');
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'x\x1b[2J\x1b]0;pwned\x07y'), 'data');
    assertSafe(formatReport(dir, scanReport([EVIL])), 'formatReport');
    const result = await promisify(execFile)(process.execPath, [...SOURCE_CLI, 'scan', dir], { encoding: 'utf8' }).catch((error: { stdout: string; stderr: string }) => error);
    const output = result.stdout + result.stderr;
    assert.ok(!CONTROL.test(output), `mesh scan printed a raw control character: ${JSON.stringify(output)}`);
    assert.ok(output.includes('\\x1b[2J'), `mesh scan names the file, escaped: ${JSON.stringify(output)}`);
  });
});
