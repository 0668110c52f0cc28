import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { STATE_DIRECTORY } from '../folder/folder-root.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { InvalidMeshKeyError, MeshKeyMismatchError, PeerKeyError } from './errors.js';

/** How a mesh key is written for people: this prefix, then the key's bytes in lowercase hex. */
export const MESH_KEY_PREFIX = 'mesh1';
/** Bytes of a mesh key (the pre-shared key of libp2p's private networks). */
export const MESH_KEY_LENGTH = 32;
/** Files in `<folder>/.mesh/`. */
export const MESH_KEY_FILE = 'mesh.key';
export const PEER_KEY_FILE = 'peer.key';
/** Permissions of both key files: they are secrets of this user alone. */
export const KEY_FILE_MODE = 0o600;
/** Environment variable that gives the mesh key when no flag does. */
export const MESH_KEY_ENV = 'MESH_KEY';

const HEX_DIGITS = MESH_KEY_LENGTH * 2;
/** Header of the swarm key format of @libp2p/pnet (v1, base16). */
const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';
/** Hex digits of SHA-256(key) in the mDNS service tag. */
const SERVICE_TAG_DIGITS = 8;

/** A new random mesh key, as people write it: `mesh1` and 64 lowercase hex digits. */
export function generateMeshKey(): string {
  return formatMeshKey(randomBytes(MESH_KEY_LENGTH));
}

/** The written form of a mesh key's bytes. */
export function formatMeshKey(key: Uint8Array): string {
  checkKeyLength(key);
  return `${MESH_KEY_PREFIX}${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}`;
}

/**
 * The bytes of a written mesh key. Surrounding white space (a pasted newline) is ignored, and the
 * hex digits may be upper case; anything else throws InvalidMeshKeyError saying what is wrong.
 * `where` names the source in that message (a file, say).
 */
export function parseMeshKey(text: string, where?: string): Uint8Array {
  const trimmed = text.trim();
  if (trimmed.length === 0) throw new InvalidMeshKeyError('it is empty', where);
  if (!trimmed.startsWith(MESH_KEY_PREFIX)) throw new InvalidMeshKeyError(`it does not start with "${MESH_KEY_PREFIX}"`, where);
  const hex = trimmed.slice(MESH_KEY_PREFIX.length);
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new InvalidMeshKeyError(`it has a character that is not a hex digit after "${MESH_KEY_PREFIX}"`, where);
  if (hex.length !== HEX_DIGITS) throw new InvalidMeshKeyError(`it has ${hex.length} hex digits instead of ${HEX_DIGITS}`, where);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** The 95-byte swarm key that `preSharedKey({ psk })` of @libp2p/pnet takes. */
export function swarmKeyOf(key: Uint8Array): Uint8Array {
  checkKeyLength(key);
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}${formatMeshKey(key).slice(MESH_KEY_PREFIX.length)}`);
}

/**
 * The mDNS service tag of a mesh: `mesh-` and the first 8 hex digits of SHA-256(key). Meshes on one
 * LAN then ask different questions and never see each other's announcements; the tag reveals 32
 * bits of a hash of the key, nothing that helps to find the key.
 */
export function meshServiceTag(key: Uint8Array): string {
  checkKeyLength(key);
  return `mesh-${createHash('sha256').update(key).digest('hex').slice(0, SERVICE_TAG_DIGITS)}`;
}

function checkKeyLength(key: Uint8Array): void {
  if (key.length !== MESH_KEY_LENGTH) throw new InvalidMeshKeyError(`it is ${key.length} bytes instead of ${MESH_KEY_LENGTH}`);
}

function equalKeys(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
}

/** `<root>/.mesh/<file>`. */
export function stateFile(root: string, file: string): string {
  return join(root, STATE_DIRECTORY, file);
}

async function* bytesOf(data: Uint8Array | string): AsyncGenerator<Uint8Array> {
  yield typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

/** Writes a key file (mode 0600) atomically; `exclusive` refuses to replace one that exists. */
async function writeKeyFile(path: string, data: Uint8Array | string, exclusive: boolean): Promise<void> {
  await writeFileAtomic(path, bytesOf(data), { mode: KEY_FILE_MODE, exclusive });
}

/** The mesh key stored in `<root>/.mesh/mesh.key`, or undefined when there is none. */
export async function readStoredMeshKey(root: string): Promise<Uint8Array | undefined> {
  const path = stateFile(root, MESH_KEY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  return parseMeshKey(text, path);
}

/** Where the key in use came from. */
export type MeshKeySource = 'flag' | 'env' | 'stored' | 'new';

export interface MeshKeyOptions {
  /** The key given on the command line (`--key`); takes precedence over everything. */
  key?: string;
  /** Where MESH_KEY is read (default: process.env); an empty value counts as unset. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Replace a stored key that differs from the given one (`--replace-key`); default false. */
  replace?: boolean;
}

export interface ResolvedMeshKey {
  readonly key: Uint8Array;
  /** The written form, `mesh1...`. */
  readonly text: string;
  readonly source: MeshKeySource;
  /** What happened to `.mesh/mesh.key`. */
  readonly file: 'created' | 'unchanged' | 'replaced';
}

/**
 * Decides the folder's mesh key: `options.key`, else MESH_KEY, else the key stored in
 * `<root>/.mesh/mesh.key`, else a new one. A given key is stored when the folder has none; one that
 * differs from the stored key throws MeshKeyMismatchError unless `replace` (then it replaces it).
 * A malformed given key throws InvalidMeshKeyError, as does a malformed stored one unless a given
 * key replaces it. `<root>/.mesh` must exist (initFolder makes it).
 */
export async function resolveMeshKey(root: string, options: MeshKeyOptions = {}): Promise<ResolvedMeshKey> {
  const envText = (options.env ?? process.env)[MESH_KEY_ENV];
  const given =
    options.key !== undefined
      ? { key: parseMeshKey(options.key, '--key'), source: 'flag' as const }
      : envText !== undefined && envText.trim() !== ''
        ? { key: parseMeshKey(envText, MESH_KEY_ENV), source: 'env' as const }
        : undefined;
  const path = stateFile(root, MESH_KEY_FILE);
  let stored: Uint8Array | undefined;
  try {
    stored = await readStoredMeshKey(root);
  } catch (error) {
    // A damaged key file is refused, unless the user gives the key and asks to replace it.
    if (!(error instanceof InvalidMeshKeyError && given !== undefined && options.replace === true)) throw error;
  }
  const result = (key: Uint8Array, source: MeshKeySource, file: ResolvedMeshKey['file']): ResolvedMeshKey => ({
    key,
    text: formatMeshKey(key),
    source,
    file,
  });

  if (given === undefined) {
    if (stored !== undefined) return result(stored, 'stored', 'unchanged');
    const key = new Uint8Array(randomBytes(MESH_KEY_LENGTH));
    if (!(await createKeyFile(path, `${formatMeshKey(key)}\n`))) return resolveMeshKey(root, options);
    return result(key, 'new', 'created');
  }
  if (stored !== undefined && equalKeys(stored, given.key)) return result(given.key, given.source, 'unchanged');
  if (stored === undefined && !(await fileExists(path))) {
    if (!(await createKeyFile(path, `${formatMeshKey(given.key)}\n`))) return resolveMeshKey(root, options);
    return result(given.key, given.source, 'created');
  }
  if (options.replace !== true) throw new MeshKeyMismatchError(root, given.source);
  await writeKeyFile(path, `${formatMeshKey(given.key)}\n`, false);
  return result(given.key, given.source, 'replaced');
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Creates a key file that must not exist yet; false when another process created it first. */
async function createKeyFile(path: string, data: Uint8Array | string): Promise<boolean> {
  try {
    await writeKeyFile(path, data, true);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
}

/**
 * The node's libp2p private key (its peer id), from `<root>/.mesh/peer.key`; a new Ed25519 key is
 * made and stored (protobuf, mode 0600) the first time, so the peer id survives restarts.
 */
export async function loadPeerKey(root: string): Promise<PrivateKey> {
  const path = stateFile(root, PEER_KEY_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
    const key = await generateKeyPair('Ed25519');
    if (await createKeyFile(path, privateKeyToProtobuf(key))) return key;
    // Another process made one meanwhile: use it, so both agree on the peer id.
    bytes = await readFile(path);
  }
  try {
    return privateKeyFromProtobuf(bytes);
  } catch (error) {
    throw new PeerKeyError(path, error instanceof Error ? error.message : String(error));
  }
}
