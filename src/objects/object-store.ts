/**
 * The object store: whole, immutable objects under string keys. Only src/objects/ talks to a
 * backend (S3 or a local directory); everything above sees this interface.
 *
 * Keys are relative to the store's configured prefix (S3) or directory (fs). They are checked
 * the same way by every backend (see keys.ts), so code that works on one works on the other.
 */

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** Epoch ms the object was written, as the backend reports it (S3: LastModified; fs: mtime). */
  lastModified?: number;
}

export interface ListOptions {
  /** Only keys that sort after this one (it need not exist). */
  after?: string;
  /** At most this many keys in all. */
  limit?: number;
}

export interface ObjectStore {
  /**
   * Stores a whole object. Objects are immutable: callers write a new key rather than
   * overwrite one, so a reader on another node never sees a half-replaced object.
   */
  put(key: string, body: Buffer): Promise<void>;
  /**
   * The object's bytes, or those of a range of it. A range reaching past the end returns
   * what exists (possibly nothing). Throws ObjectNotFoundError for a missing key.
   */
  get(key: string, range?: ByteRange): Promise<Buffer>;
  /** The object's size, or undefined when the key does not exist. */
  head(key: string): Promise<{ size: number } | undefined>;
  /** Removes the object; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Keys starting with prefix, in ascending UTF-8 byte order, fetched page by page. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo>;
  close(): Promise<void>;
}
