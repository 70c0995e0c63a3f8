/**
 * MetaStore on LMDB (the `lmdb` package): the embedded backend for a single node.
 *
 * One LMDB environment in a directory, one database with msgpack values and string keys:
 *   user:<userKey>     UserRecord
 *   uid:<uid>          userKey of the user holding that uid
 *   counter:uid        last uid handed out (absent until the first user)
 *   server:identity    { signature, createdAt }
 *   node:<id>          NodeLease
 *   lease:<name>       { holder, expiresAt } (named leases)
 *   ns:<volume>:...    a volume's namespace (see embedded-namespace.ts)
 *   fk:<volume>:...    a volume's open forks and locks (see embedded-forks.ts)
 *   ss:...             session records and replay caches (see embedded-sessions.ts)
 *
 * Every multi-key change runs in one `db.transaction()` callback. lmdb-js batches several
 * such callbacks into one LMDB write transaction and does NOT roll a callback's writes back
 * when it throws, so each callback does all of its checks before its first write and reports
 * failures through its return value instead of throwing.
 */
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { open, type Database, type RootDatabase } from 'lmdb';
import { EmbeddedDump } from './embedded-dump.js';
import { STORE_KEYS as K, NODE_RANGE, USER_RANGE } from './embedded-keys.js';
import { EmbeddedForkStore } from './embedded-forks.js';
import { EmbeddedNamespace } from './embedded-namespace.js';
import { EmbeddedSessionStore } from './embedded-sessions.js';
import type { ForkStore } from './forks.js';
import {
  MetaConflictError,
  MetaNotFoundError,
  userKey,
  type MetaStore,
  type NewUser,
  type NodeInfo,
  type NodeLease,
  type PasswordHash,
  type ServerIdentity,
  type UserRecord,
} from './meta-store.js';
import type { NamespaceOptions, NamespaceStore } from './namespace.js';
import type { SessionStore } from './sessions.js';
import { EmbeddedVolumeAudit } from './verify-embedded.js';
import type { VolumeAudit } from './verify-store.js';
import { checkLease, checkTtl, compareKeys, copyIdentity, copyNodeInfo, copyPassword } from './records.js';
import { errorName, secondsSince, type MetaCallObserver } from './call-observer.js';
import { writeTransaction } from './embedded-tx.js';

const FIRST_UID = 1000;


/** A named lease (claimLease). */
interface LeaseRecord {
  holder: string;
  expiresAt: number;
}

type Value = UserRecord | NodeLease | ServerIdentity | LeaseRecord | string | number;

/** When the embedded store's commits reach the disk. */
export type EmbeddedSyncMode = 'periodic' | 'commit';

export interface EmbeddedOpenOptions {
  sync?: EmbeddedSyncMode;
  intervalMs?: number;
  /**
   * Opens an existing store without the right to change it (a migration's source, which
   * must stay usable to go back to): no directory is made, every write fails.
   */
  readOnly?: boolean;
  /** Told of every write transaction and sync (the metadata latency metrics). */
  calls?: MetaCallObserver;
}

export class EmbeddedMetaStore implements MetaStore {
  readonly kind = 'embedded' as const;
  private closed?: Promise<void>;
  private readonly namespaces = new Map<string, NamespaceStore>();
  private readonly forkStores = new Map<string, ForkStore>();
  private sessionStore?: SessionStore;

  private syncTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly db: RootDatabase<Value, string>, private readonly mode: EmbeddedSyncMode, private readonly readOnly: boolean, private readonly calls: MetaCallObserver | undefined) {}

  /**
   * Opens (creating if needed) the store kept in the directory `path`.
   *
   * `periodic` (the default) commits without waiting for the disk, syncs every
   * `intervalMs`, and syncs on demand at the durable points: one client's namespace changes
   * run at ~5,000/s instead of ~1,400/s (one fsync per commit; bench/namespace). Its cost:
   * an OS crash or power loss can lose up to an interval of unsynced changes, and LMDB warns
   * that such a crash between syncs can also damage the file. `commit` syncs every commit.
   *
   * `calls` is told of every write transaction and sync (the metadata latency metrics).
   * Reads are not timed: they are synchronous lookups in the memory-mapped file, a few
   * microseconds, and timing each would add a noticeable share to every one.
   */
  static async open(path: string, opts: EmbeddedOpenOptions = {}): Promise<EmbeddedMetaStore> {
    const readOnly = opts.readOnly ?? false;
    if (!readOnly) await mkdir(path, { recursive: true });
    const mode = opts.sync ?? 'periodic';
    // noSubdir: false because lmdb would otherwise take a path with a dot in its last
    // component ("meta.db") for a file name, and we have just made it a directory.
    const db = open<Value, string>({ path, noSubdir: false, encoding: 'msgpack', noSync: mode === 'periodic', readOnly });
    const store = new EmbeddedMetaStore(db, mode, readOnly, opts.calls);
    if (mode === 'periodic' && !readOnly) {
      store.syncTimer = setInterval(() => {
        store.sync().catch(() => undefined); // a failed background sync is retried next tick; sync points report their own
      }, opts.intervalMs ?? 1000);
      store.syncTimer.unref();
    }
    return store;
  }

  sync(): Promise<void> {
    if (this.readOnly) return Promise.resolve();
    const done = this.syncOnce();
    const calls = this.calls;
    if (!calls) return done;
    const started = performance.now();
    return done.then(
      () => calls.observe('sync', 'ok', secondsSince(started)),
      (err: unknown) => {
        calls.observe('sync', errorName(err), secondsSince(started));
        throw err;
      },
    );
  }

  private syncOnce(): Promise<void> {
    if (this.mode === 'commit') return this.db.flushed.then(() => undefined);
    // lmdb-js has env sync (mdb_env_sync, forced) at runtime but leaves it out of its types.
    const env = this.db as unknown as { sync(cb: (err?: Error) => void): void };
    return new Promise((resolve, reject) => env.sync((err) => (err ? reject(err) : resolve())));
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    return this.readUser(userKey(name));
  }

  async getUserByUid(uid: number): Promise<UserRecord | undefined> {
    const key = this.db.get(K.uid(uid));
    if (typeof key !== 'string') return undefined;
    const user = this.readUser(key);
    return user?.uid === uid ? user : undefined;
  }

  async createUser(user: NewUser): Promise<UserRecord> {
    const key = userKey(user.name);
    const result = await this.write(() => {
      if (this.db.get(K.user(key)) !== undefined) return undefined;
      const last = this.db.get(K.uidCounter);
      const uid = typeof last === 'number' ? last + 1 : FIRST_UID;
      const now = Date.now();
      const record: UserRecord = {
        name: user.name,
        uid,
        gid: user.gid ?? uid,
        password: copyPassword(user.password),
        createdAt: now,
        updatedAt: now,
      };
      this.db.putSync(K.uidCounter, uid);
      this.db.putSync(K.user(key), record);
      this.db.putSync(K.uid(uid), key);
      return record;
    });
    if (!result) throw new MetaConflictError(`user ${JSON.stringify(user.name)} already exists`);
    return result;
  }

  async setUserPassword(name: string, password: PasswordHash): Promise<UserRecord> {
    const key = userKey(name);
    const result = await this.write(() => {
      const current = this.readUser(key);
      if (!current) return undefined;
      const updated: UserRecord = {
        ...current,
        password: copyPassword(password),
        updatedAt: Math.max(Date.now(), current.updatedAt),
      };
      this.db.putSync(K.user(key), updated);
      return updated;
    });
    if (!result) throw new MetaNotFoundError(`no user ${JSON.stringify(name)}`);
    return result;
  }

  async deleteUser(name: string): Promise<boolean> {
    const key = userKey(name);
    return this.write(() => {
      const current = this.readUser(key);
      if (!current) return false;
      this.db.removeSync(K.user(key));
      // The counter stays: uids are never reused, so file ownership cannot pass to a new user.
      this.db.removeSync(K.uid(current.uid));
      return true;
    });
  }

  async listUsers(): Promise<UserRecord[]> {
    const users: UserRecord[] = [];
    for (const { value } of this.db.getRange(USER_RANGE)) users.push(value as UserRecord);
    return users.sort((a, b) => compareKeys(userKey(a.name), userKey(b.name)));
  }

  async serverIdentity(): Promise<ServerIdentity> {
    const existing = this.db.get(K.identity) as ServerIdentity | undefined;
    if (existing) return copyIdentity(existing);
    const stored = await this.write(() => {
      const current = this.db.get(K.identity) as ServerIdentity | undefined;
      if (current) return current;
      const fresh: ServerIdentity = { signature: randomBytes(16), createdAt: Date.now() };
      this.db.putSync(K.identity, fresh);
      return fresh;
    });
    return copyIdentity(stored);
  }

  async registerNode(node: NodeInfo, ttlMs: number): Promise<void> {
    checkTtl(ttlMs);
    await this.write(() => {
      this.db.putSync(K.node(node.id), { ...copyNodeInfo(node), expiresAt: Date.now() + ttlMs });
    });
  }

  async renewNode(id: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs);
    return this.write(() => {
      const lease = this.db.get(K.node(id)) as NodeLease | undefined;
      // The clock is read inside the transaction: the callback may run a little after the call.
      const now = Date.now();
      if (!lease || lease.expiresAt <= now) return false;
      this.db.putSync(K.node(id), { ...lease, expiresAt: now + ttlMs });
      return true;
    });
  }

  async unregisterNode(id: string): Promise<void> {
    await this.db.remove(K.node(id));
  }

  async listNodes(): Promise<NodeLease[]> {
    const now = Date.now();
    const live: NodeLease[] = [];
    for (const { value } of this.db.getRange(NODE_RANGE)) {
      const lease = value as NodeLease;
      if (lease.expiresAt > now) live.push(lease);
    }
    return live.sort((a, b) => compareKeys(a.id, b.id));
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    checkLease(name, holder);
    checkTtl(ttlMs);
    return this.write(() => {
      const lease = this.db.get(K.lease(name)) as LeaseRecord | undefined;
      // The clock is read inside the transaction: the callback may run a little after the call.
      const now = Date.now();
      if (lease && lease.holder !== holder && lease.expiresAt > now) return false;
      this.db.putSync(K.lease(name), { holder, expiresAt: now + ttlMs });
      return true;
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    checkLease(name, holder);
    await this.write(() => {
      const lease = this.db.get(K.lease(name)) as LeaseRecord | undefined;
      if (lease?.holder === holder) this.db.removeSync(K.lease(name));
    });
  }

  async leaseHolder(name: string): Promise<string | undefined> {
    checkLease(name);
    const lease = this.db.get(K.lease(name)) as LeaseRecord | undefined;
    return lease && lease.expiresAt > Date.now() ? lease.holder : undefined;
  }

  /** One instance per volume; the first caller's options stay with it. */
  namespace(volumeKey: string, opts: NamespaceOptions): NamespaceStore {
    let ns = this.namespaces.get(volumeKey);
    if (!ns) {
      // The namespace keeps its own records under `ns:` keys in the same database.
      ns = new EmbeddedNamespace(this.db as unknown as Database<unknown, string>, volumeKey, opts, this.mode === 'periodic', this.calls);
      this.namespaces.set(volumeKey, ns);
    }
    return ns;
  }

  /** One instance per volume; its keys live under `fk:` in the same database. */
  forks(volumeKey: string): ForkStore {
    let f = this.forkStores.get(volumeKey);
    if (!f) {
      f = new EmbeddedForkStore(this.db as unknown as Database<unknown, string>, volumeKey, this.mode === 'periodic', this.calls);
      this.forkStores.set(volumeKey, f);
    }
    return f;
  }

  /** Reads and repairs the volume's `ns:` keys directly (verify-embedded.ts). */
  audit(volumeKey: string, opts: NamespaceOptions): VolumeAudit {
    return new EmbeddedVolumeAudit(this.db as unknown as Database<unknown, string>, volumeKey, opts.fold);
  }

  /** One instance per store; its keys live under `ss:` in the same database. */
  sessions(): SessionStore {
    this.sessionStore ??= new EmbeddedSessionStore(this.db as unknown as Database<unknown, string>, this.mode === 'periodic', this.calls);
    return this.sessionStore;
  }

  /** Every record a restarted gateway relies on, read straight from the database (see dump.ts). */
  dump(): EmbeddedDump {
    return new EmbeddedDump(this.db as unknown as Database<unknown, string>);
  }

  close(): Promise<void> {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.closed ??= this.sync().then(() => this.db.close());
    return this.closed;
  }

  /** A change to users, nodes or leases: one asynchronous LMDB write transaction, timed. */
  private write<T>(body: () => T): Promise<T> {
    return writeTransaction<T>(this.db as unknown as Database<unknown, string>, false, body, this.calls, 'server.write');
  }

  private readUser(key: string): UserRecord | undefined {
    return this.db.get(K.user(key)) as UserRecord | undefined;
  }
}
