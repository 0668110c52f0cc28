import assert from 'node:assert/strict';
import { cp, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { initFolder, openScanner, type ScanReport } from '../src/folder/index.js';
import { KnownEntries } from '../src/folder/known-entries.js';
import { BatchPacker, unpackBatch } from '../src/folder/walk-batch.js';
import type { WalkEntry } from '../src/folder/walker.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { FileRecord } from '../src/store/types.js';
import { ageTree, put, recordsOf } from './folder-helpers.js';
import { tempDir } from './helpers.js';

/** The same scans of two copies of a tree, one walked on a worker thread, one on the scan's own. */
async function twinFolders(t: TestContext, build: (root: string) => Promise<void>) {
  const base = await tempDir(t, 'mesh-walk-');
  const inWorker = join(base, 'worker');
  const inThread = join(base, 'thread');
  await mkdir(inWorker);
  await build(inWorker);
  await ageTree(inWorker);
  await cp(inWorker, inThread, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  const open = async (root: string, workerWalkMinEntries: number) => {
    const store = new MemoryStore();
    return { root, store, scanner: await openScanner({ root: await initFolder(root), store, workerWalkMinEntries }) };
  };
  return [await open(inWorker, 0), await open(inThread, Number.POSITIVE_INFINITY)] as const;
}

/** What a scan found, without the parts that differ between two folders (times, inodes, device ids). */
function outcome(report: ScanReport) {
  const { counts, filesHashed, bytesHashed, errors } = report;
  const sorted = (paths: readonly string[]) => [...paths].sort();
  return {
    counts,
    filesHashed,
    bytesHashed,
    errors,
    added: sorted(report.added),
    modified: sorted(report.modified),
    deleted: sorted(report.deleted),
    moved: report.moved.map((m) => `${m.from} -> ${m.to}`).sort(),
  };
}

function contentOf(records: Map<string, FileRecord>) {
  return [...records.values()].map((r) => `${r.path} ${r.type} ${r.deleted} ${r.size} ${Buffer.from(r.contentHash).toString('hex')} ${r.mode}`).sort();
}

async function bothScan(twins: Awaited<ReturnType<typeof twinFolders>>, change: (root: string) => Promise<void> = async () => {}) {
  const [worker, thread] = twins;
  await change(worker.root);
  await change(thread.root);
  const reports = [await worker.scanner.scan(), await thread.scanner.scan()];
  assert.deepEqual(outcome(reports[0]), outcome(reports[1]));
  assert.deepEqual(contentOf(await recordsOf(worker.store)), contentOf(await recordsOf(thread.store)));
  return reports[0];
}

describe('scanner: the walk on a worker thread', () => {
  it('records what the walk on the scan thread records: nested and empty folders, symlinks, Unicode, ignores', async (t) => {
    const twins = await twinFolders(t, async (root) => {
      for (let i = 0; i < 40; i++) await put(root, `dir ${i % 4}/sub/${i}.txt`, `file ${i}`);
      await put(root, '中文/名字 with spaces.md', 'unicode');
      await put(root, 'cafe\u0301.txt', 'a name in NFD, renamed to NFC on disk');
      await mkdir(join(root, 'empty/inner'), { recursive: true });
      await symlink('dir 0', join(root, 'link-to-dir'));
      await symlink('../nowhere', join(root, 'dangling'));
      await put(root, 'build/out.o', 'ignored');
      await put(root, 'keep.log', 'ignored by pattern');
      await writeFile(join(root, '.meshignore'), 'build/\n*.log\n');
    });
    const first = await bothScan(twins);
    // 40 files in 4 folders of a subfolder each; 中文 and its file; café; empty/inner; 2 links; .meshignore
    assert.equal(first.counts.added, 40 + 4 + 4 + 2 + 1 + 2 + 2 + 1);
    assert.ok(first.added.includes('café.txt'));
    assert.ok(!first.added.some((path) => path.startsWith('build') || path.endsWith('.log')));
  });

  it('finds edits, deletes, moves and new files, and a rescan with no change commits nothing', async (t) => {
    const twins = await twinFolders(t, async (root) => {
      for (let i = 0; i < 30; i++) await put(root, `a/${i}.bin`, `content ${i} `.repeat(i + 1));
      await put(root, 'b/old.txt', 'moved later');
    });
    await bothScan(twins);
    const second = await bothScan(twins, async (root) => {
      await writeFile(join(root, 'a/3.bin'), 'edited');
      await rm(join(root, 'a/4.bin'));
      await rm(join(root, 'a/5.bin'));
      await rename(join(root, 'b/old.txt'), join(root, 'new.txt'));
      await put(root, 'c/fresh.txt', 'new');
    });
    assert.deepEqual([...second.deleted].sort(), ['a/4.bin', 'a/5.bin']);
    assert.deepEqual(second.modified, ['a/3.bin']);
    assert.deepEqual(second.moved, [{ from: 'b/old.txt', to: 'new.txt' }]);
    await ageTree(twins[0].root);
    await ageTree(twins[1].root);
    await bothScan(twins); // the racy files hashed once more
    const sequence = twins[0].store.lastSequence;
    const quiet = await bothScan(twins);
    assert.equal(quiet.filesHashed, 0);
    assert.equal(twins[0].store.lastSequence, sequence);
  });

  it('a scan aborted during the walk stops the worker and records no delete', async (t) => {
    const [worker] = await twinFolders(t, async (root) => {
      for (let i = 0; i < 200; i++) await put(root, `d${i % 10}/${i}`, `${i}`);
    });
    await worker.scanner.scan();
    const sequence = worker.store.lastSequence;
    await rm(join(worker.root, 'd1'), { recursive: true });
    const controller = new AbortController();
    // The first progress report comes as the walk starts, the worker already running.
    const onProgress = () => controller.abort(new Error('stop'));
    await assert.rejects(worker.scanner.scan({ signal: controller.signal, onProgress }), /stop/);
    assert.equal(worker.store.lastSequence, sequence);
  });
});

describe('scanner: the packed entries of a worker walk', () => {
  it('unpack(pack(entries)) gives the entries back, whatever their paths and numbers', () => {
    const entry = fc.record({
      path: fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0')),
      type: fc.constantFrom('file' as const, 'directory' as const, 'symlink' as const),
      stats: fc.record({
        size: fc.bigInt({ min: 0n, max: 2n ** 53n }),
        mtimeNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        ino: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        mode: fc.bigInt({ min: 0n, max: 0o177777n }),
      }).map((stats) => ({ ...stats })),
    }).map((e) => ({ ...e }));
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 50 }), (entries: WalkEntry[]) => {
        const packer = new BatchPacker(entries.length);
        for (const e of entries) packer.add(e);
        assert.ok(packer.full);
        assert.deepEqual(unpackBatch(packer.take()), entries);
        assert.equal(packer.length, 0);
      }),
    );
  });

  it('a malformed batch is an error, not a wrong entry', () => {
    const packer = new BatchPacker(2);
    packer.add({ path: 'a', type: 'file', stats: { size: 1n, mtimeNs: 2n, ino: 3n, mode: 4n } });
    const batch = packer.take();
    assert.throws(() => unpackBatch({ ...batch, paths: 'a\0b' }), /malformed/);
    assert.throws(() => unpackBatch({ ...batch, types: Uint8Array.of(9) }), /entry type 9/);
  });
});

describe('scanner: the known entries of a scan', () => {
  it('hands each entry out once, and lists the ones never taken', () => {
    const known = new KnownEntries();
    const entries = Array.from({ length: 3000 }, (_, i) => ({
      path: `p${i}`,
      type: (['file', 'directory', 'symlink'] as const)[i % 3],
      deleted: i % 7 === 0,
      size: i * 1000,
      mtimeNs: BigInt(i) * -123_456_789n,
      inode: 2n ** 64n - 1n - BigInt(i),
      mode: i % 0o7777,
    }));
    for (const e of entries) known.add(e);
    assert.equal(known.size, 3000);
    const { path, ...rest } = entries[1234];
    assert.deepEqual(known.take(path), rest);
    assert.equal(known.take(path), undefined);
    assert.equal(known.size, 2999);
    const untaken = new Map(known.untaken());
    assert.equal(untaken.size, 2999);
    const { path: lastPath, ...last } = entries[2999];
    assert.deepEqual(untaken.get(lastPath), last);
  });
});
