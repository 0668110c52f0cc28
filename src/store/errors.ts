/** Base class of every error the store throws on purpose. */
export class StoreError extends Error {
  override name = 'StoreError';
}

/** Another process (or another open in this one) holds the folder's index. */
export class StoreLockedError extends StoreError {
  override name = 'StoreLockedError';
}

/** What is on disk breaks the store's format: a record that does not decode, an index that disagrees. */
export class StoreCorruptError extends StoreError {
  override name = 'StoreCorruptError';
}

/** A call on a store after `close()`. */
export class StoreClosedError extends StoreError {
  override name = 'StoreClosedError';
}

/**
 * The caller handed the store something it could not keep as given: a change that would not read
 * back equal (a size beyond 2^53, a malformed vector), bad peer progress, a reserved meta key.
 */
export class StoreInputError extends StoreError {
  override name = 'StoreInputError';
}
