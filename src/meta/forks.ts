/**
 * Open forks, deny modes and byte-range locks of one volume, in the metadata store so that
 * both nodes of a pair enforce them (Time Machine requires deny modes to be mandatory).
 * Each change is atomic: one Lua script on Redis (keys under the volume's hash tag), one
 * LMDB transaction on the embedded store. Both backends pass one contract suite.
 */

export type ForkKind = 'data' | 'rsrc';

/** FPOpenFork access-mode bits. */
export const Access = { Read: 0x0001, Write: 0x0002, DenyRead: 0x0010, DenyWrite: 0x0020 } as const;

export interface ForkOpen {
  /** Unique per open: chosen by the caller (e.g. `<node>:<session>:<refnum>`). */
  openId: string;
  session: string;
  /** The gateway node that holds the session (so a dead node's opens can be released). */
  node: string;
  fileId: number;
  fork: ForkKind;
  /** Access-mode bits as FPOpenFork sent them (Read, Write, DenyRead, DenyWrite). */
  mode: number;
}

/** A locked byte range [start, end); `end` = LOCK_TO_END means "to the end of any possible fork". */
export interface ByteRange {
  start: number;
  end: number;
}

/** AFP's length −1: beyond any fork. Offsets past 2^53 are refused by the protocol layer. */
export const LOCK_TO_END = Number.MAX_SAFE_INTEGER;

export type ForkFailure =
  | 'deny-conflict' // the open's access or deny modes clash with another open of the same file and fork
  | 'not-open' // no such openId
  | 'range-overlap' // lock overlaps a range the same open holds
  | 'range-locked' // lock, read or write touches a range another open holds
  | 'not-locked' // unlock of a range this open does not hold exactly
  | 'too-many'; // the per-file or per-open lock limit

export class ForkError extends Error {
  constructor(readonly reason: ForkFailure, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'ForkError';
  }
}

export interface ForkStore {
  /**
   * Registers an open after checking it against every other open of the same file and
   * fork (other sessions and the same session alike): new Read vs existing DenyRead, new
   * Write vs existing DenyWrite, new DenyRead vs existing Read, new DenyWrite vs existing
   * Write → 'deny-conflict'.
   */
  open(o: ForkOpen): Promise<void>;
  /** Removes an open and every lock it holds. Unknown openId → 'not-open'. */
  close(openId: string): Promise<void>;
  /** The opens of a file (both forks), for "is it open" checks and the fork-open attribute bits. */
  opensOf(fileId: number): Promise<ForkOpen[]>;
  /** Locks [start, end) for an open: 'range-overlap' with its own locks, 'range-locked' with another's, 'too-many'. */
  lock(openId: string, range: ByteRange): Promise<void>;
  /** Unlocks exactly a range the open locked, else 'not-locked'. */
  unlock(openId: string, range: ByteRange): Promise<void>;
  /** Read/write check: fails with 'range-locked' if another open of the same file and fork holds any byte of the range. */
  checkAccess(openId: string, range: ByteRange): Promise<void>;
  /** Ends every open (and lock) of a session; returns how many opens were released. */
  releaseSession(session: string): Promise<number>;
  /** Ends every open of a node whose lease lapsed; returns how many opens were released. */
  releaseNode(node: string): Promise<number>;
  /**
   * Every open of a session (any file, either fork, any node), sorted by openId in
   * JavaScript string order; [] for an unknown session. Restoring a session on another node
   * after its node died starts here: the openId encodes the refnum.
   */
  opensOfSession(session: string): Promise<ForkOpen[]>;
  /**
   * Moves an open to `node`: its `node` field and the per-node index change, while its
   * session, mode, file, fork and every byte-range lock it holds stay (locks belong to the
   * openId). From then on releaseNode(node) releases it and releaseNode(its old node) does
   * not. Adopting onto the node that already holds it changes nothing. Unknown openId →
   * 'not-open'.
   */
  adopt(openId: string, node: string): Promise<void>;
  /** The sessions with at least one open held by `node`: sorted, without duplicates; [] for an unknown node. */
  sessionsOfNode(node: string): Promise<string[]>;
  /**
   * Every node that holds at least one open of this volume, sorted (so a survivor can find
   * the nodes whose lease lapsed). A node drops out with its last open, however that ends
   * (close, releaseSession, releaseNode, adopt).
   */
  nodes(): Promise<string[]>;
}
