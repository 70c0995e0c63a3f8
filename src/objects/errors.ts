/**
 * Errors of the object layer. Callers branch on the class, never on a backend's error codes:
 * the layers above must not know whether objects live in S3 or in a directory.
 */

export class ObjectStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The key does not exist (or no longer does). Not retryable: the answer will not change. */
export class ObjectNotFoundError extends ObjectStoreError {
  constructor(
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super(`object not found: ${key}`, options);
  }
}

/**
 * The backend could not be reached, timed out or failed on its side (5xx, throttling, a full
 * or failing disk) after the configured retries. The operation may succeed later; the upload
 * pipeline keeps dirty blocks and tries again.
 */
export class ObjectStoreUnavailableError extends ObjectStoreError {}

/** A key the store refuses: a bug in the caller, not a backend condition. */
export class InvalidObjectKeyError extends ObjectStoreError {
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`invalid object key ${JSON.stringify(key)}: ${why}`);
  }
}
