/** Base class of every error the planner and applier throw on purpose. */
export class ApplyError extends Error {
  override name = 'ApplyError';
}

/** A peer's record cannot be acted on: a hostile or malformed path, or content that contradicts itself. */
export class InvalidRemoteRecordError extends ApplyError {
  override name = 'InvalidRemoteRecordError';
}

/** The bytes a peer delivered do not hash to the content it announced: nothing was applied. */
export class ContentMismatchError extends ApplyError {
  override name = 'ContentMismatchError';
}

/**
 * A path that cannot be written or deleted safely: one of its parents is a symlink or not a folder
 * (nothing is ever written or deleted through a symlink), or a folder sits at a temp file's name.
 */
export class UnsafePathError extends ApplyError {
  override name = 'UnsafePathError';
}

/** The name the losing version of a conflict would be kept under is already taken. */
export class ConflictCopyExistsError extends ApplyError {
  override name = 'ConflictCopyExistsError';
}
