/**
 * A volume's open forks, deny modes and byte-range locks in Redis, under the volume's hash
 * tag; with F = `<prefix>:{v:<volumeKey>}:fk`:
 *   F:open:<openId>            hash: session, node, fileId, fork, mode
 *   F:file:<fileId>:<fork>     hash: openId -> mode, the opens of one file and fork
 *   F:locks:<fileId>:<fork>    hash: '<start> <end> <openId>' -> 1, every lock on that file and
 *                              fork (at most MAX_LOCKS_PER_FORK), so a check reads one key
 *   F:ol:<openId>              set of '<start> <end>': the open's own locks (unlock, close)
 *   F:sess:<session>, F:node:<node>
 *                              sets of openIds: releaseSession and releaseNode,
 *                              opensOfSession and sessionsOfNode
 *   F:nodes                    set of the nodes whose F:node:<node> is not empty, for nodes()
 *                              without a SCAN: whatever adds an openId to F:node:<node> adds
 *                              the node, and whatever removes one drops the node once SCARD of
 *                              F:node:<node> is 0 (open, close, adopt, releaseSession/Node)
 *
 * Each operation is one Lua script that gets F as KEYS[1] and derives every other key from
 * it (the file of an open is only known inside the script); they all share F's hash tag.
 * Offsets travel as decimal strings; Lua's doubles hold every integer up to LOCK_TO_END
 * (2^53 − 1) exactly, and the stored strings are the ones JavaScript sent, never reprinted.
 * Scripts answer {'ok', ...} or {reason}, and return only strings, integers and arrays.
 */
import type { Redis } from 'ioredis';
import { checkForkOpen, checkOpenId, checkRange, compareStrings, MAX_LOCKS_PER_FORK, sortByOpenId } from './forks-records.js';
import { ForkError, type ByteRange, type ForkFailure, type ForkOpen, type ForkStore } from './forks.js';
import { defineScripts, scriptsWith } from './redis-scripts.js';
import { MetaUnavailableError } from './meta-store.js';
import { callRedis } from './redis-call.js';
import { checkString, checkVolumeKey, isId } from './namespace-records.js';

const LUA_PRELUDE = `
local base = KEYS[1]
local function openKey(id) return base .. ':open:' .. id end
local function fileKey(file, fork) return base .. ':file:' .. file .. ':' .. fork end
local function locksKey(file, fork) return base .. ':locks:' .. file .. ':' .. fork end
local function ownKey(id) return base .. ':ol:' .. id end
local function sessKey(s) return base .. ':sess:' .. s end
local function nodeKey(n) return base .. ':node:' .. n end
local nodesKey = base .. ':nodes'
-- The per-node index and F:nodes change together.
local function addToNode(id, n)
  redis.call('SADD', nodeKey(n), id)
  redis.call('SADD', nodesKey, n)
end
local function dropFromNode(id, n)
  redis.call('SREM', nodeKey(n), id)
  if redis.call('SCARD', nodeKey(n)) == 0 then redis.call('SREM', nodesKey, n) end
end
local function has(m, b) return bit.band(m, b) ~= 0 end
-- Read 0x01, Write 0x02, DenyRead 0x10, DenyWrite 0x20.
local function denyConflict(m, ex)
  return (has(m, 1) and has(ex, 16)) or (has(m, 2) and has(ex, 32)) or (has(m, 16) and has(ex, 1)) or (has(m, 32) and has(ex, 2))
end
-- Calls fn(start, end, openId) for each lock of a file and fork until it returns a value.
local function eachLock(lk, fn)
  for _, f in ipairs(redis.call('HKEYS', lk)) do
    local s, e, o = string.match(f, '^(%d+) (%d+) (.*)$')
    local r = fn(tonumber(s), tonumber(e), o)
    if r then return r end
  end
  return nil
end
local function removeOpen(id)
  local o = redis.call('HMGET', openKey(id), 'session', 'node', 'fileId', 'fork')
  if not o[1] then return 0 end
  local lk = locksKey(o[3], o[4])
  for _, r in ipairs(redis.call('SMEMBERS', ownKey(id))) do redis.call('HDEL', lk, r .. ' ' .. id) end
  redis.call('DEL', openKey(id), ownKey(id))
  redis.call('HDEL', fileKey(o[3], o[4]), id)
  redis.call('SREM', sessKey(o[1]), id)
  dropFromNode(id, o[2])
  return 1
end
`;

const SCRIPTS = {
  // ARGV: openId, session, node, fileId, fork, mode.
  afpgwFkOpen: `
local id, file, fork, mode = ARGV[1], ARGV[4], ARGV[5], tonumber(ARGV[6])
if redis.call('EXISTS', openKey(id)) == 1 then return {'exists'} end
local opens = redis.call('HGETALL', fileKey(file, fork))
for i = 1, #opens, 2 do
  if denyConflict(mode, tonumber(opens[i + 1])) then return {'deny-conflict', opens[i]} end
end
redis.call('HSET', openKey(id), 'session', ARGV[2], 'node', ARGV[3], 'fileId', file, 'fork', fork, 'mode', ARGV[6])
redis.call('HSET', fileKey(file, fork), id, ARGV[6])
redis.call('SADD', sessKey(ARGV[2]), id)
addToNode(id, ARGV[3])
return {'ok'}`,

  // ARGV: openId.
  afpgwFkClose: `
if removeOpen(ARGV[1]) == 0 then return {'not-open'} end
return {'ok'}`,

  // ARGV: fileId. Returns {'ok', openId, session, node, fork, mode, ...}.
  afpgwFkOpensOf: `
local out = {'ok'}
for _, fork in ipairs({'data', 'rsrc'}) do
  for _, id in ipairs(redis.call('HKEYS', fileKey(ARGV[1], fork))) do
    local o = redis.call('HMGET', openKey(id), 'session', 'node', 'mode')
    if o[1] then
      for _, x in ipairs({id, o[1], o[2], fork, o[3]}) do out[#out + 1] = x end
    end
  end
end
return out`,

  // ARGV: openId, start, end, the lock limit.
  afpgwFkLock: `
local id = ARGV[1]
local o = redis.call('HMGET', openKey(id), 'fileId', 'fork')
if not o[1] then return {'not-open'} end
local lk = locksKey(o[1], o[2])
local s, e = tonumber(ARGV[2]), tonumber(ARGV[3])
local other = false
local own = eachLock(lk, function(ls, le, lo)
  if ls < e and s < le then
    if lo == id then return true end
    other = true
  end
  return nil
end)
if own then return {'range-overlap'} end
if other then return {'range-locked'} end
if redis.call('HLEN', lk) >= tonumber(ARGV[4]) then return {'too-many'} end
local r = ARGV[2] .. ' ' .. ARGV[3]
redis.call('HSET', lk, r .. ' ' .. id, 1)
redis.call('SADD', ownKey(id), r)
return {'ok'}`,

  // ARGV: openId, start, end.
  afpgwFkUnlock: `
local id = ARGV[1]
local o = redis.call('HMGET', openKey(id), 'fileId', 'fork')
if not o[1] then return {'not-open'} end
local r = ARGV[2] .. ' ' .. ARGV[3]
if redis.call('SREM', ownKey(id), r) == 0 then return {'not-locked'} end
redis.call('HDEL', locksKey(o[1], o[2]), r .. ' ' .. id)
return {'ok'}`,

  // ARGV: openId, start, end. Read only; an empty range touches no byte.
  afpgwFkCheck: `
local id = ARGV[1]
local o = redis.call('HMGET', openKey(id), 'fileId', 'fork')
if not o[1] then return {'not-open'} end
local s, e = tonumber(ARGV[2]), tonumber(ARGV[3])
local hit = eachLock(locksKey(o[1], o[2]), function(ls, le, lo)
  if lo ~= id and s < e and ls < e and s < le then return true end
  return nil
end)
if hit then return {'range-locked'} end
return {'ok'}`,

  // ARGV: 'sess' or 'node', its name. Returns {'ok', released}.
  afpgwFkRelease: `
local key
if ARGV[1] == 'sess' then key = sessKey(ARGV[2]) else key = nodeKey(ARGV[2]) end
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', key)) do n = n + removeOpen(id) end
redis.call('DEL', key)
if ARGV[1] == 'node' then redis.call('SREM', nodesKey, ARGV[2]) end
return {'ok', n}`,

  // ARGV: session. Returns {'ok', openId, node, fileId, fork, mode, ...}, unsorted.
  afpgwFkOpensOfSession: `
local out = {'ok'}
for _, id in ipairs(redis.call('SMEMBERS', sessKey(ARGV[1]))) do
  local o = redis.call('HMGET', openKey(id), 'node', 'fileId', 'fork', 'mode')
  if o[1] then
    for _, x in ipairs({id, o[1], o[2], o[3], o[4]}) do out[#out + 1] = x end
  end
end
return out`,

  // ARGV: openId, node. Locks stay: they are keyed by openId, not by node.
  afpgwFkAdopt: `
local id, node = ARGV[1], ARGV[2]
local old = redis.call('HGET', openKey(id), 'node')
if not old then return {'not-open'} end
if old == node then return {'ok'} end
redis.call('HSET', openKey(id), 'node', node)
dropFromNode(id, old)
addToNode(id, node)
return {'ok'}`,

  // ARGV: node. Returns {'ok', session, ...}: each session once, unsorted.
  afpgwFkSessionsOfNode: `
local out, seen = {'ok'}, {}
for _, id in ipairs(redis.call('SMEMBERS', nodeKey(ARGV[1]))) do
  local s = redis.call('HGET', openKey(id), 'session')
  if s and not seen[s] then
    seen[s] = true
    out[#out + 1] = s
  end
end
return out`,

  // No ARGV. Returns {'ok', node, ...}, unsorted.
  afpgwFkNodes: `
local out = {'ok'}
for _, n in ipairs(redis.call('SMEMBERS', nodesKey)) do out[#out + 1] = n end
return out`,
} as const;

/** Scripts that only read (or only prune what has expired): sent twice, they do no harm. */
const READS: ReadonlySet<ScriptName> = new Set<ScriptName>(['afpgwFkOpensOf', 'afpgwFkCheck', 'afpgwFkOpensOfSession', 'afpgwFkSessionsOfNode', 'afpgwFkNodes']);

type ScriptName = keyof typeof SCRIPTS;
type ReplyItem = string | number | null | ReplyItem[];

/** The commands `defineCommand` adds at run time; ioredis cannot type them itself. */
type ScriptedRedis = Redis & { [K in ScriptName]: (base: string, ...argv: string[]) => Promise<unknown> };

const FAILURES: ReadonlySet<string> = new Set<ForkFailure>(['deny-conflict', 'not-open', 'range-overlap', 'range-locked', 'not-locked', 'too-many']);

export class RedisForkStore implements ForkStore {
  private readonly redis: ScriptedRedis;
  private readonly base: string;

  /** `prefix` is the store's key prefix, already checked to be free of braces. */
  constructor(redis: Redis, prefix: string, volumeKey: string) {
    checkVolumeKey(volumeKey);
    if (!('afpgwFkOpen' in redis)) {
      defineScripts(redis, scriptsWith(LUA_PRELUDE, SCRIPTS, READS));
    }
    this.redis = redis as ScriptedRedis;
    this.base = `${prefix}:{v:${volumeKey}}:fk`;
  }

  async open(o: ForkOpen): Promise<void> {
    checkForkOpen(o);
    await this.run('afpgwFkOpen', `open ${o.openId} of ${o.fileId} ${o.fork}`, o.openId, o.session, o.node, String(o.fileId), o.fork, String(o.mode));
  }

  async close(openId: string): Promise<void> {
    checkOpenId(openId);
    await this.run('afpgwFkClose', openId, openId);
  }

  async opensOf(fileId: number): Promise<ForkOpen[]> {
    if (!isId(fileId)) return [];
    const reply = await this.run('afpgwFkOpensOf', `opens of ${fileId}`, String(fileId));
    const out: ForkOpen[] = [];
    for (let i = 1; i + 4 < reply.length; i += 5) {
      const fork = text(reply[i + 3], 'fork');
      if (fork !== 'data' && fork !== 'rsrc') throw new MetaUnavailableError(`Redis holds an open of fork ${JSON.stringify(fork)}`);
      out.push({ openId: text(reply[i], 'openId'), session: text(reply[i + 1], 'session'), node: text(reply[i + 2], 'node'), fileId, fork, mode: integer(reply[i + 4], 'mode') });
    }
    return out;
  }

  async lock(openId: string, range: ByteRange): Promise<void> {
    checkOpenId(openId);
    checkRange(range, false);
    await this.run('afpgwFkLock', `[${range.start}, ${range.end}) of ${openId}`, openId, String(range.start), String(range.end), String(MAX_LOCKS_PER_FORK));
  }

  async unlock(openId: string, range: ByteRange): Promise<void> {
    checkOpenId(openId);
    checkRange(range, false);
    await this.run('afpgwFkUnlock', `[${range.start}, ${range.end}) of ${openId}`, openId, String(range.start), String(range.end));
  }

  async checkAccess(openId: string, range: ByteRange): Promise<void> {
    checkOpenId(openId);
    checkRange(range, true);
    await this.run('afpgwFkCheck', `[${range.start}, ${range.end}) for ${openId}`, openId, String(range.start), String(range.end));
  }

  async releaseSession(session: string): Promise<number> {
    checkString(session, 'session');
    return integer((await this.run('afpgwFkRelease', `session ${session}`, 'sess', session))[1], 'released');
  }

  async releaseNode(node: string): Promise<number> {
    checkString(node, 'node');
    return integer((await this.run('afpgwFkRelease', `node ${node}`, 'node', node))[1], 'released');
  }

  async opensOfSession(session: string): Promise<ForkOpen[]> {
    checkString(session, 'session');
    const reply = await this.run('afpgwFkOpensOfSession', `opens of session ${session}`, session);
    const out: ForkOpen[] = [];
    for (let i = 1; i + 4 < reply.length; i += 5) {
      const fileId = integer(reply[i + 2], 'fileId');
      if (!isId(fileId)) throw new MetaUnavailableError(`Redis holds an open of file ${fileId}`);
      const fork = text(reply[i + 3], 'fork');
      if (fork !== 'data' && fork !== 'rsrc') throw new MetaUnavailableError(`Redis holds an open of fork ${JSON.stringify(fork)}`);
      out.push({ openId: text(reply[i], 'openId'), session, node: text(reply[i + 1], 'node'), fileId, fork, mode: integer(reply[i + 4], 'mode') });
    }
    return sortByOpenId(out);
  }

  async adopt(openId: string, node: string): Promise<void> {
    checkOpenId(openId);
    checkString(node, 'node');
    await this.run('afpgwFkAdopt', `adopt ${openId} by ${node}`, openId, node);
  }

  async sessionsOfNode(node: string): Promise<string[]> {
    checkString(node, 'node');
    const reply = await this.run('afpgwFkSessionsOfNode', `sessions of node ${node}`, node);
    return reply.slice(1).map((v) => text(v, 'session')).sort(compareStrings);
  }

  async nodes(): Promise<string[]> {
    const reply = await this.run('afpgwFkNodes', 'nodes');
    return reply.slice(1).map((v) => text(v, 'node')).sort(compareStrings);
  }

  /** Runs a script that answers {'ok', ...} or {reason}; throws the ForkError for a reason. */
  private async run(script: ScriptName, what: string, ...argv: string[]): Promise<ReplyItem[]> {
    const reply: unknown = await callRedis(() => this.redis[script](this.base, ...argv));
    if (!Array.isArray(reply)) throw new MetaUnavailableError(`Redis answered ${script} with ${typeof reply} instead of an array`);
    const status = typeof reply[0] === 'string' ? reply[0] : '';
    if (status === 'ok') return reply as ReplyItem[];
    if (FAILURES.has(status)) throw new ForkError(status as ForkFailure, what);
    if (status === 'exists') throw new RangeError(`open ${JSON.stringify(argv[0])} already exists`);
    throw new MetaUnavailableError(`Redis answered ${script} with ${JSON.stringify(status)}`);
  }
}

function text(v: ReplyItem | undefined, what: string): string {
  if (typeof v !== 'string') throw new MetaUnavailableError(`Redis returned no ${what}`);
  return v;
}

function integer(v: ReplyItem | undefined, what: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (v === undefined || v === null || v === '' || !Number.isSafeInteger(n)) throw new MetaUnavailableError(`Redis holds a malformed ${what}`);
  return n;
}
