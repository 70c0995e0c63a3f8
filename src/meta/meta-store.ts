/**
 * The metadata store: every piece of state another gateway node may need. Two
 * implementations (embedded LMDB, Redis) honour the same contract, checked by one shared
 * test suite. This file grows with each layer that keeps state here (namespace, block maps,
 * locks, sessions); issue 2 needs users, the server identity and the node registry.
 */

import type { ForkStore } from './forks.js';
import type { NamespaceOptions, NamespaceStore } from './namespace.js';
import type { SessionStore } from './sessions.js';
import type { VolumeAudit } from './verify-store.js';

/** A scrypt password hash; the parameters travel with the hash so they can be raised later. */
export interface PasswordHash {
  algo: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
  /** base64 */
  hash: string;
}

export interface UserRecord {
  /** Login name as the admin typed it; lookups are case-insensitive (see `userKey`). */
  name: string;
  uid: number;
  gid: number;
  password: PasswordHash;
  createdAt: number;
  updatedAt: number;
}

export interface NewUser {
  name: string;
  password: PasswordHash;
  /** Defaults to the uid's value (a per-user group, as Debian's adduser does). */
  gid?: number;
}

/** Persistent facts about the server as a whole, shared by every node of a pair. */
export interface ServerIdentity {
  /** 16 bytes; FPGetSrvrInfo's ServerSignature. Both nodes of a pair present the same one. */
  signature: Buffer;
  createdAt: number;
}

export interface NodeInfo {
  id: string;
  host: string;
  port: number;
  version: string;
  startedAt: number;
}

export interface NodeLease extends NodeInfo {
  /** Epoch ms at which the lease lapses unless renewed. */
  expiresAt: number;
}

export interface MetaStore {
  readonly kind: 'embedded' | 'redis';

  getUser(name: string): Promise<UserRecord | undefined>;
  getUserByUid(uid: number): Promise<UserRecord | undefined>;
  /** Assigns the next uid (from 1000, never reused) atomically. Throws MetaConflictError if the name exists. */
  createUser(user: NewUser): Promise<UserRecord>;
  /** Throws MetaNotFoundError when the user does not exist. */
  setUserPassword(name: string, password: PasswordHash): Promise<UserRecord>;
  /** Returns false when there was no such user. */
  deleteUser(name: string): Promise<boolean>;
  /** Sorted by name. */
  listUsers(): Promise<UserRecord[]>;

  /** Gets the server identity, creating it on first use; concurrent first calls agree on one. */
  serverIdentity(): Promise<ServerIdentity>;

  /** Creates or refreshes this node's lease. */
  registerNode(node: NodeInfo, ttlMs: number): Promise<void>;
  /** Extends a lease; false when it had already lapsed (another node may have acted on that). */
  renewNode(id: string, ttlMs: number): Promise<boolean>;
  unregisterNode(id: string): Promise<void>;
  /** Live leases only, sorted by id. */
  listNodes(): Promise<NodeLease[]>;

  /**
   * Named leases: at most one holder per name at a time (e.g. `advertiser`, held by the
   * node that answers Bonjour). Takes the lease when it is free or lapsed, renews it when
   * `holder` already holds it, and refuses while another holder's lease is live. True when
   * `holder` holds the lease afterwards, for `ttlMs` from now. Time is the backend's clock
   * (Redis: TIME), so the nodes of a pair need not agree on the time.
   */
  claimLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up at once, but only if `holder` holds it; otherwise does nothing. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** Who holds the lease now; undefined when it is free or has lapsed. */
  leaseHolder(name: string): Promise<string | undefined>;

  /**
   * The namespace of one volume. `volumeKey` is a stable identity of the volume (it names
   * the keys, so renaming a volume in the config must not change it); on Redis all of a
   * volume's keys share the hash tag `{v:<volumeKey>}`.
   */
  namespace(volumeKey: string, opts: NamespaceOptions): NamespaceStore;

  /** The open forks, deny modes and byte-range locks of one volume (same `volumeKey` as `namespace`). */
  forks(volumeKey: string): ForkStore;

  /**
   * Every record of one volume's namespace, read and repaired by `afp-gateway verify`
   * (same `volumeKey` as `namespace`). Not for the serving path: it reads whole volumes.
   */
  audit(volumeKey: string, opts: NamespaceOptions): VolumeAudit;

  /** Session records (behind session tokens) and replay caches, shared by the nodes of a pair. */
  sessions(): SessionStore;

  /**
   * Makes every change committed so far durable. Ordinary changes are committed (visible,
   * safe from a gateway crash) but not necessarily on disk; FPSyncDir and FPSyncFork wait on
   * this. Embedded: LMDB's data reaches the disk. Redis: the configured number of replicas
   * acknowledge the writes (WAIT); Redis's own persistence is its configuration's business.
   */
  sync(): Promise<void>;

  close(): Promise<void>;
}

/** Case-insensitive, normalisation-insensitive identity of a user name. */
export function userKey(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

export class MetaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class MetaConflictError extends MetaError {}
export class MetaNotFoundError extends MetaError {}
/** The backend could not be reached or answered garbage; callers may retry. */
export class MetaUnavailableError extends MetaError {}
