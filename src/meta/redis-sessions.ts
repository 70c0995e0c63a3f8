/**
 * Session records and replay caches in Redis. Sessions belong to the server, not to a
 * volume, so all their keys share one hash tag; with S = `<prefix>:{sess}`:
 *   S:s:<id>       hash: rec (JSON SessionRecord), token, user; PEXPIRE = the session's ttl
 *   S:t:<token>    string: the id holding the token; same expiry as the record
 *   S:u:<user>     sorted set: id -> expiry (epoch ms, Redis clock), the sessions of one
 *                  user; expired members are pruned when the set is written or read, and
 *                  the key itself expires with its latest member
 *   S:rp:<id>      hash: slot (requestId % window) -> encodeReplay bytes (requestId u16,
 *                  command u8, seq u64, code i32, payload); expires with the record, or
 *                  `ttlMs` after the last putReply while there is no record
 *
 * Everything after S is fixed per kind of key, so an id, token or user key may contain any
 * character, ':' and braces included (the hash tag is the first {...} of the key, S's own).
 *
 * Each change is one Lua script that gets S as KEYS[1] and derives the other keys from it
 * (the old token and user of a session are only known inside the script); they all share
 * S's hash tag. Expiry is Redis's own (PEXPIRE), so an expired session vanishes from every
 * reader at once and the nodes of a pair need not agree on the time. Scripts answer
 * {'ok', ...} or {reason}. Replies are read with HGETALL's Buffer variant so that payload
 * bytes come back exactly as they went in.
 */
import type { Redis } from 'ioredis';
import {
  checkReplayEntry,
  checkSessionId,
  checkSessionRecord,
  checkWindow,
  copySessionRecord,
  decodeReplay,
  encodeReplay,
  isSessionId,
  isToken,
  isUser,
  selectReplies,
} from './sessions-records.js';
import type { RedisFeed } from './redis-feed.js';
import { defineScripts, scriptsWith } from './redis-scripts.js';
import { MetaConflictError, MetaUnavailableError } from './meta-store.js';
import { checkTtl, compareKeys } from './records.js';
import type { ReplayEntry, SessionRecord, SessionStore } from './sessions.js';
import { callRedis } from './redis-call.js';

const LUA_PRELUDE = `
local base = KEYS[1]
local function sessKey(id) return base .. ':s:' .. id end
local function tokKey(t) return base .. ':t:' .. t end
local function userKey(u) return base .. ':u:' .. u end
local function replayKey(id) return base .. ':rp:' .. id end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Records the session's expiry in its user's index, drops members that have expired, and
-- lets the index key itself expire with its latest member.
local function indexUser(user, id, exp, now)
  local uk = userKey(user)
  redis.call('ZREMRANGEBYSCORE', uk, '-inf', '(' .. string.format('%d', now))
  redis.call('ZADD', uk, string.format('%d', exp), id)
  local last = redis.call('ZRANGE', uk, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', uk, last[2])
end
local function dropToken(token, id)
  if token and token ~= '' and redis.call('GET', tokKey(token)) == id then redis.call('DEL', tokKey(token)) end
end
`;

const SCRIPTS = {
  // ARGV: id, token, user, record JSON, ttl ms.
  afpgwSessPut: `
local id, token, user, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])
if token ~= '' then
  local holder = redis.call('GET', tokKey(token))
  if holder and holder ~= id then return {'conflict', holder} end
end
local sk = sessKey(id)
local old = redis.call('HMGET', sk, 'token', 'user')
if old[1] ~= token then dropToken(old[1], id) end
if old[2] and old[2] ~= user then redis.call('ZREM', userKey(old[2]), id) end
redis.call('HSET', sk, 'rec', ARGV[4], 'token', token, 'user', user)
redis.call('PEXPIRE', sk, ttl)
if token ~= '' then redis.call('SET', tokKey(token), id, 'PX', ttl) end
redis.call('PEXPIRE', replayKey(id), ttl)
local now = nowMs()
indexUser(user, id, now + ttl, now)
return {'ok'}`,

  // ARGV: token. Returns {'ok', record JSON} or {'ok'}.
  afpgwSessByToken: `
local id = redis.call('GET', tokKey(ARGV[1]))
if not id then return {'ok'} end
local r = redis.call('HMGET', sessKey(id), 'rec', 'token')
if r[1] and r[2] == ARGV[1] then return {'ok', r[1]} end
return {'ok'}`,

  // ARGV: user. Returns {'ok', record JSON, ...}.
  afpgwSessOfUser: `
local user = ARGV[1]
local uk = userKey(user)
redis.call('ZREMRANGEBYSCORE', uk, '-inf', '(' .. string.format('%d', nowMs()))
local out = {'ok'}
for _, id in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
  local r = redis.call('HMGET', sessKey(id), 'rec', 'user')
  if r[1] and r[2] == user then out[#out + 1] = r[1] end
end
return out`,

  // ARGV: id, ttl ms. Returns {'ok', 1} when touched, {'ok', 0} when the record is gone.
  afpgwSessTouch: `
local id, ttl = ARGV[1], tonumber(ARGV[2])
local sk = sessKey(id)
local r = redis.call('HMGET', sk, 'token', 'user')
if not r[2] then return {'ok', 0} end
redis.call('PEXPIRE', sk, ttl)
if r[1] ~= '' and redis.call('GET', tokKey(r[1])) == id then redis.call('PEXPIRE', tokKey(r[1]), ttl) end
redis.call('PEXPIRE', replayKey(id), ttl)
local now = nowMs()
indexUser(r[2], id, now + ttl, now)
return {'ok', 1}`,

  // ARGV: id.
  afpgwSessDrop: `
local id = ARGV[1]
local sk = sessKey(id)
local r = redis.call('HMGET', sk, 'token', 'user')
dropToken(r[1], id)
if r[2] then redis.call('ZREM', userKey(r[2]), id) end
redis.call('DEL', sk, replayKey(id))
return {'ok'}`,

  // ARGV: id, slot, entry bytes, ttl ms. The hot path: one round trip.
  afpgwSessPutReply: `
local id = ARGV[1]
local rk = replayKey(id)
redis.call('HSET', rk, ARGV[2], ARGV[3])
local left = redis.call('PTTL', sessKey(id))
if left > 0 then redis.call('PEXPIRE', rk, left) else redis.call('PEXPIRE', rk, ARGV[4]) end
return {'ok'}`,
} as const;

/**
 * Scripts that may run twice without harm, so they need no resend guard (redis-scripts.ts):
 * reads, and writes that set what they set again (a record, an expiry, a replay slot; a
 * session's requests run one at a time, so no newer entry can be in the slot when a resend
 * arrives: ioredis resends before it sends anything queued later). The reply path stays one
 * plain script per request.
 */
const IDEMPOTENT: ReadonlySet<ScriptName> = new Set<ScriptName>(['afpgwSessByToken', 'afpgwSessOfUser', 'afpgwSessPut', 'afpgwSessTouch', 'afpgwSessDrop', 'afpgwSessPutReply']);

type ScriptName = keyof typeof SCRIPTS;
type ReplyItem = string | number | null | ReplyItem[];

/** The commands `defineCommand` adds at run time; ioredis cannot type them itself. */
type ScriptedRedis = Redis & { [K in ScriptName]: (base: string, ...argv: (string | Buffer)[]) => Promise<unknown> };

export class RedisSessionStore implements SessionStore {
  private readonly redis: ScriptedRedis;
  private readonly base: string;

  /**
   * `prefix` is the store's key prefix, already checked to be free of braces; `feed` gives
   * the store's pub/sub feed, made on first use (a subscriber connection).
   */
  constructor(redis: Redis, prefix: string, private readonly feed: () => RedisFeed) {
    if (!('afpgwSessPut' in redis)) {
      defineScripts(redis, scriptsWith(LUA_PRELUDE, SCRIPTS, IDEMPOTENT));
    }
    this.redis = redis as ScriptedRedis;
    this.base = `${prefix}:{sess}`;
  }

  async putSession(rec: SessionRecord, ttlMs: number): Promise<void> {
    checkSessionRecord(rec);
    checkTtl(ttlMs);
    const record = copySessionRecord(rec);
    const reply = await this.run('afpgwSessPut', record.id, record.token, record.user, JSON.stringify(record), String(ttlMs));
    if (reply[0] === 'conflict') {
      throw new MetaConflictError(`token of session ${JSON.stringify(record.id)} is held by session ${JSON.stringify(reply[1])}`);
    }
  }

  /** Published on B:release:<holder> as `<id> <to>`, `-` for "end it". */
  async requestRelease(holder: string, id: string, to: string | undefined): Promise<void> {
    if (!isSessionId(id) || /\s/.test(holder) || (to !== undefined && (to === '' || /\s/.test(to)))) throw new RangeError('bad session release request');
    await this.call(() => this.redis.publish(`${this.base}:release:${holder}`, `${id} ${to ?? '-'}`));
  }

  watchReleases(node: string, onRequest: (id: string, to: string | undefined) => void): () => void {
    return this.feed().listen(`${this.base}:release:${node}`, {
      message: (text) => {
        const [id, to] = text.split(' ');
        if (id !== undefined && isSessionId(id) && to !== undefined) onRequest(id, to === '-' ? undefined : to);
      },
      // A lost request costs the asker a wait for our lease, which it falls back to.
      gap: () => undefined,
    });
  }

  async session(id: string): Promise<SessionRecord | undefined> {
    if (!isSessionId(id)) return undefined;
    const json = await this.call(() => this.redis.hget(`${this.base}:s:${id}`, 'rec'));
    return json === null ? undefined : parseRecord(json);
  }

  async sessionByToken(token: string): Promise<SessionRecord | undefined> {
    if (!isToken(token) || token === '') return undefined;
    const reply = await this.run('afpgwSessByToken', token);
    return reply.length > 1 ? parseRecord(reply[1]) : undefined;
  }

  async sessionsOfUser(user: string): Promise<SessionRecord[]> {
    if (!isUser(user)) return [];
    const reply = await this.run('afpgwSessOfUser', user);
    return reply
      .slice(1)
      .map(parseRecord)
      .sort((a, b) => compareKeys(a.id, b.id));
  }

  async touchSession(id: string, ttlMs: number): Promise<boolean> {
    checkSessionId(id);
    checkTtl(ttlMs);
    const reply = await this.run('afpgwSessTouch', id, String(ttlMs));
    return reply[1] === 1;
  }

  async dropSession(id: string): Promise<void> {
    checkSessionId(id);
    await this.run('afpgwSessDrop', id);
  }

  async putReply(sessionId: string, window: number, entry: ReplayEntry, ttlMs: number): Promise<void> {
    checkSessionId(sessionId);
    checkWindow(window);
    checkReplayEntry(entry);
    checkTtl(ttlMs);
    await this.run('afpgwSessPutReply', sessionId, String(entry.requestId % window), encodeReplay(entry), String(ttlMs));
  }

  async replies(sessionId: string, window: number): Promise<ReplayEntry[]> {
    checkWindow(window);
    if (!isSessionId(sessionId)) return [];
    const hash = await this.call(() => this.redis.hgetallBuffer(`${this.base}:rp:${sessionId}`));
    const entries: ReplayEntry[] = [];
    for (const bytes of Object.values(hash)) {
      const entry = decodeReplay(bytes);
      if (!entry) throw new MetaUnavailableError(`Redis holds a malformed reply of session ${JSON.stringify(sessionId)}`);
      entries.push(entry);
    }
    return selectReplies(entries, window);
  }

  /** Runs a script that answers {'ok', ...} or {reason}; returns the reply for the caller to read. */
  private async run(script: ScriptName, ...argv: (string | Buffer)[]): Promise<ReplyItem[]> {
    const reply = await this.call(() => this.redis[script](this.base, ...argv));
    if (!Array.isArray(reply)) throw new MetaUnavailableError(`Redis answered ${script} with ${typeof reply} instead of an array`);
    const status: unknown = reply[0];
    if (status === 'ok' || status === 'conflict') return reply as ReplyItem[];
    throw new MetaUnavailableError(`Redis answered ${script} with ${JSON.stringify(status)}`);
  }

  /** Our own errors pass through; anything from ioredis means Redis is unreachable or broken. */
  private call<T>(op: () => Promise<T>): Promise<T> {
    return callRedis(op);
  }
}

function parseRecord(json: ReplyItem | undefined): SessionRecord {
  try {
    if (typeof json !== 'string') throw new TypeError('not a string');
    const rec = JSON.parse(json) as SessionRecord;
    checkSessionRecord(rec);
    return copySessionRecord(rec);
  } catch {
    throw new MetaUnavailableError('Redis holds a malformed session record');
  }
}
