// Mesh keys (generate, parse, swarm key, service tag), where a folder's key comes from, the key
// files' permissions, the peer identity that survives restarts, and `mesh keygen`.
import '../src/polyfills.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { describe, it, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { preSharedKey } from '@libp2p/pnet';
import { initFolder } from '../src/folder/folder-root.js';
import { InvalidMeshKeyError, MeshKeyMismatchError, PeerKeyError } from '../src/node/errors.js';
import {
  formatMeshKey,
  generateMeshKey,
  KEY_FILE_MODE,
  loadPeerKey,
  MESH_KEY_FILE,
  meshServiceTag,
  parseMeshKey,
  PEER_KEY_FILE,
  resolveMeshKey,
  stateFile,
  swarmKeyOf,
} from '../src/node/keys.js';
import { createMeshNetwork } from '../src/node/network.js';
import { tempDir } from './helpers.js';

const KEY_PATTERN = /^mesh1[0-9a-f]{64}$/;
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

async function folder(t: TestContext): Promise<string> {
  return initFolder(await tempDir(t, 'mesh-keys-'));
}

async function storedText(root: string): Promise<string> {
  return (await readFile(stateFile(root, MESH_KEY_FILE), 'utf8')).trim();
}

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('mesh keys', () => {
  it('a generated key is mesh1 and 64 lowercase hex digits, and parses back to its 32 bytes', () => {
    const text = generateMeshKey();
    assert.match(text, KEY_PATTERN);
    const key = parseMeshKey(text);
    assert.equal(key.length, 32);
    assert.equal(formatMeshKey(key), text);
    assert.notEqual(generateMeshKey(), text);
  });

  it('parsing ignores surrounding white space and the case of the hex digits', () => {
    const text = generateMeshKey();
    assert.deepEqual(parseMeshKey(`  ${text}\n`), parseMeshKey(text));
    assert.deepEqual(parseMeshKey(`mesh1${text.slice(5).toUpperCase()}`), parseMeshKey(text));
  });

  it('malformed keys are refused with InvalidMeshKeyError saying what a key looks like, never repeating the text', () => {
    const hex = generateMeshKey().slice(5);
    const cases: [string, RegExp][] = [
      ['', /empty/],
      [`mesh2${hex}`, /does not start with "mesh1"/],
      [hex, /does not start with "mesh1"/],
      [`mesh1${hex.slice(1)}`, /63 hex digits instead of 64/],
      [`mesh1${hex}0`, /65 hex digits instead of 64/],
      [`mesh1${hex.slice(1)}g`, /not a hex digit/],
      [`mesh1${hex.slice(0, 32)} ${hex.slice(32)}`, /not a hex digit/],
    ];
    for (const [text, reason] of cases) {
      assert.throws(
        () => parseMeshKey(text, '--key'),
        (error: unknown) => {
          assert.ok(error instanceof InvalidMeshKeyError, `${JSON.stringify(text)} throws InvalidMeshKeyError`);
          assert.match(error.message, reason);
          assert.match(error.message, /"mesh1" followed by 64 hex digits/);
          assert.match(error.message, /--key/);
          if (text.length > 8) assert.ok(!error.message.includes(hex.slice(8, 40)), 'the message does not repeat the key');
          return true;
        },
      );
    }
  });

  it('the swarm key is the 95-byte pnet v1 format that preSharedKey accepts', () => {
    const text = generateMeshKey();
    const swarm = swarmKeyOf(parseMeshKey(text));
    assert.equal(swarm.length, 95);
    assert.equal(new TextDecoder().decode(swarm), `/key/swarm/psk/1.0.0/\n/base16/\n${text.slice(5)}`);
    assert.doesNotThrow(() => preSharedKey({ psk: swarm })());
  });

  it('the mDNS service tag is mesh- and the first 8 hex digits of SHA-256(key)', () => {
    const key = parseMeshKey(generateMeshKey());
    assert.equal(meshServiceTag(key), `mesh-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`);
    assert.match(meshServiceTag(key), /^mesh-[0-9a-f]{8}$/);
    assert.notEqual(meshServiceTag(parseMeshKey(generateMeshKey())), meshServiceTag(key));
  });
});

describe("a folder's mesh key", () => {
  it('with no key given, a new one is made and stored (mode 0600), then reused', async (t) => {
    const root = await folder(t);
    const first = await resolveMeshKey(root, { env: {} });
    assert.equal(first.source, 'new');
    assert.equal(first.file, 'created');
    assert.match(first.text, KEY_PATTERN);
    assert.equal(await storedText(root), first.text);
    assert.equal(await modeOf(stateFile(root, MESH_KEY_FILE)), KEY_FILE_MODE);

    const again = await resolveMeshKey(root, { env: {} });
    assert.deepEqual([again.source, again.file, again.text], ['stored', 'unchanged', first.text]);
  });

  it('the flag wins over MESH_KEY, which wins over the stored key; a given key is stored when there is none', async (t) => {
    const [flag, env] = [generateMeshKey(), generateMeshKey()];
    const root = await folder(t);
    const fromFlag = await resolveMeshKey(root, { key: flag, env: { MESH_KEY: env } });
    assert.deepEqual([fromFlag.source, fromFlag.file, fromFlag.text], ['flag', 'created', flag]);
    assert.equal(await storedText(root), flag);

    const other = await folder(t);
    const fromEnv = await resolveMeshKey(other, { env: { MESH_KEY: `${env}\n` } });
    assert.deepEqual([fromEnv.source, fromEnv.file, fromEnv.text], ['env', 'created', env]);
    // The same key again, by either way: nothing changes.
    assert.equal((await resolveMeshKey(other, { key: env, env: {} })).file, 'unchanged');
    assert.equal((await resolveMeshKey(other, { env: { MESH_KEY: env } })).file, 'unchanged');
    // An empty MESH_KEY counts as unset.
    assert.equal((await resolveMeshKey(other, { env: { MESH_KEY: '' } })).source, 'stored');
  });

  it('a given key that differs from the stored one is refused, unless replace is asked', async (t) => {
    const root = await folder(t);
    const stored = (await resolveMeshKey(root, { env: {} })).text;
    const other = generateMeshKey();
    await assert.rejects(resolveMeshKey(root, { key: other, env: {} }), (error: unknown) => {
      assert.ok(error instanceof MeshKeyMismatchError);
      assert.match(error.message, /belongs to another mesh/);
      assert.match(error.message, /--replace-key/);
      assert.ok(!error.message.includes(other.slice(5)) && !error.message.includes(stored.slice(5)), 'no key in the message');
      return true;
    });
    await assert.rejects(resolveMeshKey(root, { env: { MESH_KEY: other } }), (error: unknown) => error instanceof MeshKeyMismatchError && error.source === 'env');
    assert.equal(await storedText(root), stored, 'the stored key is untouched');

    const replaced = await resolveMeshKey(root, { key: other, env: {}, replace: true });
    assert.deepEqual([replaced.source, replaced.file, replaced.text], ['flag', 'replaced', other]);
    assert.equal(await storedText(root), other);
    assert.equal(await modeOf(stateFile(root, MESH_KEY_FILE)), KEY_FILE_MODE);
  });

  it('a malformed given key writes nothing; a damaged key file is refused, or replaced when asked', async (t) => {
    const root = await folder(t);
    await assert.rejects(resolveMeshKey(root, { key: 'mesh1abc', env: {} }), InvalidMeshKeyError);
    await assert.rejects(stat(stateFile(root, MESH_KEY_FILE)), { code: 'ENOENT' });

    await writeFile(stateFile(root, MESH_KEY_FILE), 'not a key\n', { mode: KEY_FILE_MODE });
    await assert.rejects(resolveMeshKey(root, { env: {} }), (error: unknown) => error instanceof InvalidMeshKeyError && error.message.includes(MESH_KEY_FILE));
    const key = generateMeshKey();
    await assert.rejects(resolveMeshKey(root, { key, env: {} }), InvalidMeshKeyError);
    assert.equal((await resolveMeshKey(root, { key, env: {}, replace: true })).file, 'replaced');
    assert.equal(await storedText(root), key);
  });
});

describe("a folder's peer identity", () => {
  it('is made on first use (mode 0600) and reused, so the peer id survives restarts', async (t) => {
    const root = await folder(t);
    const first = await loadPeerKey(root);
    assert.equal(first.type, 'Ed25519');
    assert.equal(await modeOf(stateFile(root, PEER_KEY_FILE)), KEY_FILE_MODE);
    const second = await loadPeerKey(root);
    assert.ok(second.equals(first));

    const meshKey = parseMeshKey(generateMeshKey());
    const ids: string[] = [];
    for (let run = 0; run < 2; run++) {
      const network = await createMeshNetwork({ meshKey, privateKey: await loadPeerKey(root), host: '127.0.0.1', mdns: false });
      ids.push(network.peerId);
    }
    assert.equal(ids[0], ids[1]);
    assert.equal(ids[0], first.publicKey.toString());
  });

  it('a damaged peer.key is refused with PeerKeyError, not silently replaced', async (t) => {
    const root = await folder(t);
    await writeFile(stateFile(root, PEER_KEY_FILE), 'garbage', { mode: KEY_FILE_MODE });
    await assert.rejects(loadPeerKey(root), PeerKeyError);
    assert.equal(await readFile(stateFile(root, PEER_KEY_FILE), 'utf8'), 'garbage');
  });
});

test('mesh keygen prints a key, alone on one line', async () => {
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, MAIN, 'keygen']);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  assert.match(result.stdout, /^mesh1[0-9a-f]{64}\n$/);
  assert.doesNotThrow(() => parseMeshKey(result.stdout));
});
