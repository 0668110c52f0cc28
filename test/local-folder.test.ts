import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openLocalFolder } from '../src/folder/local-folder.js';
import { FolderWatcher } from '../src/folder/watcher.js';
import { StoreLockedError } from '../src/store/errors.js';
import { tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function mesh(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Files dated an hour back, so no scan treats them as just written (racy) and hashes them again. */
async function settle(root: string, names: string[]): Promise<void> {
  const past = new Date(Date.now() - 3600_000);
  for (const name of names) await utimes(join(root, name), past, past);
}

describe('mesh scan', () => {
  it('indexes a folder, then reports exactly what changed since', async (t) => {
    const root = await tempDir(t);
    await mkdir(join(root, 'docs'));
    await writeFile(join(root, 'docs', 'report 2026.txt'), 'draft');
    await writeFile(join(root, '笔记.md'), '# notes');
    await settle(root, ['docs/report 2026.txt', '笔记.md']);

    const first = await mesh(['scan', root]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /added {5}3 files/);

    const again = await mesh(['scan', root, '--json']);
    const report = JSON.parse(again.stdout) as { filesHashed: number; counts: { unchanged: number } };
    assert.equal(report.filesHashed, 0, 'an unchanged folder is not read again');
    assert.equal(report.counts.unchanged, 3);

    await writeFile(join(root, '笔记.md'), '# notes, longer now');
    await rm(join(root, 'docs', 'report 2026.txt'));
    const changed = await mesh(['scan', root]);
    assert.match(changed.stdout, /modified {2}1 file/);
    assert.match(changed.stdout, /deleted {3}1 file/);
    assert.match(changed.stdout, /笔记\.md/);
  });

  it('bad input gets one clear line and a non-zero exit', async (t) => {
    const root = await tempDir(t);
    await writeFile(join(root, 'plain'), 'x');
    for (const [args, pattern] of [
      [['scan', join(root, 'missing')], /missing: no such folder/],
      [['scan', join(root, 'plain')], /plain: is a file, not a folder/],
      [['scan'], /missing required argument 'dir'/],
    ] as const) {
      const result = await mesh([...args]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
  });

  it('a reader that stops early (mesh scan | head) ends the output quietly, the index committed', async (t) => {
    const root = await tempDir(t);
    const names = Array.from({ length: 300 }, (_, i) => `file ${i}.txt`);
    for (const name of names) await writeFile(join(root, name), name);
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX, MAIN, 'scan', root, '--json']);
      child.stdout.destroy(); // the reader is gone before the report is written
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /EPIPE|\n\s+at /);
    const again = await mesh(['scan', root, '--json']);
    assert.equal((JSON.parse(again.stdout) as { counts: { unchanged: number } }).counts.unchanged, 300);
  });

  it('a second process on the same folder is refused, the first keeps its index', async (t) => {
    const root = await tempDir(t);
    const folder = await openLocalFolder(root);
    t.after(() => folder.close());
    const result = await mesh(['scan', root]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /in use by another mesh process/);
    await assert.rejects(openLocalFolder(root), StoreLockedError);
  });
});

describe('a folder on its LevelDB index', () => {
  it('after a restart rehashes nothing unchanged, and catches up on what changed while closed', async (t) => {
    const root = await tempDir(t);
    const names = Array.from({ length: 200 }, (_, i) => `f${i}.txt`);
    for (const name of names) await writeFile(join(root, name), `content ${name}`);
    await settle(root, names);
    let folder = await openLocalFolder(root);
    assert.equal((await folder.scanner.scan()).counts.added, 200);
    await folder.close();

    folder = await openLocalFolder(root);
    t.after(() => folder.close());
    const unchanged = await folder.scanner.scan();
    assert.equal(unchanged.filesHashed, 0);
    assert.equal(unchanged.counts.unchanged, 200);

    await folder.close();
    await writeFile(join(root, 'f1.txt'), 'edited while mesh was not running');
    await rm(join(root, 'f2.txt'));
    folder = await openLocalFolder(root);
    const caughtUp = await folder.scanner.scan();
    assert.deepEqual(caughtUp.modified, ['f1.txt']);
    assert.deepEqual(caughtUp.deleted, ['f2.txt']);
    assert.equal(caughtUp.filesHashed, 1);
  });

  it('the watcher turns a change on disk into a new record', async (t) => {
    const root = await tempDir(t);
    const folder = await openLocalFolder(root);
    await folder.scanner.scan();
    const watcher = new FolderWatcher({ root: folder.root, rescan: async (paths) => void (await folder.scanner.scan({ paths })) });
    await watcher.start();
    t.after(async () => {
      await watcher.stop();
      await folder.close();
    });
    await mkdir(join(root, 'new folder'));
    await writeFile(join(root, 'new folder', 'hello.txt'), 'hello');
    for (let waited = 0; (await folder.store.get('new folder/hello.txt')) === undefined; waited += 20) {
      if (waited > 10_000) assert.fail('the change was never recorded');
      await sleep(20);
    }
    await rm(join(root, 'new folder', 'hello.txt'));
    for (let waited = 0; (await folder.store.get('new folder/hello.txt'))?.deleted !== true; waited += 20) {
      if (waited > 10_000) assert.fail('the delete was never recorded');
      await sleep(20);
    }
    assert.deepEqual(await readdir(join(root, 'new folder')), []);
  });
});
