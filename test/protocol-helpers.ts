import '../src/polyfills.js';
import { createHash } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import { BLOCK_HASH_BYTES, BLOCK_HASH_LENGTH, type FileChange } from '../src/store/types.js';
import type { DeviceId } from '../src/store/version-vector.js';

// The store tests' device ids, without loading their helpers (fast-check builds its string
// arbitraries when imported: most of a second here).
export const DEVICE_A: DeviceId = '0123456789abcdef';
export const DEVICE_B: DeviceId = 'fedcba9876543210';

/** Where to register teardown: a test's context, or `{ after }` from node:test for a whole suite. */
export interface Teardown {
  after(fn: () => unknown): void;
}

/**
 * A libp2p node as mesh runs one, minus discovery and the mesh key: TCP on 127.0.0.1, noise, yamux
 * with 2 MiB stream windows (shared/notes/stack.md). Stopped when the test ends.
 */
export async function startNode(t: Teardown, privateKey?: PrivateKey): Promise<Libp2p> {
  const node = await createLibp2p({
    ...(privateKey ? { privateKey } : {}),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: 2 * 1024 * 1024 } })],
  });
  t.after(() => node.stop());
  return node;
}

/** Two started nodes, `a` dialled to `b`. */
export async function connectedPair(t: Teardown): Promise<[Libp2p, Libp2p]> {
  const a = await startNode(t);
  const b = await startNode(t);
  await a.dial(b.getMultiaddrs()[0]);
  return [a, b];
}

/** Resolves when `condition()` holds, polling every 10 ms; rejects after `ms`. */
export async function eventually(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A valid file change as the scanner makes them: block hashes covering `size`. */
export function fileChange(path: string, size = 1000, overrides: Partial<FileChange> = {}): FileChange {
  const blocks = Math.ceil(size / BLOCK_HASH_LENGTH);
  const blockHashes = overrides.blockHashes ?? new Uint8Array(blocks * BLOCK_HASH_BYTES).fill(7);
  return {
    path,
    type: 'file',
    size,
    mtimeNs: 1_700_000_000_123_456_789n,
    mode: 0o644,
    inode: 42n,
    blockHashes,
    // SHA-256 of the block list, as the scanner makes it (peers check it).
    contentHash: new Uint8Array(createHash('sha256').update(blockHashes).digest()),
    symlinkTarget: '',
    version: [{ device: DEVICE_A, value: 1 }],
    deleted: false,
    modifiedBy: DEVICE_A,
    ...overrides,
  };
}
