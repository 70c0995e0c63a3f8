/**
 * AFP sessions as the metadata store knows them: the record behind a session token, and the
 * session's replay cache. Both live here, not in a node's memory, so that a Mac that
 * reconnects (to the same node after a restart, or to the other node of a pair) finds its
 * session, and a request it sends again is answered from the cache instead of being run twice.
 *
 * Everything of one session expires together: a record not touched for `ttlMs` is gone,
 * with its token and its cached replies. Both backends pass one contract suite
 * (test/meta/sessions-contract.ts). On Redis every key shares one hash tag, so the
 * multi-key changes (record + token index + user index) are single Lua scripts.
 */

export interface SessionRecord {
  /** The AFP session's ID: unique across the nodes of a pair. */
  id: string;
  /** The gateway node that holds the session. */
  node: string;
  /** `userKey()` of the login name: lock stealing looks up the sessions of one user. */
  user: string;
  uid: number;
  /** The opaque token handed to the client (hex); '' until FPGetSessionToken. */
  token: string;
  /** The client's ID from FPGetSessionToken types 1–6 (hex); '' when it sent none. */
  clientId: string;
  /** The client's TimeStamp from types 3/4 (a different one with the same ID means the Mac restarted); null when none. */
  timestamp: number | null;
  /** Volume keys of every volume the session has open: a node restoring the session reopens them. */
  volumes: string[];
  /** Volume keys of the Time Machine volumes the session has open: what lock stealing looks for. */
  tmVolumes: string[];
  /** Volume keys on which the session may hold opens in the fork store: what releasing it must visit. */
  forkVolumes: string[];
  createdAt: number;
}

/** One cached reply. */
export interface ReplayEntry {
  /** The DSI request ID (u16). */
  requestId: number;
  /** The AFP command byte: a hit needs both to match. */
  command: number;
  /**
   * The session's running count of requests when this one arrived. Request IDs wrap at
   * 65536; `seq` does not, so a reader can tell the last `window` requests from an entry left
   * behind a wrap ago.
   */
  seq: number;
  /** The AFP result code (signed 32-bit). */
  code: number;
  /** The complete reply block. */
  payload: Buffer;
}

export interface SessionStore {
  /**
   * Creates or replaces a session's record, expiring `ttlMs` from now. A changed token
   * replaces the old token's index entry (the old token stops resolving); a token already
   * held by another session is a MetaConflictError.
   */
  putSession(rec: SessionRecord, ttlMs: number): Promise<void>;
  session(id: string): Promise<SessionRecord | undefined>;
  /** The live session a token names; undefined for an unknown or expired token. */
  sessionByToken(token: string): Promise<SessionRecord | undefined>;
  /** The live sessions of one user (`userKey`), sorted by id. */
  sessionsOfUser(user: string): Promise<SessionRecord[]>;
  /** Moves a session's expiry (record, token, replay cache) to `ttlMs` from now; false when it had expired. */
  touchSession(id: string, ttlMs: number): Promise<boolean>;
  /** Removes a session's record, token and replay cache; no error when it is already gone. */
  dropSession(id: string): Promise<void>;
  /**
   * Stores a reply in slot `requestId % window` of the session's cache, replacing what the
   * slot held. The entry expires with the session; a session without a record keeps its
   * entries for `ttlMs`.
   */
  putReply(sessionId: string, window: number, entry: ReplayEntry, ttlMs: number): Promise<void>;
  /**
   * The cached replies that belong to the session's last `window` requests: entries whose
   * `seq` is within `window` of the newest entry's, newest first.
   */
  replies(sessionId: string, window: number): Promise<ReplayEntry[]>;
  /**
   * Asks node `holder` to give up session `id`: to hand it over to node `to`, or, with `to`
   * undefined, to end it (lock stealing). Delivered at most once, to a live subscriber; the
   * asker learns the outcome from the record (its node changes, or it goes). Absent where a
   * single node owns the store (the embedded store).
   */
  requestRelease?(holder: string, id: string, to: string | undefined): Promise<void>;
  /** Calls `onRequest` for each release request addressed to `node`; returns the stop function. */
  watchReleases?(node: string, onRequest: (id: string, to: string | undefined) => void): () => void;
}
