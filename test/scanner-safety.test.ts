import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { chown, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TEMP_PREFIX } from '../src/fs/atomic-write.js';
import {
  CHANGING_WHILE_SCANNED,
  FolderMissingError,
  IGNORE_FILE,
  initFolder,
  nodeFolderFs,
  openScanner,
  type ScanProgress,
  type ScanReport,
} from '../src/folder/index.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { errnoError, faultyFs, livePaths, put, recordOf, recordsOf, testFolder } from './folder-helpers.js';
import { canRunUnprivileged, tempDir, UNPRIVILEGED } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

/** The store as a comparable snapshot: path -> sequence, deleted. */
async function snapshot(store: MemoryStore): Promise<string[]> {
  return [...(await recordsOf(store)).values()].map((r) => `${r.path}#${r.sequence}${r.deleted ? ' deleted' : ''}`);
}

describe('scanner: ignore rules', () => {
  it('never records ignored paths, .mesh, or mesh temp files', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await writeFile(join(root, IGNORE_FILE), '*.log\nbuild/\n/private\n');
    await put(root, 'app.log', 'log');
    await put(root, 'sub/deep.log', 'log');
    await put(root, 'build/out.o', 'object');
    await put(root, 'private/diary.txt', 'diary');
    await put(root, 'sub/private/not-anchored.txt', 'kept');
    await put(root, `${TEMP_PREFIX}download.bin.1234`, 'partial');
    await put(root, `sub/${TEMP_PREFIX}x.ab12`, 'partial');
    await put(root, '.mesh/state.db', 'state');
    await put(root, 'keep.txt', 'keep');
    const report = await scanner.scan();
    assert.deepEqual(report.errors, []);
    assert.deepEqual(await livePaths(store), ['.meshignore', 'keep.txt', 'sub', 'sub/private', 'sub/private/not-anchored.txt']);
    // Scoped scans drop mesh's own paths and honour the rules as well.
    const scoped = await scanner.scan({ paths: ['.mesh/state.db', 'build/out.o', 'app.log'] });
    assert.equal(scoped.counts.added, 0);
    assert.deepEqual(await livePaths(store), ['.meshignore', 'keep.txt', 'sub', 'sub/private', 'sub/private/not-anchored.txt']);
  });

  it('a newly ignored path keeps its record (not deleted); un-ignored, a scoped scan widens and finds new files', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'media/film.mkv', 'film');
    await put(root, 'doc.txt', 'doc');
    await scanner.scan();
    const film = await recordOf(store, 'media/film.mkv');

    await writeFile(join(root, IGNORE_FILE), 'media/\n');
    await rm(join(root, 'media/film.mkv'));
    await put(root, 'media/new.mkv', 'new');
    let report = await scanner.scan();
    assert.deepEqual(report.deleted, [], 'ignored paths are left as recorded');
    assert.deepEqual(await recordOf(store, 'media/film.mkv'), film);
    assert.equal(await store.get('media/new.mkv'), undefined);

    await writeFile(join(root, IGNORE_FILE), '');
    report = await scanner.scan({ paths: ['doc.txt'] });
    assert.deepEqual(report.scope, [''], 'the rules changed: the whole folder is walked');
    assert.deepEqual(report.added, ['media/new.mkv']);
    assert.deepEqual(report.deleted, ['media/film.mkv']);
  });
});

describe('scanner: files it cannot read are never deleted', () => {
  it('an unreadable file is reported and keeps its record', async (t) => {
    const locked = new Set<string>();
    const fs = faultyFs({
      openForReading: (path) => (locked.has(path) ? Promise.reject(errnoError('EACCES', 'open', path)) : nodeFolderFs.openForReading(path)),
    });
    const { root, store, scanner } = await testFolder(t, { fs });
    await put(root, 'secret.txt', 'v1');
    await put(root, 'open.txt', 'v1');
    await scanner.scan();
    const before = await recordOf(store, 'secret.txt');
    locked.add(join(root, 'secret.txt'));
    await put(root, 'secret.txt', 'v2 longer');
    await put(root, 'open.txt', 'v2 longer');
    const report = await scanner.scan();
    assert.deepEqual(report.modified, ['open.txt']);
    assert.equal(report.errors.length, 1);
    assert.equal(report.errors[0].path, 'secret.txt');
    assert.match(report.errors[0].message, /EACCES/);
    assert.deepEqual(await recordOf(store, 'secret.txt'), before);
  });

  it('an unreadable folder is reported and nothing recorded under it is deleted', async (t) => {
    const locked = new Set<string>();
    const fs = faultyFs({
      listDirectory: (path) => {
        if (!locked.has(path)) return nodeFolderFs.listDirectory(path);
        return (async function* () {
          yield* [];
          throw errnoError('EACCES', 'opendir', path);
        })();
      },
      lstat: (path) => (path.endsWith('/flaky.txt') && locked.size > 0 ? Promise.reject(errnoError('EIO', 'lstat', path)) : nodeFolderFs.lstat(path)),
    });
    const { root, store, scanner } = await testFolder(t, { fs });
    await put(root, 'locked/a.txt', 'a');
    await put(root, 'locked/deeper/b.txt', 'b');
    await put(root, 'flaky.txt', 'disk error');
    await put(root, 'gone.txt', 'really deleted');
    await scanner.scan();
    locked.add(join(root, 'locked'));
    await rm(join(root, 'gone.txt'));
    const report = await scanner.scan();
    assert.deepEqual(report.deleted, ['gone.txt'], 'a real delete is still seen');
    assert.deepEqual(report.errors.map((e) => e.path).sort(), ['flaky.txt', 'locked']);
    assert.deepEqual(await livePaths(store), ['flaky.txt', 'locked', 'locked/a.txt', 'locked/deeper', 'locked/deeper/b.txt']);
  });

  it('real permissions, as an unprivileged user: unreadable file and folder are reported, not deleted', async (t) => {
    const asRoot = process.getuid?.() === 0;
    if (asRoot && !canRunUnprivileged()) {
      // Node itself from a private directory (npx under /root, say): the fault-injection tests above cover it.
      t.skip('node or this repository cannot be read by an unprivileged user here');
      return;
    }
    const dir = await tempDir(t, 'mesh-perm-');
    if (asRoot) await chown(dir, UNPRIVILEGED, UNPRIVILEGED);
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test/fixtures/scan-unreadable.ts'), dir], {
      cwd: REPO,
      ...(asRoot ? { uid: UNPRIVILEGED, gid: UNPRIVILEGED } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as { errors: ScanReport['errors']; deleted: string[]; modified: string[]; records: { path: string; deleted: boolean }[] };
    assert.deepEqual(result.errors.map((e) => e.path).sort(), ['locked', 'secret.txt']);
    assert.ok(result.errors.every((e) => e.message.includes('EACCES')), JSON.stringify(result.errors));
    assert.deepEqual(result.deleted, []);
    assert.ok(result.modified.includes('readable.txt'));
    assert.deepEqual(
      result.records.filter((r) => r.deleted),
      [],
    );
    assert.deepEqual(result.records.map((r) => r.path).sort(), ['locked', 'locked/inner.txt', 'readable.txt', 'secret.txt']);
  });
});

describe('scanner: files changing while hashed', () => {
  /** A file system whose reads of `name` append to it first, `times` times. */
  function growingFs(name: string, times: number) {
    let left = times;
    return faultyFs({
      openForReading: async (path) => {
        const file = await nodeFolderFs.openForReading(path);
        if (!path.endsWith(`/${name}`)) return file;
        return {
          ...file,
          read: (buffer, position) => {
            if (position === 0 && left > 0) {
              left--;
              appendFileSync(path, 'more bytes written by someone else\n');
            }
            return file.read(buffer, position);
          },
        };
      },
    });
  }

  it('a file changed during its hash is hashed again and recorded as it ended up', async (t) => {
    const { root, store, scanner } = await testFolder(t, { fs: growingFs('log.txt', 1) });
    await put(root, 'log.txt', 'first line\n');
    const report = await scanner.scan();
    assert.deepEqual(report.errors, []);
    assert.equal((await recordOf(store, 'log.txt')).size, 'first line\n'.length + 'more bytes written by someone else\n'.length);
  });

  it('a file that keeps changing is reported and its record stays as it was', async (t) => {
    const fs = growingFs('busy.txt', 0);
    const { root, store, scanner } = await testFolder(t, { fs });
    await put(root, 'busy.txt', 'v1');
    await scanner.scan();
    const before = await recordOf(store, 'busy.txt');
    const always = growingFs('busy.txt', Infinity);
    const busyScanner = await openScanner({ root, store, fs: always });
    await put(root, 'busy.txt', 'v2 is longer');
    const report = await busyScanner.scan();
    assert.deepEqual(report.errors, [{ path: 'busy.txt', message: CHANGING_WHILE_SCANNED }]);
    assert.deepEqual(report.modified, []);
    assert.deepEqual(await recordOf(store, 'busy.txt'), before);
  });
});

describe('scanner: a folder that vanishes records no delete', () => {
  it('root removed while files are hashed: FolderMissingError even with nothing to commit', async (t) => {
    let root = '';
    let armed = false;
    const fs = faultyFs({
      openForReading: async (path) => {
        // The first file read: nothing has been hashed, so there is nothing to commit either.
        if (armed && path.endsWith('.txt')) await rm(root, { recursive: true, force: true });
        return nodeFolderFs.openForReading(path);
      },
    });
    const folder = await testFolder(t, { fs });
    root = folder.root;
    for (let i = 0; i < 20; i++) await put(root, `dir${i}/file.txt`, `file ${i}`);
    await put(root, 'changed.txt', 'v1');
    await folder.scanner.scan();
    const before = await snapshot(folder.store);
    await put(root, 'changed.txt', 'v2 longer');
    await put(root, 'new.txt', 'new');
    armed = true;
    await assert.rejects(folder.scanner.scan(), (error: Error) => error instanceof FolderMissingError && error.name === 'FolderMissingError');
    assert.deepEqual(await snapshot(folder.store), before);
  });

  it('root removed during the walk: FolderMissingError, no delete', async (t) => {
    let root = '';
    let armed = false;
    const fs = faultyFs({
      listDirectory: (path) => {
        if (armed && path.endsWith('/dir3')) {
          armed = false;
          return (async function* () {
            await rm(root, { recursive: true, force: true });
            yield* nodeFolderFs.listDirectory(path);
          })();
        }
        return nodeFolderFs.listDirectory(path);
      },
    });
    const folder = await testFolder(t, { fs });
    root = folder.root;
    for (let i = 0; i < 10; i++) await put(root, `dir${i}/file.txt`, `file ${i}`);
    await folder.scanner.scan();
    const before = await snapshot(folder.store);
    armed = true;
    await assert.rejects(folder.scanner.scan(), FolderMissingError);
    assert.deepEqual(await snapshot(folder.store), before);
  });

  it('root replaced by an empty directory (an unmounted disk): FolderMissingError, no delete', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'photos/1.jpg', 'jpeg');
    await scanner.scan();
    const before = await snapshot(store);
    await rename(root, `${root}-away`);
    t.after(() => rm(`${root}-away`, { recursive: true, force: true }));
    await mkdir(join(root, '.mesh'), { recursive: true });
    await assert.rejects(scanner.scan(), (error: Error) => error instanceof FolderMissingError && /replaced/.test(error.message));
    assert.deepEqual(await snapshot(store), before);
  });

  it('.mesh removed: FolderMissingError, no delete', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    await put(root, 'a.txt', 'a');
    await scanner.scan();
    const before = await snapshot(store);
    await rm(join(root, '.mesh'), { recursive: true });
    await rm(join(root, 'a.txt'));
    await assert.rejects(scanner.scan(), (error: Error) => error instanceof FolderMissingError && /\.mesh/.test(error.message));
    assert.deepEqual(await snapshot(store), before);
  });

  it('opening needs the root and its .mesh; initFolder makes .mesh; a root given as a symlink is resolved', async (t) => {
    const dir = await tempDir(t);
    const store = new MemoryStore();
    await assert.rejects(openScanner({ root: join(dir, 'missing'), store }), FolderMissingError);
    await mkdir(join(dir, 'real'));
    await assert.rejects(openScanner({ root: join(dir, 'real'), store }), FolderMissingError);
    await symlink('real', join(dir, 'link'));
    assert.equal(await initFolder(join(dir, 'link')), join(dir, 'real'));
    await put(join(dir, 'real'), 'x.txt', 'x');
    const scanner = await openScanner({ root: join(dir, 'link'), store });
    assert.equal(scanner.root, join(dir, 'real'));
    assert.deepEqual((await scanner.scan()).added, ['x.txt']);
  });

  it('an aborted scan rejects with the reason and records no delete; the next scan does', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    for (let i = 0; i < 10; i++) await put(root, `f${i}.txt`, `${i}`);
    await scanner.scan();
    await rm(join(root, 'f0.txt'));
    for (let i = 1; i < 10; i++) await put(root, `f${i}.txt`, `changed ${i}`);
    const controller = new AbortController();
    const onProgress = (progress: ScanProgress) => {
      if (progress.phase === 'hashing') controller.abort(new Error('shutting down'));
    };
    await assert.rejects(scanner.scan({ signal: controller.signal, onProgress }), /shutting down/);
    assert.equal((await recordOf(store, 'f0.txt')).deleted, false);
    const report = await scanner.scan();
    assert.deepEqual(report.deleted, ['f0.txt']);
  });

  it('scans requested together run one after the other', async (t) => {
    const { root, store, scanner } = await testFolder(t);
    for (let i = 0; i < 30; i++) await put(root, `f${i}.txt`, `${i}`);
    const [first, second] = await Promise.all([scanner.scan(), scanner.scan()]);
    assert.equal(first.counts.added, 30);
    assert.equal(second.counts.added, 0);
    assert.equal((await livePaths(store)).length, 30);
  });
});
