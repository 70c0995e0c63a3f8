/**
 * What a front end holds for one FPOpenFork: a file's data or resource fork opened with
 * access and deny modes. Every method speaks file-system terms (FsError); the AFP layer
 * maps them to result codes and owns the wire's reference numbers.
 */
import type { ForkKind } from '../meta/forks.js';
import type { NodeRecord } from '../meta/namespace.js';
import type { Logger } from '../ops/log.js';

export type { ForkKind };

/** FPOpenFork access-mode bits (the same values the fork store records). */
export { Access } from '../meta/forks.js';

/** A byte-range lock's length meaning "to the end of any possible fork" (AFP's −1). */
export { LOCK_TO_END } from '../meta/forks.js';

/** Who opens a fork: the session (for release at its end) and this node (for release when the node dies). */
export interface ForkOwner {
  session: string;
  /** Unique per open across the pair, e.g. `<node>:<session>:<refnum>`. */
  openId: string;
  /** The session's logger: what the data layer logs on behalf of this open carries the session. */
  log?: Logger;
}

export interface OpenedFork {
  readonly fileId: number;
  readonly fork: ForkKind;
  /** Access-mode bits as opened. */
  readonly mode: number;
  /** The fork's current length as this node sees it (including unsynced writes). */
  length(): Promise<number>;
  /** The file's record with its fork lengths as this node sees them, for parameter replies. */
  node(): Promise<NodeRecord>;
  /**
   * Up to `count` bytes from `offset`; fewer when the fork ends first (none at or past the
   * end). EBADF when not opened for reading; ERANGELOCKED when another open holds a lock
   * on the range.
   */
  read(offset: number, count: number): Promise<Buffer>;
  /**
   * Writes `data` at `offset`, extending the fork as needed. Resolves once the bytes are in
   * this node's cache (not yet durable: see sync). EBADF when not opened for writing;
   * ERANGELOCKED; ENOSPC past the volume's size limit. May wait (backpressure) while the
   * cache holds its limit of unsynced bytes.
   */
  write(offset: number, data: Buffer): Promise<void>;
  /** Truncates or extends (with zeros). EBADF when not opened for writing; ENOSPC. */
  setLength(length: number): Promise<void>;
  /**
   * Locks [start, start + length) (length LOCK_TO_END: to the end of any fork).
   * ERANGEOVERLAP with this open's own locks, ERANGELOCKED with another's, ENOLOCKS.
   */
  lock(start: number, length: number): Promise<void>;
  /** Unlocks exactly a range locked before; ENOTLOCKED otherwise. */
  unlock(start: number, length: number): Promise<void>;
  /** FPFlushFork: the fork's cached bytes reach this node's disk. */
  flush(): Promise<void>;
  /**
   * FPSyncFork: every byte written before the call is in the object store and the block map
   * and length are committed and durable in the metadata store. EIO after the configured
   * timeout when a store cannot be reached: never a false success.
   */
  sync(): Promise<void>;
  /** Ends the open and its locks; its dirty blocks start uploading. Idempotent. */
  close(): Promise<void>;
  /**
   * This node lets go of the fork while the open, its deny modes and its locks stay in the
   * store for another node to adopt (a session handed over). The caller has synced it.
   */
  leave(): void;
}
