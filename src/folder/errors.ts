/** Base class of every error the folder layer (paths, ignores, scanner) throws on purpose. */
export class FolderError extends Error {
  override name = 'FolderError';
}

/**
 * A folder-relative path that mesh refuses: empty, absolute, with '.' or '..' segments, a
 * backslash, a control character, not NFC, or too long. Guards paths read from disk and, later,
 * paths sent by peers.
 */
export class InvalidPathError extends FolderError {
  override name = 'InvalidPathError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`invalid path ${JSON.stringify(path)}: ${reason}`);
  }
}

/** A path that would resolve outside the folder root. */
export class PathOutsideRootError extends FolderError {
  override name = 'PathOutsideRootError';
}

/**
 * The folder root is gone or is not the directory it was (an unmounted disk leaves an empty mount
 * point behind), or its `.mesh` state directory vanished. Scanning stops without recording a delete:
 * a missing disk must never read as "the user deleted everything".
 */
export class FolderMissingError extends FolderError {
  override name = 'FolderMissingError';
  constructor(
    readonly root: string,
    readonly reason: string,
  ) {
    super(
      `folder ${JSON.stringify(root)} is not available (${reason}); the scan stopped and recorded no delete. ` +
        'Check that its disk is mounted and that it still holds its .mesh directory.',
    );
  }
}

/** `.meshignore` exists but cannot be read (or is not a regular file, or is too large). */
export class IgnoreFileError extends FolderError {
  override name = 'IgnoreFileError';
}

/** The folder given to a command does not exist or is not a directory. */
export class NotAFolderError extends FolderError {
  override name = 'NotAFolderError';
}
