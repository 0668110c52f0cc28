// A peer holding the mesh key announces hostile paths over /mesh/index to a real MeshNode on
// loopback: nothing is written or read outside the folder, the peer is disconnected and refused,
// and names that are only unusual (Windows-reserved, case twins) land inside the folder.
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { eventually } from './protocol-helpers.js';
import { batchOf, HostilePeer, sandbox, startVictim, waitForBan, wireDirectory, wireFile, wireSymlink, type Victim } from './hostile-peer.js';

/** Every entry under `dir`, recursively (names relative to it). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    out.push(join(entry.parentPath, entry.name).slice(dir.length + 1));
  }
  return out.sort();
}

/** The folder's entries, mesh's own state aside. */
async function synced(root: string): Promise<string[]> {
  return (await tree(root)).filter((p) => p !== '.mesh' && !p.startsWith('.mesh/'));
}

async function hostileAnnounces(t: Parameters<typeof HostilePeer.start>[0], victim: Victim, batch: Uint8Array): Promise<HostilePeer> {
  const peer = await HostilePeer.start(t, victim.meshKey);
  peer.indexBatches = [batch];
  await peer.connect(victim.address);
  return peer;
}

const HOSTILE_PATHS: [string, string][] = [
  ['parent segment', '../escaped'],
  ['parent segment inside', 'a/../../escaped'],
  ['absolute', '/tmp/escaped'],
  ['drive letter', 'C:/escaped'],
  ['backslash (drive)', 'C:\\escaped'],
  ['backslash (UNC)', '\\\\server\\share'],
  ['empty', ''],
  ['dot', '.'],
  ['dot segment', 'a/./b'],
  ['empty segment', 'a//b'],
  ['trailing slash', 'a/'],
  ['NUL', 'a\0b'],
  ['terminal escape', 'a\x1b]0;pwned\x07b'],
  ['newline', 'a\nb'],
  ['C1 control', 'a\u009bb'],
  ['NFD (not normalised)', 'cafe\u0301'],
  ['lone surrogate', 'a\ud800b'],
  ['name over 255 bytes', 'x'.repeat(256)],
  ["mesh's state", '.mesh/mesh.key'],
  ["mesh's state folder", '.mesh'],
  ['mesh temp name', '.mesh-tmp.escaped.0123abcd'],
];

describe('hostile peer: paths', () => {
  it('every hostile path is refused: nothing written anywhere, the peer disconnected and refused, an honest peer still syncs', { timeout: 180_000 }, async (t) => {
    const { base, folder, outside } = await sandbox(t);
    await writeFile(join(outside, 'secret'), 'outside the folder');
    const before = await tree(base);
    const victim = await startVictim(t, folder);

    for (const [what, path] of HOSTILE_PATHS) {
      // A valid record beside the hostile one: the whole batch is refused, not just the bad record.
      const peer = await hostileAnnounces(t, victim, batchOf([wireFile('innocent.txt'), wireFile(path, Buffer.from('pwned'), { sequence: 2 })]));
      await waitForBan(victim, peer.peerId).catch((error: Error) => {
        throw new Error(`${what} (${JSON.stringify(path)}): ${error.message}\n${victim.errors().join('\n')}`);
      });
      assert.ok(
        victim.errors(peer.peerId).some((m) => m.includes('peer misbehaved')),
        `${what}: the log says the peer misbehaved: ${victim.errors(peer.peerId).join('; ')}`,
      );
      // Refused for a while: a new connection is denied once the victim knows who it is.
      await peer.connect(victim.address, 0).catch(() => undefined);
      await eventually(() => !victim.node.network.isConnected(peer.peerId), 10_000, `${what}: the banned peer's reconnection to be refused`);
      await peer.network.stop();
    }
    assert.deepEqual(await synced(folder), [], 'nothing written in the folder');
    const after = (await tree(base)).filter((p) => !p.startsWith('folder/.mesh'));
    assert.deepEqual(after, before, 'nothing written next to the folder');
    assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'outside the folder');
    assert.equal((await victim.node.folder.store.get('innocent.txt'))?.path, undefined, 'the batch was refused as a whole');

    // An honest node of the same mesh still syncs with the victim.
    const honestDir = join(base, 'honest');
    await mkdir(honestDir);
    await writeFile(join(honestDir, 'hello.txt'), 'hello from an honest peer');
    await startVictim(t, honestDir, victim.meshKey, { peers: [victim.address] });
    await eventually(
      async () => (await readFile(join(folder, 'hello.txt'), 'utf8').catch(() => '')) === 'hello from an honest peer',
      60_000,
      'the honest peer’s file to arrive',
    );
  });

  it('names that are only unusual on Linux land inside the folder as themselves, and the peer stays connected', { timeout: 60_000 }, async (t) => {
    const { folder } = await sandbox(t);
    const victim = await startVictim(t, folder);
    // Windows-reserved names and trailing dot or space are ordinary names on Linux; case twins are
    // two files. Empty files, so nothing needs a transfer.
    const names = ['CON', 'nul.txt', 'com1.log', 'trailing.', 'trailing ', 'README.md', 'readme.md', 'café', 'sub/AUX'];
    const records = [wireDirectory('sub'), ...names.map((name) => wireFile(name))].map((r, k) => ({ ...r, sequence: k + 1 }));
    const peer = await hostileAnnounces(t, victim, batchOf(records));
    const expected = [...names, 'sub'].sort();
    await eventually(async () => (await synced(folder)).join('/') === expected.join('/'), 30_000, 'every name to be created, and nothing else');
    for (const name of names) assert.ok((await lstat(join(folder, name))).isFile(), name);
    assert.ok(victim.node.network.isConnected(peer.peerId), 'a peer sending valid names is not banned');
    assert.deepEqual(victim.errors(peer.peerId), []);
  });
});

/** The victim's apply reports, as JSON (for failure messages). */
function eventsOf(victim: Victim): string {
  return JSON.stringify(victim.events, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value));
}

/** Waits until the victim has reported `path` as failed (refused). */
async function refused(victim: Victim, path: string): Promise<void> {
  await eventually(
    () => victim.events.some((e) => e.kind === 'applied' && e.report.failed.some((f) => f.path === path)),
    30_000,
    `${path} to be refused`,
  ).catch((error: Error) => {
    throw new Error(`${error.message}: ${eventsOf(victim)}`);
  });
}

describe('hostile peer: symlinks', () => {
  it('a symlink a peer makes is never written through, and a file under it is refused', { timeout: 60_000 }, async (t) => {
    const { folder, outside } = await sandbox(t);
    const victim = await startVictim(t, folder);
    const peer = await hostileAnnounces(t, victim, batchOf([wireSymlink('link', outside, { sequence: 1 }), wireSymlink('rel', '../outside', { sequence: 2 })]));
    // Both links: a batch's links are made several at a time, in no fixed order.
    const isLink = async (name: string) => (await lstat(join(folder, name)).catch(() => undefined))?.isSymbolicLink() === true;
    await eventually(async () => (await isLink('link')) && (await isLink('rel')), 30_000, 'the links to be made');
    assert.equal(await readlink(join(folder, 'link')), outside);
    await peer.push(batchOf([wireFile('link/planted', undefined, { sequence: 3 }), wireFile('rel/planted', undefined, { sequence: 4 })], 4));
    await refused(victim, 'link/planted');
    await refused(victim, 'rel/planted');
    assert.deepEqual(await readdir(outside), [], 'nothing written through a link');
  });

  it('a folder turned into a symlink on disk is not written through when the peer then writes in it', { timeout: 60_000 }, async (t) => {
    const { folder, outside } = await sandbox(t);
    const victim = await startVictim(t, folder);
    const peer = await hostileAnnounces(t, victim, batchOf([wireDirectory('docs')]));
    await eventually(() => victim.events.some((e) => e.kind === 'applied' && e.report.applied.some((a) => a.path === 'docs')), 30_000, 'docs/ to be made');
    // The user (or malware) swaps the folder for a link to somewhere else...
    await rm(join(folder, 'docs'), { recursive: true });
    await symlink(outside, join(folder, 'docs'));
    // ...and the peer writes into it.
    await peer.push(batchOf([wireFile('docs/evil.txt', undefined, { sequence: 2 })], 2));
    await refused(victim, 'docs/evil.txt');
    assert.deepEqual(await readdir(outside), [], 'nothing written through the link');
  });
});
