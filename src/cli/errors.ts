import { ControlError } from '../control/control-client.js';
import { DeltaError } from '../delta/errors.js';
import { FolderError } from '../folder/errors.js';
import { NodeError } from '../node/errors.js';
import { StoreError, StoreLockedError } from '../store/errors.js';

/** A failure the user can act on: printed as one line, exit code EXIT_FAILURE or EXIT_USAGE. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}

export const EXIT_FAILURE = 1;
/** Bad command line (as commander uses). */
export const EXIT_USAGE = 2;
/** A bug: something we did not foresee. */
export const EXIT_INTERNAL = 70;

const ERRNO_MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'already exists (use --force to replace it)',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
  EPIPE: 'the output was closed early',
};

function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

/** Escapes control characters so a hostile file name cannot drive the terminal. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** One line for the user, and the exit code, for any error. Never a stack trace (MESH_DEBUG=1 adds it). */
export function describeError(error: unknown): { message: string; exitCode: number } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof StoreLockedError) {
    return { message: 'this folder is in use by another mesh process (a `mesh join` or `mesh scan` of it is running: stop it first)', exitCode: EXIT_FAILURE };
  }
  if (error instanceof DeltaError || error instanceof FolderError || error instanceof StoreError || error instanceof NodeError || error instanceof ControlError) {
    return { message: printable(error.message), exitCode: EXIT_FAILURE };
  }
  if (isErrno(error) && error.code !== undefined && error.code in ERRNO_MESSAGES) {
    const where = error.path === undefined ? '' : `${printable(error.path)}: `;
    return { message: `${where}${ERRNO_MESSAGES[error.code]}`, exitCode: EXIT_FAILURE };
  }
  const detail = error instanceof Error ? error.message : String(error);
  return {
    message: `unexpected error: ${detail} (this is a bug in mesh; MESH_DEBUG=1 shows the details)`,
    exitCode: EXIT_INTERNAL,
  };
}
