/**
 * MetaStore on Redis (ioredis), standalone or behind Sentinel.
 *
 * Every server-global key carries the hash tag {global}, so in Redis Cluster they all sit in
 * one slot and a Lua script may touch any of them:
 *   <p>:{global}:user:<userKey>   hash: name, uid, gid, password (JSON), createdAt, updatedAt
 *   <p>:{global}:users            set of userKeys (listing without KEYS/SCAN)
 *   <p>:{global}:uids             hash: uid -> userKey
 *   <p>:{global}:counter:uid      last uid handed out (INCR)
 *   <p>:{global}:identity         JSON { signature (base64), createdAt }
 *   <p>:{global}:node:<id>        hash: info (JSON NodeInfo), expiresAt; PEXPIREAT = the lease
 *   <p>:{global}:nodes            sorted set id -> expiresAt (listing)
 *   <p>:{global}:lease:<name>     hash: holder, expiresAt; PEXPIREAT = the lease (named leases)
 *
 * A volume's namespace lives under its own hash tag, <p>:{v:<volumeKey>} (see redis-namespace.ts);
 * session records and replay caches under <p>:{sess} (see redis-sessions.ts).
 *
 * The uid index is one hash rather than a key per uid because a script must name every key
 * it touches in KEYS, and the uid is only known inside the script (after INCR, or after
 * reading the user being deleted).
 *
 * Each multi-key change is one Lua script, so it is atomic. Lease times come from the Redis
 * clock (TIME) so that the nodes of a pair need not agree on the time.
 */
import { Redis, type RedisOptions as IORedisOptions } from 'ioredis';
import { randomBytes } from 'node:crypto';
import {
  MetaConflictError,
  MetaNotFoundError,
  MetaUnavailableError,
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
import { checkLease, checkTtl, compareKeys, copyNodeInfo, copyPassword } from './records.js';
import { RedisForkStore } from './redis-forks.js';
import { RedisNamespace } from './redis-namespace.js';
import { RedisFeed } from './redis-feed.js';
import { encodeIdentity, globalKeys, parseIdentity, parseInteger, parseNodeInfo, parseUser } from './redis-global-records.js';
import { RedisLoad } from './redis-load.js';
import type { MetaCallObserver } from './call-observer.js';
import { measureCommands } from './redis-measure.js';
import { defineScripts, OP_TTL_MS, type LuaScript } from './redis-scripts.js';
import { RedisSessionStore } from './redis-sessions.js';
import type { SessionStore } from './sessions.js';
import { RedisVolumeAudit } from './verify-redis.js';
import type { VolumeAudit } from './verify-store.js';
import type { ForkStore } from './forks.js';
import { callRedis } from './redis-call.js';

export interface RedisOptions {
  /** redis://[user:pass@]host:port[/db]; ignored when `sentinels` is given. */
  url?: string;
  sentinels?: { host: string; port: number }[];
  /** The master's name as the sentinels know it. */
  sentinelName?: string;
  password?: string;
  /** Prefix of every key; default 'afpgw'. Lets several gateways share one Redis. */
  keyPrefix?: string;
  /** How long `connect` waits for a ready connection; default 5000. */
  connectTimeoutMs?: number;
  /** Replicas that must acknowledge writes before a sync point returns (WAIT); default 0. */
  waitReplicas?: number;
  waitTimeoutMs?: number;
  /**
   * How long a call waits for Redis to come back (a restart, a Sentinel failover) before it
   * fails with MetaUnavailableError; default 30000. Must stay below OP_TTL_MS.
   */
  failoverWaitMs?: number;
  /** Told of every command's outcome and duration (the metadata latency metrics). */
  calls?: MetaCallObserver;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_FAILOVER_WAIT_MS = 30_000;
/** Longest pause between reconnect attempts while Redis is away. */
const RETRY_DELAY_MS = 250;

const LUA_NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

const SCRIPTS = {
  // KEYS: user, counter, uids, users. ARGV: userKey, name, gid ('' = same as uid), password JSON, now.
  // Returns the new uid, or 0 when the name is taken.
  afpgwCreateUser: {
    numberOfKeys: 4,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], 999, 'NX')
local uid = redis.call('INCR', KEYS[2])
local gid = ARGV[3]
if gid == '' then gid = uid end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'uid', uid, 'gid', gid, 'password', ARGV[4],
  'createdAt', ARGV[5], 'updatedAt', ARGV[5])
redis.call('HSET', KEYS[3], uid, ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return uid`,
  },
  // KEYS: user. ARGV: password JSON, now. Returns the updated hash, or an empty list.
  afpgwSetPassword: {
    numberOfKeys: 1,
    lua: `
local updated = redis.call('HGET', KEYS[1], 'updatedAt')
if not updated then return {} end
local now = math.max(tonumber(ARGV[2]), tonumber(updated))
redis.call('HSET', KEYS[1], 'password', ARGV[1], 'updatedAt', string.format('%d', now))
return redis.call('HGETALL', KEYS[1])`,
  },
  // KEYS: user, uids, users. ARGV: userKey. Returns 1 when deleted. The counter stays.
  afpgwDeleteUser: {
    numberOfKeys: 3,
    lua: `
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], uid)
redis.call('SREM', KEYS[3], ARGV[1])
return 1`,
  },
  // KEYS: identity. ARGV: candidate JSON. Returns whichever identity won.
  afpgwIdentity: {
    numberOfKeys: 1,
    idempotent: true,
    lua: `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`,
  },
  // KEYS: node, nodes. ARGV: id, info JSON, ttl ms. Also drops lapsed ids from the listing.
  afpgwRegisterNode: {
    numberOfKeys: 2,
    lua: `${LUA_NOW}
local exp = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'info', ARGV[2], 'expiresAt', string.format('%d', exp))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', exp))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now))
redis.call('ZADD', KEYS[2], string.format('%d', exp), ARGV[1])
return 1`,
  },
  // KEYS: node, nodes. ARGV: id, ttl ms. Returns 1 when renewed, 0 when the lease had lapsed.
  afpgwRenewNode: {
    numberOfKeys: 2,
    lua: `${LUA_NOW}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local exp = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'expiresAt', string.format('%d', exp))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', exp))
redis.call('ZADD', KEYS[2], string.format('%d', exp), ARGV[1])
return 1`,
  },
  // KEYS: node, nodes. ARGV: id.
  afpgwUnregisterNode: {
    numberOfKeys: 2,
    lua: `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`,
  },
  // KEYS: lease. ARGV: holder, ttl ms. Returns 1 when the holder has the lease afterwards.
  // The expiresAt check does not rely on Redis having expired the key yet. Idempotent: run
  // again (a resend after a failover), it renews what the first run took and answers 1 again.
  afpgwClaimLease: {
    numberOfKeys: 1,
    idempotent: true,
    lua: `${LUA_NOW}
local cur = redis.call('HMGET', KEYS[1], 'holder', 'expiresAt')
if cur[1] and cur[1] ~= ARGV[1] and tonumber(cur[2]) and tonumber(cur[2]) > now then return 0 end
local exp = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'expiresAt', string.format('%d', exp))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', exp))
return 1`,
  },
  // KEYS: lease. ARGV: holder. Deletes the lease only if the holder holds it.
  afpgwReleaseLease: {
    numberOfKeys: 1,
    idempotent: true,
    lua: `
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`,
  },
  // KEYS: lease. Returns the live holder, or false.
  afpgwLeaseHolder: {
    numberOfKeys: 1,
    idempotent: true,
    lua: `${LUA_NOW}
local cur = redis.call('HMGET', KEYS[1], 'holder', 'expiresAt')
if cur[1] and tonumber(cur[2]) and tonumber(cur[2]) > now then return cur[1] end
return false`,
  },
} as const satisfies Record<string, LuaScript>;

/** The commands `defineCommand` adds at run time; ioredis cannot type them itself. */
interface ScriptedRedis extends Redis {
  afpgwCreateUser(user: string, counter: string, uids: string, users: string, key: string, name: string, gid: string, password: string, now: string): Promise<number>;
  afpgwSetPassword(user: string, password: string, now: string): Promise<string[]>;
  afpgwDeleteUser(user: string, uids: string, users: string, key: string): Promise<number>;
  afpgwIdentity(identity: string, candidate: string): Promise<string | null>;
  afpgwRegisterNode(node: string, nodes: string, id: string, info: string, ttlMs: string): Promise<number>;
  afpgwRenewNode(node: string, nodes: string, id: string, ttlMs: string): Promise<number>;
  afpgwUnregisterNode(node: string, nodes: string, id: string): Promise<number>;
  afpgwClaimLease(lease: string, holder: string, ttlMs: string): Promise<number>;
  afpgwReleaseLease(lease: string, holder: string): Promise<number>;
  afpgwLeaseHolder(lease: string): Promise<string | null>;
}

export class RedisMetaStore implements MetaStore {
  readonly kind = 'redis' as const;
  private readonly k: ReturnType<typeof globalKeys>;
  private closed?: Promise<void>;
  private readonly namespaces = new Map<string, NamespaceStore>();
  private readonly forkStores = new Map<string, ForkStore>();
  private sessionStore?: SessionStore;
  private pubsub?: RedisFeed;

  private constructor(private readonly redis: ScriptedRedis, private readonly prefix: string, private readonly opts: RedisOptions) {
    this.k = globalKeys(prefix);
  }

  /**
   * Connects and waits until Redis is ready. Fails with MetaUnavailableError after
   * `connectTimeoutMs` rather than retrying forever; once connected, ioredis reconnects
   * on its own (following Sentinel to a new master).
   */
  static async connect(opts: RedisOptions): Promise<RedisMetaStore> {
    const prefix = opts.keyPrefix ?? 'afpgw';
    if (prefix === '' || /[{}]/.test(prefix)) {
      throw new RangeError(`keyPrefix must be non-empty and free of braces (they would move the hash tag): ${JSON.stringify(prefix)}`);
    }
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const where = describeAddress(opts);
    let ready = false;
    let lastError: Error | undefined;
    const failoverWaitMs = opts.failoverWaitMs ?? DEFAULT_FAILOVER_WAIT_MS;
    if (!(failoverWaitMs > 0 && failoverWaitMs < OP_TTL_MS)) {
      throw new RangeError(`failoverWaitMs must be above 0 and below ${OP_TTL_MS} (how long a resent script's reply is kept): ${failoverWaitMs}`);
    }
    const ioOpts: IORedisOptions = {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      // Before the first ready connection a failure is final; afterwards keep reconnecting,
      // quickly, so a new master is found soon after Sentinel names it.
      retryStrategy: (times) => (ready ? Math.min(times * 50, RETRY_DELAY_MS) : null),
      // A call made while Redis is away (a restart, a Sentinel failover) waits about
      // failoverWaitMs of reconnect attempts, then fails with MetaUnavailableError. Calls that
      // were in flight when the connection broke are sent again on the new connection;
      // redis-scripts.ts makes that safe for scripts that change state.
      maxRetriesPerRequest: Math.max(1, Math.ceil(failoverWaitMs / RETRY_DELAY_MS)),
      // A master demoted by Sentinel answers writes with READONLY without running them: find
      // the new master and send the command there.
      reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
      ...(opts.password !== undefined ? { password: opts.password } : {}),
    };
    let redis: Redis;
    if (opts.sentinels && opts.sentinels.length > 0) {
      if (!opts.sentinelName) throw new RangeError('sentinelName is required with sentinels');
      // No failoverDetector: when it fires while the client is asking the sentinels for the
      // master, ioredis ends the client for good ("Connection is closed", ioredis #1683). The
      // dead master's broken connection, or READONLY from a demoted one, leads to the new
      // master as quickly.
      redis = new Redis({ ...ioOpts, sentinels: opts.sentinels, name: opts.sentinelName, sentinelRetryStrategy: (times) => Math.min(times * 50, RETRY_DELAY_MS) });
    } else {
      redis = new Redis(opts.url ?? 'redis://127.0.0.1:6379', ioOpts);
    }
    // Without a listener ioredis prints every connection error; we report them through
    // rejected calls instead, and remember the last one to say why connecting failed.
    redis.on('error', (err: Error) => {
      lastError = err;
    });
    defineScripts(redis, SCRIPTS);
    if (opts.calls) measureCommands(redis, opts.calls);

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([redis.connect(), timedOut]);
      ready = true;
    } catch (err) {
      stop(redis);
      const why = lastError?.message ?? (err instanceof Error ? err.message : String(err));
      throw new MetaUnavailableError(`cannot connect to Redis at ${where}: ${why}`);
    } finally {
      clearTimeout(timer);
    }
    return new RedisMetaStore(redis as ScriptedRedis, prefix, opts);
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    return this.readUser(userKey(name));
  }

  async getUserByUid(uid: number): Promise<UserRecord | undefined> {
    if (!Number.isSafeInteger(uid)) return undefined;
    const key = await this.call(() => this.redis.hget(this.k.uids, String(uid)));
    if (key === null) return undefined;
    const user = await this.readUser(key);
    // The two reads are not one snapshot: the user may have been deleted and recreated between them.
    return user?.uid === uid ? user : undefined;
  }

  async createUser(user: NewUser): Promise<UserRecord> {
    const key = userKey(user.name);
    const password = copyPassword(user.password);
    const now = Date.now();
    const gid = user.gid === undefined ? '' : String(user.gid);
    const uid = await this.call(() =>
      this.redis.afpgwCreateUser(this.k.user(key), this.k.uidCounter, this.k.uids, this.k.users, key, user.name, gid, JSON.stringify(password), String(now)),
    );
    if (uid === 0) throw new MetaConflictError(`user ${JSON.stringify(user.name)} already exists`);
    if (!Number.isSafeInteger(uid) || uid < 1000) throw new MetaUnavailableError(`Redis returned a bad uid: ${String(uid)}`);
    return { name: user.name, uid, gid: user.gid ?? uid, password, createdAt: now, updatedAt: now };
  }

  async setUserPassword(name: string, password: PasswordHash): Promise<UserRecord> {
    const key = userKey(name);
    const flat = await this.call(() => this.redis.afpgwSetPassword(this.k.user(key), JSON.stringify(copyPassword(password)), String(Date.now())));
    if (flat.length === 0) throw new MetaNotFoundError(`no user ${JSON.stringify(name)}`);
    return parseUser(pairs(flat));
  }

  async deleteUser(name: string): Promise<boolean> {
    const key = userKey(name);
    const n = await this.call(() => this.redis.afpgwDeleteUser(this.k.user(key), this.k.uids, this.k.users, key));
    return n === 1;
  }

  async listUsers(): Promise<UserRecord[]> {
    const userKeys = await this.call(() => this.redis.smembers(this.k.users));
    const pipeline = this.redis.pipeline();
    for (const key of userKeys) pipeline.hgetall(this.k.user(key));
    const replies = await this.call(() => pipeline.exec());
    const users: UserRecord[] = [];
    for (const [err, hash] of replies ?? []) {
      if (err) throw new MetaUnavailableError(`Redis failed listing users: ${err.message}`);
      const fields = hash as Record<string, string>;
      // Deleted between SMEMBERS and HGETALL.
      if (Object.keys(fields).length > 0) users.push(parseUser(fields));
    }
    return users.sort((a, b) => compareKeys(userKey(a.name), userKey(b.name)));
  }

  async serverIdentity(): Promise<ServerIdentity> {
    const existing = await this.call(() => this.redis.get(this.k.identity));
    if (existing !== null) return parseIdentity(existing);
    const candidate = encodeIdentity({ signature: randomBytes(16), createdAt: Date.now() });
    const stored = await this.call(() => this.redis.afpgwIdentity(this.k.identity, candidate));
    if (stored === null) throw new MetaUnavailableError('Redis lost the server identity it had just stored');
    return parseIdentity(stored);
  }

  async registerNode(node: NodeInfo, ttlMs: number): Promise<void> {
    checkTtl(ttlMs);
    const info = JSON.stringify(copyNodeInfo(node));
    await this.call(() => this.redis.afpgwRegisterNode(this.k.node(node.id), this.k.nodes, node.id, info, String(ttlMs)));
  }

  async renewNode(id: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs);
    const n = await this.call(() => this.redis.afpgwRenewNode(this.k.node(id), this.k.nodes, id, String(ttlMs)));
    return n === 1;
  }

  async unregisterNode(id: string): Promise<void> {
    await this.call(() => this.redis.afpgwUnregisterNode(this.k.node(id), this.k.nodes, id));
  }

  async listNodes(): Promise<NodeLease[]> {
    const ids = await this.call(() => this.redis.zrange(this.k.nodes, '0', '-1'));
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.k.node(id), 'info', 'expiresAt');
    const replies = await this.call(() => pipeline.exec());
    const leases: NodeLease[] = [];
    for (const [err, reply] of replies ?? []) {
      if (err) throw new MetaUnavailableError(`Redis failed listing nodes: ${err.message}`);
      const [info, expiresAt] = reply as (string | null)[];
      // A lapsed lease's key is gone (Redis expired it) even if its id is still listed.
      if (info == null || expiresAt == null) continue;
      leases.push({ ...parseNodeInfo(info), expiresAt: parseInteger(expiresAt, 'expiresAt') });
    }
    return leases.sort((a, b) => compareKeys(a.id, b.id));
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    checkLease(name, holder);
    checkTtl(ttlMs);
    const n = await this.call(() => this.redis.afpgwClaimLease(this.k.lease(name), holder, String(ttlMs)));
    return n === 1;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    checkLease(name, holder);
    await this.call(() => this.redis.afpgwReleaseLease(this.k.lease(name), holder));
  }

  async leaseHolder(name: string): Promise<string | undefined> {
    checkLease(name);
    const holder = await this.call(() => this.redis.afpgwLeaseHolder(this.k.lease(name)));
    return holder ?? undefined;
  }

  /** One instance per volume; the first caller's options stay with it. */
  namespace(volumeKey: string, opts: NamespaceOptions): NamespaceStore {
    let ns = this.namespaces.get(volumeKey);
    if (!ns) {
      ns = new RedisNamespace(this.redis, this.prefix, volumeKey, opts, () => this.feed());
      this.namespaces.set(volumeKey, ns);
    }
    return ns;
  }

  /** One instance per volume, under the volume's hash tag (see redis-forks.ts). */
  forks(volumeKey: string): ForkStore {
    let f = this.forkStores.get(volumeKey);
    if (!f) {
      f = new RedisForkStore(this.redis, this.prefix, volumeKey);
      this.forkStores.set(volumeKey, f);
    }
    return f;
  }

  /** Reads and repairs the volume's keys under its hash tag (verify-redis.ts). */
  audit(volumeKey: string, opts: NamespaceOptions): VolumeAudit {
    return new RedisVolumeAudit(this.redis, this.prefix, volumeKey, opts.fold);
  }

  /** The store's pub/sub, made on first use (it holds a connection of its own). */
  private feed(): RedisFeed {
    return (this.pubsub ??= new RedisFeed(this.redis));
  }

  /** One instance per store, under the {sess} hash tag (see redis-sessions.ts). */
  sessions(): SessionStore {
    this.sessionStore ??= new RedisSessionStore(this.redis, this.prefix, () => this.feed());
    return this.sessionStore;
  }

  /** Bulk writes of whole records, for a migration into this store (see redis-load.ts). */
  load(): RedisLoad {
    return new RedisLoad(this.redis, this.prefix);
  }

  /** A sync point: with replicas configured, WAIT until enough of them have every write. */
  async sync(): Promise<void> {
    const want = this.opts.waitReplicas ?? 0;
    if (want === 0) return;
    const timeoutMs = this.opts.waitTimeoutMs ?? 1000;
    // Too few replicas is part of a failover (the new master's replicas are still attaching
    // or catching up): asked again for as long as a call waits out an outage, then it fails
    // rather than claim a durability that is not there.
    const giveUpAt = Date.now() + (this.opts.failoverWaitMs ?? DEFAULT_FAILOVER_WAIT_MS);
    for (;;) {
      const got = await this.call(() => this.redis.wait(want, timeoutMs));
      if (got >= want) return;
      if (Date.now() + timeoutMs > giveUpAt) throw new MetaUnavailableError(`only ${got} of ${want} Redis replicas acknowledged within ${timeoutMs} ms, still after ${this.opts.failoverWaitMs ?? DEFAULT_FAILOVER_WAIT_MS} ms of asking`);
    }
  }

  close(): Promise<void> {
    this.pubsub?.close();
    // QUIT ends the master connection; disconnect() also ends the connections ioredis keeps
    // to the sentinels, which would otherwise hold the process open (ioredis #1362). quit
    // fails only when the connection is already gone, which is what we wanted.
    const sentinels = (this.opts.sentinels?.length ?? 0) > 0;
    this.closed ??= this.redis.quit().then(
      () => (sentinels ? this.redis.disconnect() : undefined),
      () => (sentinels ? this.redis.disconnect() : stop(this.redis)),
    );
    return this.closed;
  }

  private async readUser(key: string): Promise<UserRecord | undefined> {
    const fields = await this.call(() => this.redis.hgetall(this.k.user(key)));
    return Object.keys(fields).length === 0 ? undefined : parseUser(fields);
  }

  /** Our own errors pass through; anything from ioredis means Redis is unreachable or broken. */
  private call<T>(op: () => Promise<T>): Promise<T> {
    return callRedis(op);
  }
}

/**
 * Stops reconnecting. ioredis's disconnect() on a connection that has already ended arms a
 * 2 s timer that nothing clears, which would keep a failing CLI alive for no reason.
 */
function stop(redis: Redis): void {
  if (redis.status !== 'end') redis.disconnect();
}

function describeAddress(opts: RedisOptions): string {
  if (opts.sentinels && opts.sentinels.length > 0) {
    return `sentinels ${opts.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')} (master ${opts.sentinelName ?? '?'})`;
  }
  const url = opts.url ?? 'redis://127.0.0.1:6379';
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return url;
  }
}

function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}
