import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_DIRECTORY } from '../folder/folder-root.js';

/** The control socket in a folder's state directory (mode 0700: only its owner reaches it). */
export const CONTROL_SOCKET_NAME = 'control.sock';
/**
 * Longest socket path used as is: sun_path holds 108 bytes on Linux and 104 on macOS, the
 * terminating NUL included. A folder deeper than that gets its socket in the temp directory.
 */
const MAX_SOCKET_PATH_BYTES = 100;

/**
 * Where the node running on the folder at `root` (its canonical path) listens for local control
 * requests: `<root>/.mesh/control.sock`, or, when that path is too long for a socket, the same name
 * in a private directory (mode 0700, made by the node) in the temp directory, named from the root's
 * hash. The same for the node and for every command.
 */
export function controlSocketPath(root: string): string {
  const inFolder = join(root, STATE_DIRECTORY, CONTROL_SOCKET_NAME);
  if (Buffer.byteLength(inFolder) <= MAX_SOCKET_PATH_BYTES) return inFolder;
  const digest = createHash('sha256').update(root).digest('hex').slice(0, 24);
  return join(tmpdir(), `mesh-${digest}`, CONTROL_SOCKET_NAME);
}
