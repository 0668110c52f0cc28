/** Base class of every error the delta engine throws on purpose. */
export class DeltaError extends Error {
  override name = 'DeltaError';
}

/** A signature's bytes break the format: wrong magic, a bad length, a count that disagrees. */
export class MalformedSignatureError extends DeltaError {
  override name = 'MalformedSignatureError';
}

/** A delta's bytes break the format: unknown instruction, an index out of range, a bad length. */
export class MalformedDeltaError extends DeltaError {
  override name = 'MalformedDeltaError';
}

/** The basis given to patch is not the file the signature was made from (too short for a copy). */
export class BasisMismatchError extends DeltaError {
  override name = 'BasisMismatchError';
}

/** The rebuilt file does not have the length or content hash the delta promised. */
export class VerificationError extends DeltaError {
  override name = 'VerificationError';
}
