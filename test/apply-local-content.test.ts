import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { TEMP_PREFIX } from '../src/fs/atomic-write.js';
import { isAlwaysIgnored, MAX_NAME_BYTES } from '../src/folder/index.js';
import { LocalContentIndex, PARTIAL_BASIS_SUFFIX, RECORDS_PER_LOOKUP, RECORDS_PER_MIB_SENT, tempPathOf, WantedContent } from '../src/node/index.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { FileChange } from '../src/store/types.js';

const block = (n: number) => createHash('sha256').update(`block ${n}`).digest();

function file(path: string, blocks: number[]): FileChange {
  const blockHashes = Buffer.concat(blocks.map(block));
  return {
    path,
    type: 'file',
    size: blocks.length * 128 * 1024,
    mtimeNs: 1n,
    mode: 0o644,
    inode: 1n,
    blockHashes,
    contentHash: createHash('sha256').update(blockHashes).digest(),
    symlinkTarget: '',
    version: [{ device: 'aaaaaaaaaaaaaaaa', value: 1 }],
    deleted: false,
    modifiedBy: 'aaaaaaaaaaaaaaaa',
  };
}

describe('local content index', () => {
  it('finds files by content hash and the file sharing the most blocks', async () => {
    const store = new MemoryStore();
    await store.commit([file('a', [1, 2, 3, 4]), file('b', [1, 2, 9]), file('c', [1, 2, 3, 4]), file('d', [5, 6])]);
    const index = new LocalContentIndex(store);
    const same = await index.withContent(file('x', [1, 2, 3, 4]).contentHash);
    assert.deepEqual(
      same.map((f) => f.path),
      ['a', 'c'],
    );
    const wanted = Buffer.concat([1, 2, 3, 7].map(block));
    assert.deepEqual(await index.mostShared(wanted), { file: same[0], sharedBlocks: 3 });
    assert.equal((await index.mostShared(wanted, 'a'))?.file.path, 'c', 'ties go to the first path; the excluded path is skipped');
    assert.equal(await index.mostShared(Buffer.concat([block(42)])), undefined);
  });

  it('finds files by content without reading every record, and reads them once when first asked for shared blocks', async () => {
    const store = new MemoryStore();
    await store.commit([file('a', [1, 2]), file('b', [3])]);
    let passes = 0;
    const records = store.records.bind(store);
    store.records = (subtree?: string) => (passes++, records(subtree));
    const index = new LocalContentIndex(store);
    assert.equal((await index.withContent(file('x', [1, 2]).contentHash))[0]?.path, 'a');
    assert.equal(passes, 0);
    assert.equal((await index.mostShared(Buffer.concat([block(3)])))?.file.path, 'b');
    assert.equal((await index.mostShared(Buffer.concat([block(1)])))?.file.path, 'a');
    assert.equal(passes, 1);
  });

  it('for many versions against few records, one pass over the content table answers instead of a lookup per version', async () => {
    const store = new MemoryStore();
    await store.commit([file('a', [1]), file('b', [2])]);
    let contentPasses = 0;
    let recordPasses = 0;
    let lookups = 0;
    const contents = store.contents.bind(store);
    store.contents = () => (contentPasses++, contents());
    const records = store.records.bind(store);
    store.records = (subtree?: string) => (recordPasses++, records(subtree));
    const pathsWithContent = store.pathsWithContent.bind(store);
    store.pathsWithContent = (hash: Uint8Array, limit: number) => (lookups++, pathsWithContent(hash, limit));
    const many = Array.from({ length: 3 }, (_, k) => file(`new${k}`, [k + 1]));
    assert.ok(store.lastSequence <= RECORDS_PER_LOOKUP * many.length);
    const index = new LocalContentIndex(store, new WantedContent(many));
    for (const pull of many) await index.withContent(pull.contentHash);
    assert.deepEqual([contentPasses, recordPasses, lookups], [1, 0, 0]);
    assert.equal((await index.withContent(many[1].contentHash))[0]?.path, 'b');
    assert.deepEqual(await index.withContent(many[2].contentHash), []);
    // The pass follows the apply's commits: a new file of a wanted content, a path moved away.
    index.add((await store.commit([file('c', [3])]))[0]);
    assert.deepEqual((await index.withContent(many[2].contentHash)).map((f) => f.path), ['c']);
    index.remove('b');
    assert.deepEqual(await index.withContent(many[1].contentHash), []);
    assert.deepEqual([contentPasses, recordPasses, lookups], [1, 0, 0]);

    await store.commit(Array.from({ length: 3 * RECORDS_PER_LOOKUP }, (_, k) => file(`more${k}`, [100 + k])));
    const few = new LocalContentIndex(store, new WantedContent(many));
    for (const pull of many) await few.withContent(pull.contentHash);
    assert.deepEqual([contentPasses, recordPasses, lookups], [1, 0, 3]);
  });

  it('looks for a file sharing blocks only when the new file is large enough to pay for a pass over the records', async () => {
    const store = new MemoryStore();
    await store.commit([file('a', [1, 2])]);
    // A new file of one block (128 KiB) pays for a pass over RECORDS_PER_MIB_SENT / 8 records.
    const oneBlock = Buffer.concat([block(1)]);
    await store.commit(Array.from({ length: RECORDS_PER_MIB_SENT / 8 }, (_, k) => file(`other${k}`, [1000 + k])));
    let passes = 0;
    const records = store.records.bind(store);
    store.records = (subtree?: string) => (passes++, records(subtree));
    const index = new LocalContentIndex(store);
    assert.equal(await index.mostShared(oneBlock), undefined);
    assert.equal(passes, 0);
    const larger = Buffer.concat([1, ...Array.from({ length: 15 }, (_, k) => 500 + k)].map(block));
    assert.equal((await index.mostShared(larger))?.file.path, 'a');
    assert.equal(passes, 1);
    assert.equal((await index.mostShared(oneBlock))?.file.path, 'a', 'once made, the pass answers for small files too');
  });

  it('with the content an apply wants, its pass answers as a full one and holds only files that share it', async () => {
    const store = new MemoryStore();
    await store.commit([file('a', [1, 2, 3, 4]), file('b', [1, 2, 9]), file('c', [1, 2, 3, 4]), file('d', [5, 6]), file('e', [10, 11])]);
    const pulls = [file('x', [1, 2, 3, 7]), file('y', [5, 6])];
    const full = new LocalContentIndex(store);
    const narrow = new LocalContentIndex(store, new WantedContent(pulls));
    for (const pull of pulls) {
      assert.deepEqual(await narrow.withContent(pull.contentHash), await full.withContent(pull.contentHash));
      assert.deepEqual(await narrow.mostShared(pull.blockHashes), await full.mostShared(pull.blockHashes));
      assert.deepEqual(await narrow.mostShared(pull.blockHashes, 'a'), await full.mostShared(pull.blockHashes, 'a'));
    }
    assert.equal(await narrow.mostShared(file('e', [10, 11]).blockHashes), undefined, 'e shares nothing wanted: not indexed');
    // A file recorded during the apply with wanted content is found; one without is not kept.
    narrow.add((await store.commit([file('f', [7])]))[0]);
    assert.equal((await narrow.mostShared(pulls[0].blockHashes, 'a'))?.file.path, 'c');
    assert.equal((await narrow.mostShared(Buffer.concat([block(7)])))?.file.path, 'f');
    narrow.add((await store.commit([file('g', [8, 9])]))[0]);
    assert.equal(await narrow.mostShared(Buffer.concat([block(8)])), undefined);
  });

  it('forgets deleted paths and follows new records', async () => {
    const store = new MemoryStore();
    const [a] = await store.commit([file('a', [1, 2])]);
    const index = new LocalContentIndex(store);
    assert.equal((await index.mostShared(a.blockHashes))?.file.path, 'a');
    const [gone] = await store.commit([{ ...file('a', []), deleted: true, size: 0, contentHash: new Uint8Array(0) }]);
    index.add(gone);
    assert.deepEqual(await index.withContent(a.contentHash), []);
    assert.equal(await index.mostShared(a.blockHashes), undefined);
    const [moved] = await store.commit([file('moved', [1, 2])]);
    index.add(moved);
    assert.equal((await index.mostShared(a.blockHashes))?.file.path, 'moved');
    assert.equal((await index.withContent(a.contentHash))[0]?.path, 'moved');
    index.remove('moved');
    assert.equal(await index.mostShared(a.blockHashes), undefined);
  });
});

describe('temp names', () => {
  const hash = createHash('sha256').update('content').digest();

  it('are beside the target, always ignored, and the same for the same content', () => {
    const temp = tempPathOf('dir/sub/report 2024.pdf', hash);
    assert.equal(temp, `dir/sub/${TEMP_PREFIX}report 2024.pdf.${hash.toString('hex').slice(0, 8)}`);
    assert.equal(tempPathOf('dir/sub/report 2024.pdf', hash), temp);
    assert.ok(isAlwaysIgnored(temp) && isAlwaysIgnored(temp + PARTIAL_BASIS_SUFFIX));
    assert.notEqual(tempPathOf('dir/sub/report 2024.pdf', createHash('sha256').update('other').digest()), temp);
  });

  it('stay within NAME_MAX with the partial suffix, cut between characters', () => {
    const temp = tempPathOf(`d/${'長'.repeat(85)}`, hash);
    const name = temp.slice(2) + PARTIAL_BASIS_SUFFIX;
    assert.ok(Buffer.byteLength(name) <= MAX_NAME_BYTES, `${Buffer.byteLength(name)} bytes`);
    assert.ok(!name.includes('\ufffd'));
  });
});
