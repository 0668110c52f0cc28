import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { conflictWinner, decide, sameContent, type Decision } from '../src/node/planner.js';
import { remoteRecordOf, remoteRecordProblem, type RemoteRecord } from '../src/node/remote-record.js';
import { BLOCK_HASH_LENGTH, type EntryType, type FileRecord } from '../src/store/types.js';
import { compare, merge, type VersionVector } from '../src/store/version-vector.js';
import { symlinkContentHash } from '../src/folder/index.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const C = 'cccccccccccccccc';
const sha = (text: string) => createHash('sha256').update(text).digest();

function record(fields: Partial<FileRecord> = {}): FileRecord {
  return {
    path: 'f.txt',
    type: 'file',
    size: 1,
    mtimeNs: 1_000_000_000n,
    mode: 0o644,
    inode: 7n,
    blockHashes: new Uint8Array(32),
    contentHash: sha('one'),
    symlinkTarget: '',
    version: [{ device: A, value: 1 }],
    deleted: false,
    modifiedBy: A,
    sequence: 1,
    ...fields,
  };
}
const remote = (fields: Partial<FileRecord> = {}): RemoteRecord => remoteRecordOf(record(fields), 'peer-b');
const tombstone = (fields: Partial<FileRecord> = {}) =>
  record({ size: 0, blockHashes: new Uint8Array(0), contentHash: new Uint8Array(0), deleted: true, ...fields });
const v = (...counters: [string, number][]): VersionVector => counters.map(([device, value]) => ({ device, value }));

describe('planner: decide', () => {
  it('applies a record this device has no version of (a tombstone too: it is recorded)', () => {
    assert.deepEqual(decide(undefined, remote()), { action: 'apply' });
    assert.deepEqual(decide(undefined, remoteRecordOf(tombstone(), 'p')), { action: 'apply' });
  });

  it('does nothing for an equal version or one the local version dominates', () => {
    assert.deepEqual(decide(record(), remote()), { action: 'nothing', reason: 'equal' });
    const local = record({ version: v([A, 2]) });
    assert.deepEqual(decide(local, remote({ version: v([A, 1]) })), { action: 'nothing', reason: 'local-newer' });
    // Even when the older remote version has a newer mtime: versions decide, not clocks.
    assert.deepEqual(decide(local, remote({ version: v([A, 1]), mtimeNs: 9n ** 18n })), { action: 'nothing', reason: 'local-newer' });
  });

  it('applies a remote version that dominates, whatever the mtimes and whether it is a delete', () => {
    const local = record({ version: v([A, 1]), mtimeNs: 9n ** 18n });
    assert.deepEqual(decide(local, remote({ version: v([A, 1], [B, 1]), mtimeNs: 1n })), { action: 'apply' });
    assert.deepEqual(decide(local, remoteRecordOf(tombstone({ version: v([A, 2]) }), 'p')), { action: 'apply' });
    // A tombstone locally, a newer live version remotely: it comes back.
    assert.deepEqual(decide(tombstone({ version: v([A, 2]) }), remote({ version: v([A, 2], [B, 1]) })), { action: 'apply' });
  });

  it('merges concurrent versions of the same content, deletes included', () => {
    const local = record({ version: v([A, 2]), mtimeNs: 5n, modifiedBy: A, inode: 99n });
    assert.deepEqual(decide(local, remote({ version: v([A, 1], [B, 1]), mtimeNs: 8n, modifiedBy: B })), { action: 'merge' });
    assert.deepEqual(decide(tombstone({ version: v([A, 2]) }), remoteRecordOf(tombstone({ version: v([A, 1], [B, 1]) }), 'p')), {
      action: 'merge',
    });
    const link = { type: 'symlink' as EntryType, contentHash: symlinkContentHash('t'), symlinkTarget: 't', blockHashes: new Uint8Array(0) };
    assert.deepEqual(decide(record({ ...link, mode: 0o777, version: v([A, 2]) }), remote({ ...link, mode: 0o755, version: v([B, 1]) })), {
      action: 'merge',
    });
  });

  it('concurrent versions of different content are a conflict won by the newer mtime, then the greater device', () => {
    const local = record({ version: v([A, 2]), mtimeNs: 10n, modifiedBy: A });
    const newer = remote({ version: v([A, 1], [B, 1]), mtimeNs: 11n, modifiedBy: B, contentHash: sha('two') });
    assert.deepEqual(decide(local, newer), { action: 'conflict', winner: 'remote' });
    const older = remote({ version: v([A, 1], [B, 1]), mtimeNs: 9n, modifiedBy: B, contentHash: sha('two') });
    assert.deepEqual(decide(local, older), { action: 'conflict', winner: 'local' });
    const tie = remote({ version: v([A, 1], [B, 1]), mtimeNs: 10n, modifiedBy: B, contentHash: sha('two') });
    assert.deepEqual(decide(local, tie), { action: 'conflict', winner: 'remote' }, 'B > A');
    const tieLow = record({ version: v([C, 2]), mtimeNs: 10n, modifiedBy: C });
    assert.deepEqual(decide(tieLow, tie), { action: 'conflict', winner: 'local' }, 'C > B');
  });

  it('a permission change concurrent with another is a conflict (no copy is needed: same bytes)', () => {
    const local = record({ version: v([A, 2]), mode: 0o755, mtimeNs: 3n });
    assert.deepEqual(decide(local, remote({ version: v([A, 1], [B, 1]), mode: 0o600, mtimeNs: 4n })), { action: 'conflict', winner: 'remote' });
  });

  it('edit beats delete, whatever the mtimes, on both sides', () => {
    const edited = record({ version: v([A, 2]), mtimeNs: 1n, modifiedBy: A });
    const deleted = tombstone({ version: v([A, 1], [B, 1]), mtimeNs: 9n ** 18n, modifiedBy: 'ffffffffffffffff' });
    assert.deepEqual(decide(edited, remoteRecordOf(deleted, 'p')), { action: 'conflict', winner: 'local' });
    assert.deepEqual(decide(deleted, remoteRecordOf(edited, 'p')), { action: 'conflict', winner: 'remote' });
  });

  it('a type change concurrent with an edit is a conflict', () => {
    const file = record({ version: v([A, 2]), mtimeNs: 5n });
    const directory = remote({
      ...{ type: 'directory', size: 0, blockHashes: new Uint8Array(0), contentHash: new Uint8Array(0), mode: 0o755 },
      ...{ version: v([B, 1]), modifiedBy: B, mtimeNs: 6n },
    });
    assert.deepEqual(decide(file, directory), { action: 'conflict', winner: 'remote' });
  });
});

// Random versions from a small pool of everything, so that equal content, equal mtimes and equal
// devices turn up often and every branch of the order is taken.
const DEVICES = [A, B, C, '0000000000000001'];
const device = fc.constantFrom(...DEVICES);
const vector: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.record({ device, value: fc.integer({ min: 1, max: 3 }) }), { selector: (c) => c.device, minLength: 1, maxLength: DEVICES.length })
  .map((counters) => counters.map(({ device, value }) => ({ device, value })).sort((a, b) => (a.device < b.device ? -1 : 1)));
const version: fc.Arbitrary<FileRecord> = fc
  .record({
    type: fc.constantFrom<EntryType>('file', 'directory', 'symlink'),
    content: fc.constantFrom('x', 'y'),
    mode: fc.constantFrom(0o644, 0o755),
    mtimeNs: fc.constantFrom(1n, 2n, 3n),
    modifiedBy: device,
    version: vector,
    deleted: fc.boolean(),
    inode: fc.bigInt({ min: 0n, max: 5n }),
  })
  .map(({ type, content, mode, mtimeNs, modifiedBy, version, deleted, inode }) =>
    deleted
      ? tombstone({ type, mtimeNs, mode, modifiedBy, version, inode: 0n })
      : record({
          type,
          mode,
          mtimeNs,
          modifiedBy,
          version,
          inode,
          size: type === 'file' ? 1 : 0,
          contentHash: type === 'directory' ? new Uint8Array(0) : sha(content),
          symlinkTarget: type === 'symlink' ? content : '',
          blockHashes: type === 'file' ? new Uint8Array(32) : new Uint8Array(0),
        }),
  );

/** One version is one content everywhere: equal vectors with different content never exist. */
function realistic(a: FileRecord, b: FileRecord): void {
  fc.pre(compare(a.version, b.version) !== 'equal' || sameContent(a, b));
}

/**
 * What a device holds after acting on another's version as the applier does: the remote content
 * with merge(L, R) when it applies (or loses a conflict), its own with merge(L, R) for the same
 * content, and its own record untouched when it wins a conflict or has nothing to do.
 */
function recorded(local: FileRecord, other: FileRecord): FileRecord {
  const decision = decide(local, remoteRecordOf(other, 'other'));
  const version = merge(local.version, other.version);
  switch (decision.action) {
    case 'nothing':
      return local;
    case 'merge':
      return { ...local, version };
    case 'apply':
      return { ...other, version };
    case 'conflict':
      return decision.winner === 'local' ? local : { ...other, version };
  }
}

/** Whether acting on `other` makes a conflict copy of `local` (a live loser with other bytes). */
function makesCopy(local: FileRecord, other: FileRecord): boolean {
  const decision = decide(local, remoteRecordOf(other, 'other'));
  return decision.action === 'conflict' && decision.winner === 'remote' && !local.deleted && !sameContent({ ...local, mode: other.mode }, other);
}

/** The version a device ends up with after acting on `decision`: its own or the remote's content. */
function resultOf(decision: Decision, local: FileRecord, other: FileRecord): FileRecord {
  switch (decision.action) {
    case 'nothing':
    case 'merge':
      return local;
    case 'apply':
      return other;
    case 'conflict':
      return decision.winner === 'local' ? local : other;
  }
}

describe('planner: properties', () => {
  it('is deterministic: the same inputs (copied, other inode and peer) give the same decision', () => {
    fc.assert(
      fc.property(version, version, (local, other) => {
        const first = decide(local, remoteRecordOf(other, 'p1'));
        const again = decide({ ...local, inode: local.inode + 1n, sequence: 42 }, { ...remoteRecordOf(other, 'p2'), sequence: 7 });
        assert.deepEqual(again, first);
      }),
      { numRuns: 2000 },
    );
  });

  it('is symmetric: two devices deciding about each other’s versions end with the same content', () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        realistic(a, b);
        const onA = decide(a, remoteRecordOf(b, 'b'));
        const onB = decide(b, remoteRecordOf(a, 'a'));
        const keptA = resultOf(onA, a, b);
        const keptB = resultOf(onB, b, a);
        assert.ok(sameContent(keptA, keptB), `A ends with ${JSON.stringify(onA)}, B with ${JSON.stringify(onB)}`);
        // Every pair of decisions is one of the consistent pairs.
        const pair = `${onA.action}/${onB.action}`;
        assert.ok(['nothing/nothing', 'nothing/apply', 'apply/nothing', 'merge/merge', 'conflict/conflict'].includes(pair), pair);
        if (onA.action === 'conflict' && onB.action === 'conflict') assert.notEqual(onA.winner, onB.winner);
      }),
      { numRuns: 5000 },
    );
  });

  it('edit beats delete in every conflict between a tombstone and a live version', () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        fc.pre(a.deleted !== b.deleted);
        const decision = decide(a, remoteRecordOf(b, 'b'));
        if (decision.action !== 'conflict') return;
        assert.equal(decision.winner, a.deleted ? 'remote' : 'local');
        assert.equal(conflictWinner(b, a), a.deleted ? 'local' : 'remote');
      }),
      { numRuns: 3000 },
    );
  });

  it('two devices converge in at most three steps, with at most one conflict copy between them', () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        realistic(a, b);
        // A acts on B's version; B acts on what A then holds; A acts on what B then holds.
        const copies = [makesCopy(a, b)];
        const stepA = recorded(a, b);
        copies.push(makesCopy(b, stepA));
        const stepB = recorded(b, stepA);
        assert.ok(sameContent(stepA, stepB), 'same content after two steps');
        const last = decide(stepA, remoteRecordOf(stepB, 'b'));
        assert.ok(last.action === 'nothing' || last.action === 'apply', JSON.stringify(last));
        const final = recorded(stepA, stepB);
        assert.ok(sameContent(final, stepB));
        assert.equal(compare(final.version, stepB.version), 'equal', 'one version on both');
        assert.ok(copies.filter(Boolean).length <= 1, 'one conflict copy at most');
      }),
      { numRuns: 3000 },
    );
  });

  it('a winner never records a version that dominates the loser’s (the loser must see the conflict)', () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        realistic(a, b);
        const decision = decide(a, remoteRecordOf(b, 'b'));
        fc.pre(decision.action === 'conflict' && decision.winner === 'local');
        const kept = recorded(a, b);
        assert.equal(kept, a, 'nothing recorded');
        assert.deepEqual(decide(b, remoteRecordOf(kept, 'a')), { action: 'conflict', winner: 'remote' });
      }),
      { numRuns: 3000 },
    );
  });
});

describe('remote records: what the applier refuses from a peer', () => {
  const file = (fields: Partial<FileRecord>) => remoteRecordOf(record(fields), 'p');
  const blocks = new Uint8Array(64).fill(3);
  const good = file({ size: BLOCK_HASH_LENGTH + 1, blockHashes: blocks, contentHash: createHash('sha256').update(blocks).digest() });

  it('accepts a consistent file, directory, symlink and tombstone', () => {
    assert.equal(remoteRecordProblem(good), undefined);
    assert.equal(remoteRecordProblem(file({ type: 'directory', size: 0, blockHashes: new Uint8Array(0), contentHash: new Uint8Array(0) })), undefined);
    assert.equal(remoteRecordProblem(file({ type: 'symlink', size: 0, blockHashes: new Uint8Array(0), contentHash: symlinkContentHash('../x'), symlinkTarget: '../x' })), undefined);
    assert.equal(remoteRecordProblem(remoteRecordOf(tombstone(), 'p')), undefined);
  });

  it('refuses hostile paths, mesh’s own paths and inconsistent content', () => {
    for (const path of ['../x', 'a/../../x', '/etc/passwd', '', '.', 'a\\b', 'a\u0000b', '.mesh/index/CURRENT', '.mesh', 'd/.mesh-tmp.x.12345678']) {
      assert.notEqual(remoteRecordProblem({ ...good, path }), undefined, path);
    }
    assert.match(remoteRecordProblem({ ...good, size: 1 }) ?? '', /block hashes/);
    assert.match(remoteRecordProblem({ ...good, contentHash: sha('other') }) ?? '', /content hash/);
    assert.match(remoteRecordProblem({ ...good, version: [] }) ?? '', /empty/);
    const link = file({ type: 'symlink', size: 0, blockHashes: new Uint8Array(0), contentHash: symlinkContentHash('t'), symlinkTarget: 'u' });
    assert.match(remoteRecordProblem(link) ?? '', /symlink target/);
    assert.match(remoteRecordProblem({ ...link, symlinkTarget: '', contentHash: symlinkContentHash('') }) ?? '', /empty/);
  });
});
