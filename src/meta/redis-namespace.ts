/**
 * A volume's namespace in Redis. Every key carries the volume's hash tag, so the whole
 * volume sits in one Redis Cluster slot; with B = `<prefix>:{v:<volumeKey>}`:
 *   B:meta          hash: lastId (CNID counter), nodes (how many exist), bytes (Σ fork lengths),
 *                   gen (the last block generation handed out), blockSize (once fixed)
 *   B:node:<id>     hash: the NodeRecord fields (finderInfo as 32 raw bytes, backupAt '' for
 *                   null) plus `key`, the sort key it is indexed under in its parent
 *   B:dir:<id>      hash: sort key of a child's fold key -> child id (lookups)
 *   B:ord:<id>      sorted set of the same sort keys, all score 0 (paging with ZRANGEBYLEX
 *                   after a key, or ZRANGE by index)
 *   B:xattr:<id>    hash: xattr name -> raw value
 *   B:kv, B:kvkeys  hash key -> raw value, and a sorted set of the keys for prefix listing
 *   B:blk:<id>:d, B:blk:<id>:r
 *                   hash: block index (decimal) -> '<file>:<gen>', the fork's block map
 *   B:gc            sorted set of GC entries: member gcMember() = '<file>:<d|r>:<index>:<gen>',
 *                   score the time it was queued. Equal scores order by member bytes, which
 *                   the embedded store reproduces; queuing a member again restamps it
 *
 * Each change is one Lua script, so it is atomic, and each read that needs more than one
 * key is one script too (one round trip, one consistent view). A script gets B:meta as
 * KEYS[1] and derives every other key from it: the CNID a create takes and the ancestors a
 * move walks are only known inside the script, so they cannot all be declared up front;
 * all of them share KEYS[1]'s hash tag, so Redis Cluster routes the script to the slot that
 * holds them. Scripts report failures as {reason} and success as {'ok', ...}; they return
 * only strings, integers and arrays (a Lua false would arrive as null under RESP3).
 *
 * Binary values travel as Buffer arguments and come back through the commands' *Buffer
 * variants, so Finder info, xattrs and kv values round-trip byte for byte.
 *
 * Block indices, generations and lengths are up to 2^53: scripts keep them as the decimal
 * strings JavaScript wrote and only compare them through tonumber (exact below 2^53), never
 * print a Lua number, which would come out in exponent form.
 */
import type { Redis } from 'ioredis';
import type { BlockRef, ForkCommit, ForkCommitResult, ForkWatcher, GcEntry } from './block-maps.js';
import {
  checkBlockSize,
  checkCommit,
  checkFork,
  checkGcEntries,
  checkGcQuery,
  checkGenerationCount,
  checkIndex,
  forkCode,
  gcMember,
  parseGcMember,
} from './block-map-records.js';
import type { RedisFeed } from './redis-feed.js';
import { defineScripts, originOf, scriptsWith } from './redis-scripts.js';
import type { ForkKind } from './forks.js';
import { MetaUnavailableError } from './meta-store.js';
import {
  NamespaceError,
  type ChildrenPage,
  type NamespaceFailure,
  type NamespaceOptions,
  type NamespaceStore,
  type NodeInit,
  type NodeKind,
  type NodePatch,
  type NodeRecord,
  type XattrMode,
} from './namespace.js';
import {
  COUNTER_START,
  EXCHANGED_FIELDS,
  checkKind,
  checkNow,
  checkPage,
  checkPatch,
  checkString,
  checkVolumeKey,
  checkXattrName,
  fail,
  foldName,
  isId,
  isValidName,
  newRecord,
  newRoot,
  patchEntries,
  setsForkLength,
  sortKey,
  unsortKey,
} from './namespace-records.js';
import { compareKeys } from './records.js';
import { callRedis } from './redis-call.js';

/** The stored fields in the order scripts return them, after the id. */
export const FIELDS = ['parent', 'name', 'kind', 'attributes', 'createdAt', 'modifiedAt', 'backupAt', 'finderInfo', 'uid', 'gid', 'mode', 'dataLength', 'rsrcLength', 'childCount'] as const;
/** One record in a script's reply: the id, then FIELDS. */
const RECORD_WIDTH = FIELDS.length + 1;

/** Helpers every namespace script starts with; verify-redis.ts's scripts share them. */
export const LUA_PRELUDE = `
local base = string.sub(KEYS[1], 1, -6)
local function nodeKey(id) return base .. ':node:' .. id end
local function dirKey(id) return base .. ':dir:' .. id end
local function ordKey(id) return base .. ':ord:' .. id end
local function xattrKey(id) return base .. ':xattr:' .. id end
local FIELDS = {${FIELDS.map((f) => `'${f}'`).join(', ')}}
local function record(id)
  local v = redis.call('HMGET', nodeKey(id), unpack(FIELDS))
  if not v[1] then return nil end
  table.insert(v, 1, id)
  return v
end
-- Fork lengths move the volume's byte count as decimal strings: HINCRBY does the sums in
-- 64-bit integers, where Lua's doubles would print large values in exponent form.
local function addBytes(v) if v and v ~= '0' then redis.call('HINCRBY', KEYS[1], 'bytes', v) end end
local function subBytes(v) if v and v ~= '0' then redis.call('HINCRBY', KEYS[1], 'bytes', '-' .. v) end end
local function append(out, list)
  if not list then error('namespace is inconsistent: a referenced node is missing') end
  for _, x in ipairs(list) do out[#out + 1] = x end
  return out
end
local function blkKey(id, f) return base .. ':blk:' .. id .. ':' .. f end
-- Tells the other nodes that fork f ('d' or 'r') of file id has a new block map or length,
-- so they reload what they hold of it (see watchForks). Only guarded scripts (redis-scripts.ts)
-- call it: they know afpgwOrigin, the connection that made the change.
local function changed(id, f) redis.call('PUBLISH', base .. ':changed', afpgwOrigin .. ' ' .. id .. ' ' .. f) end
local gcKey = base .. ':gc'
-- Adds the GC member for the object a '<file>:<gen>' ref names at index idx of fork f to
-- gc, a list of members that gcFlush queues in one go.
local function gcQueue(gc, ref, f, idx)
  local file, gen = string.match(ref, '^(%d+):(%d+)$')
  if not file then error('namespace is inconsistent: malformed block ref ' .. ref) end
  gc[#gc + 1] = file .. ':' .. f .. ':' .. idx .. ':' .. gen
end
-- unpack has a small stack: add members in slices.
local function gcFlush(gc, now)
  for i = 1, #gc, 500 do
    local args = {}
    for j = i, math.min(i + 499, #gc) do
      args[#args + 1] = now
      args[#args + 1] = gc[j]
    end
    redis.call('ZADD', gcKey, unpack(args))
  end
end
-- Queues every block of fork f at or past index 'from' (a number) and removes it.
local function dropBlocks(gc, id, f, from)
  local key = blkKey(id, f)
  if redis.call('EXISTS', key) == 0 then return end
  local all = redis.call('HGETALL', key)
  local doomed = {}
  for i = 1, #all, 2 do
    if tonumber(all[i]) >= from then
      gcQueue(gc, all[i + 1], f, all[i])
      doomed[#doomed + 1] = all[i]
    end
  end
  for i = 1, #doomed, 500 do redis.call('HDEL', key, unpack(doomed, i, math.min(i + 499, #doomed))) end
end
-- The first index a fork of 'len' bytes (a decimal string) does not cover; nil while no block
-- size is fixed, as no block can exist then. Exact: see firstDropped in block-map-records.ts.
local function firstDropped(len)
  local bs = redis.call('HGET', KEYS[1], 'blockSize')
  if not bs then return nil end
  return math.ceil(tonumber(len) / tonumber(bs))
end
local function swapKeys(x, y, tmp)
  local ex, ey = redis.call('EXISTS', x), redis.call('EXISTS', y)
  if ex == 1 and ey == 1 then
    redis.call('RENAME', x, tmp)
    redis.call('RENAME', y, x)
    redis.call('RENAME', tmp, y)
  elseif ex == 1 then
    redis.call('RENAME', x, y)
  elseif ey == 1 then
    redis.call('RENAME', y, x)
  end
end
`;

const SCRIPTS = {
  // ARGV: counter start, then the root's field/value pairs.
  afpgwNsInit: `
local k = nodeKey(2)
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, unpack(ARGV, 2))
  redis.call('HINCRBY', KEYS[1], 'nodes', 1)
end
redis.call('HSETNX', KEYS[1], 'lastId', ARGV[1])
return append({'ok'}, record(2))`,

  // ARGV: parent, sort key, now, then the new node's field/value pairs. Returns {'ok', id}.
  afpgwNsCreate: `
local parent, key = ARGV[1], ARGV[2]
local pk = nodeKey(parent)
local kind = redis.call('HGET', pk, 'kind')
if not kind then return {'not-found'} end
if kind ~= 'dir' then return {'not-dir'} end
if redis.call('HEXISTS', dirKey(parent), key) == 1 then return {'exists'} end
local id = redis.call('HINCRBY', KEYS[1], 'lastId', 1)
redis.call('HSET', nodeKey(id), unpack(ARGV, 4))
redis.call('HSET', dirKey(parent), key, id)
redis.call('ZADD', ordKey(parent), 0, key)
redis.call('HINCRBY', pk, 'childCount', 1)
redis.call('HSET', pk, 'modifiedAt', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'nodes', 1)
return {'ok', id}`,

  // ARGV: id, now. Returns the node as it was. A file's blocks go onto the GC queue.
  afpgwNsRemove: `
local id = ARGV[1]
if id == '2' then return {'is-root'} end
local k = nodeKey(id)
local cur = redis.call('HMGET', k, 'parent', 'key', 'kind', 'childCount', 'dataLength', 'rsrcLength')
local parent, key = cur[1], cur[2]
if not parent then return {'not-found'} end
if cur[3] == 'dir' and tonumber(cur[4]) > 0 then return {'not-empty'} end
local out = append({'ok'}, record(id))
redis.call('HDEL', dirKey(parent), key)
redis.call('ZREM', ordKey(parent), key)
redis.call('HINCRBY', nodeKey(parent), 'childCount', -1)
redis.call('HSET', nodeKey(parent), 'modifiedAt', ARGV[2])
if cur[3] == 'file' then
  local gc = {}
  dropBlocks(gc, id, 'd', 0)
  dropBlocks(gc, id, 'r', 0)
  gcFlush(gc, ARGV[2])
end
redis.call('DEL', k, xattrKey(id), dirKey(id), ordKey(id))
redis.call('HINCRBY', KEYS[1], 'nodes', -1)
subBytes(cur[5])
subBytes(cur[6])
return out`,

  // ARGV: id, new parent, new sort key, new name, now.
  afpgwNsMove: `
local id, np, nkey = ARGV[1], ARGV[2], ARGV[3]
if id == '2' then return {'is-root'} end
local k = nodeKey(id)
local cur = redis.call('HMGET', k, 'parent', 'key', 'kind')
local op, okey = cur[1], cur[2]
if not op then return {'not-found'} end
local npk = nodeKey(np)
local npkind = redis.call('HGET', npk, 'kind')
if not npkind then return {'not-found'} end
if npkind ~= 'dir' then return {'not-dir'} end
if cur[3] == 'dir' then
  -- The bound turns a corrupt parent loop into an error instead of a hung server.
  local steps = tonumber(redis.call('HGET', KEYS[1], 'nodes') or '0') + 1
  local p = np
  while p ~= '1' do
    if p == id then return {'cycle'} end
    steps = steps - 1
    if steps < 0 then return redis.error_reply('namespace is inconsistent: the ancestors of ' .. np .. ' loop') end
    p = redis.call('HGET', nodeKey(p), 'parent')
    if not p then return redis.error_reply('namespace is inconsistent: an ancestor of ' .. np .. ' is missing') end
  end
end
local holder = redis.call('HGET', dirKey(np), nkey)
if holder and holder ~= id then return {'exists'} end
if op ~= np or okey ~= nkey then
  redis.call('HDEL', dirKey(op), okey)
  redis.call('ZREM', ordKey(op), okey)
  redis.call('HSET', dirKey(np), nkey, id)
  redis.call('ZADD', ordKey(np), 0, nkey)
end
redis.call('HSET', k, 'parent', np, 'name', ARGV[4], 'key', nkey)
if op ~= np then
  redis.call('HINCRBY', nodeKey(op), 'childCount', -1)
  redis.call('HSET', nodeKey(op), 'modifiedAt', ARGV[5])
  redis.call('HINCRBY', npk, 'childCount', 1)
end
redis.call('HSET', npk, 'modifiedAt', ARGV[5])
return append({'ok'}, record(id))`,

  // ARGV: id, '1' when the patch gives a fork a length, now (the GC stamp for blocks a
  // shorter length drops), then field/value pairs.
  afpgwNsUpdate: `
local id = ARGV[1]
local k = nodeKey(id)
local kind = redis.call('HGET', k, 'kind')
if not kind then return {'not-found'} end
if kind == 'dir' and ARGV[2] == '1' then return {'is-dir'} end
if #ARGV > 3 then
  local old = redis.call('HMGET', k, 'dataLength', 'rsrcLength')
  redis.call('HSET', k, unpack(ARGV, 4))
  local new = redis.call('HMGET', k, 'dataLength', 'rsrcLength')
  for i = 1, 2 do
    if old[i] ~= new[i] then
      subBytes(old[i])
      addBytes(new[i])
    end
  end
  if kind == 'file' then
    local gc = {}
    for i = 4, #ARGV, 2 do
      local f = (ARGV[i] == 'dataLength' and 'd') or (ARGV[i] == 'rsrcLength' and 'r') or nil
      local from = f and firstDropped(ARGV[i + 1])
      if from then dropBlocks(gc, id, f, from) end
      if f then changed(id, f) end
    end
    gcFlush(gc, ARGV[3])
  end
end
return append({'ok'}, record(id))`,

  // ARGV: a, b, then the names of the fields to swap. Xattr hashes and block maps swap by
  // RENAME; refs keep their file, which names the object, not its owner.
  afpgwNsExchange: `
local a, b = ARGV[1], ARGV[2]
local ka, kb = nodeKey(a), nodeKey(b)
local kinda = redis.call('HGET', ka, 'kind')
local kindb = redis.call('HGET', kb, 'kind')
if not kinda or not kindb then return {'not-found'} end
if kinda == 'dir' or kindb == 'dir' then return {'is-dir'} end
if a ~= b then
  local swap = {unpack(ARGV, 3)}
  local va = redis.call('HMGET', ka, unpack(swap))
  local vb = redis.call('HMGET', kb, unpack(swap))
  local pa, pb = {}, {}
  for i, f in ipairs(swap) do
    pa[#pa + 1] = f
    pa[#pa + 1] = vb[i]
    pb[#pb + 1] = f
    pb[#pb + 1] = va[i]
  end
  redis.call('HSET', ka, unpack(pa))
  redis.call('HSET', kb, unpack(pb))
  swapKeys(xattrKey(a), xattrKey(b), base .. ':xattr:swap')
  swapKeys(blkKey(a, 'd'), blkKey(b, 'd'), base .. ':blk:swap')
  swapKeys(blkKey(a, 'r'), blkKey(b, 'r'), base .. ':blk:swap')
  for _, id in ipairs({a, b}) do
    changed(id, 'd')
    changed(id, 'r')
  end
end
return append(append({'ok'}, record(a)), record(b))`,

  // ARGV: parent, sort key. Returns the record, or nothing.
  afpgwNsLookup: `
local id = redis.call('HGET', dirKey(ARGV[1]), ARGV[2])
if not id then return {} end
return record(id) or {}`,

  // ARGV: parent, '1' to page after ARGV[3] (a sort key) or '0' to skip ARGV[4] entries, limit.
  // Returns {'ok', sortKey, record..., sortKey, record..., ...}.
  afpgwNsChildren: `
local kind = redis.call('HGET', nodeKey(ARGV[1]), 'kind')
if not kind then return {'not-found'} end
if kind ~= 'dir' then return {'not-dir'} end
local limit = tonumber(ARGV[5])
local out = {'ok'}
if limit == 0 then return out end
local members
if ARGV[2] == '1' then
  members = redis.call('ZRANGEBYLEX', ordKey(ARGV[1]), '(' .. ARGV[3], '+', 'LIMIT', 0, limit)
else
  local offset = tonumber(ARGV[4])
  members = redis.call('ZRANGE', ordKey(ARGV[1]), offset, offset + limit - 1)
end
local dir = dirKey(ARGV[1])
for _, m in ipairs(members) do
  out[#out + 1] = m
  append(out, record(redis.call('HGET', dir, m)))
end
return out`,

  // ARGV: id, name, value, mode.
  afpgwNsSetXattr: `
if redis.call('EXISTS', nodeKey(ARGV[1])) == 0 then return {'not-found'} end
local x = xattrKey(ARGV[1])
if ARGV[4] == 'create' then
  if redis.call('HSETNX', x, ARGV[2], ARGV[3]) == 0 then return {'exists'} end
  return {'ok'}
end
if ARGV[4] == 'replace' and redis.call('HEXISTS', x, ARGV[2]) == 0 then return {'no-attr'} end
redis.call('HSET', x, ARGV[2], ARGV[3])
return {'ok'}`,

  // ARGV: id, name.
  afpgwNsRemoveXattr: `
if redis.call('EXISTS', nodeKey(ARGV[1])) == 0 then return {'not-found'} end
if redis.call('HDEL', xattrKey(ARGV[1]), ARGV[2]) == 0 then return {'no-attr'} end
return {'ok'}`,

  // ARGV: id, name. Returns {'ok'} or {'ok', value}.
  afpgwNsGetXattr: `
if redis.call('EXISTS', nodeKey(ARGV[1])) == 0 then return {'not-found'} end
local v = redis.call('HGET', xattrKey(ARGV[1]), ARGV[2])
if not v then return {'ok'} end
return {'ok', v}`,

  // ARGV: id. Returns {'ok', name...} in no particular order.
  afpgwNsListXattrs: `
if redis.call('EXISTS', nodeKey(ARGV[1])) == 0 then return {'not-found'} end
return append({'ok'}, redis.call('HKEYS', xattrKey(ARGV[1])))`,

  // ARGV: key, value.
  afpgwNsKvSet: `
redis.call('HSET', base .. ':kv', ARGV[1], ARGV[2])
redis.call('ZADD', base .. ':kvkeys', 0, ARGV[1])
return 1`,

  // ARGV: key. Returns 1 when it existed.
  afpgwNsKvDelete: `
redis.call('ZREM', base .. ':kvkeys', ARGV[1])
return redis.call('HDEL', base .. ':kv', ARGV[1])`,

  // ARGV: prefix. Returns {key, value, ...} in UTF-8 byte order. No UTF-8 sequence holds
  // byte 255, so (prefix..255 is above every key that starts with the prefix.
  afpgwNsKvList: `
local names
if ARGV[1] == '' then
  names = redis.call('ZRANGEBYLEX', base .. ':kvkeys', '-', '+')
else
  names = redis.call('ZRANGEBYLEX', base .. ':kvkeys', '[' .. ARGV[1], '(' .. ARGV[1] .. '\\255')
end
local out = {}
for _, n in ipairs(names) do
  out[#out + 1] = n
  out[#out + 1] = redis.call('HGET', base .. ':kv', n) or ''
end
return out`,

  // ARGV: proposed size. Returns the size in force.
  afpgwNsFixBlockSize: `
redis.call('HSETNX', KEYS[1], 'blockSize', ARGV[1])
return redis.call('HGET', KEYS[1], 'blockSize')`,

  // ARGV: id, fork code. Returns {'ok', index, ref, index, ref, ...} in no particular order.
  afpgwNsBlockMap: `
local kind = redis.call('HGET', nodeKey(ARGV[1]), 'kind')
if not kind then return {'not-found'} end
if kind == 'dir' then return {'is-dir'} end
return append({'ok'}, redis.call('HGETALL', blkKey(ARGV[1], ARGV[2])))`,

  // ARGV: id, fork code, index. Returns {'ok'} or {'ok', ref}.
  afpgwNsBlockRef: `
local kind = redis.call('HGET', nodeKey(ARGV[1]), 'kind')
if not kind then return {'not-found'} end
if kind == 'dir' then return {'is-dir'} end
local ref = redis.call('HGET', blkKey(ARGV[1], ARGV[2]), ARGV[3])
if not ref then return {'ok'} end
return {'ok', ref}`,

  // ARGV: id, fork code, now, length ('' to keep), modifiedAt ('' to keep), then
  // index/expect/next triples with refs as '<file>:<gen>' and '' for absent. Returns
  // {'conflict', index...} having changed nothing, or {'ok', record...}.
  afpgwNsCommitFork: `
local id, f, now, len, mtime = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local k = nodeKey(id)
local kind = redis.call('HGET', k, 'kind')
if not kind then return {'not-found'} end
if kind == 'dir' then return {'is-dir'} end
local map = blkKey(id, f)
local current, conflicts = {}, {'conflict'}
for i = 6, #ARGV, 3 do
  local cur = redis.call('HGET', map, ARGV[i]) or ''
  current[i] = cur
  if cur ~= ARGV[i + 1] then conflicts[#conflicts + 1] = ARGV[i] end
end
if #conflicts > 1 then return conflicts end
local gc = {}
for i = 6, #ARGV, 3 do
  local idx, cur, nxt = ARGV[i], current[i], ARGV[i + 2]
  if nxt ~= cur then
    if cur ~= '' then gcQueue(gc, cur, f, idx) end
    if nxt == '' then redis.call('HDEL', map, idx) else redis.call('HSET', map, idx, nxt) end
  end
end
if len ~= '' then
  -- After the changes, so a next past the new end goes straight onto the queue.
  local from = firstDropped(len)
  if from then dropBlocks(gc, id, f, from) end
  local field = f == 'd' and 'dataLength' or 'rsrcLength'
  local old = redis.call('HGET', k, field)
  if old ~= len then
    redis.call('HSET', k, field, len)
    subBytes(old)
    addBytes(len)
  end
end
if mtime ~= '' then redis.call('HSET', k, 'modifiedAt', mtime) end
gcFlush(gc, now)
if #ARGV >= 6 or len ~= '' then changed(id, f) end
return append({'ok'}, record(id))`,

  // ARGV: before, limit. Returns {member, score, ...}, oldest first, ties by member bytes.
  afpgwNsGcDue: `
return redis.call('ZRANGEBYSCORE', gcKey, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])`,
} as const;

/** Scripts that only read (or only prune what has expired): sent twice, they do no harm. */
const READS: ReadonlySet<ScriptName> = new Set<ScriptName>(['afpgwNsLookup', 'afpgwNsChildren', 'afpgwNsGetXattr', 'afpgwNsListXattrs', 'afpgwNsKvList', 'afpgwNsBlockMap', 'afpgwNsBlockRef', 'afpgwNsGcDue']);

type ScriptName = keyof typeof SCRIPTS;
export type ReplyItem = Buffer | number | null | ReplyItem[];
export type Arg = string | Buffer;

/** The *Buffer variants `defineCommand` adds at run time; ioredis cannot type them itself. */
type ScriptedRedis = Redis & { [K in ScriptName as `${K}Buffer`]: (meta: string, ...argv: Arg[]) => Promise<unknown> };

const GC_SLICE = 1000;

const FAILURES: ReadonlySet<string> = new Set<NamespaceFailure>(['not-found', 'exists', 'not-dir', 'is-dir', 'not-empty', 'cycle', 'is-root', 'no-attr']);

export class RedisNamespace implements NamespaceStore {
  private readonly redis: ScriptedRedis;
  private readonly base: string;
  private readonly meta: string;
  private readonly fold: (name: string) => string;

  /** `prefix` is the store's key prefix, already checked to be free of braces. */
  /** `feed` gives the store's pub/sub feed, made on first use (a subscriber connection). */
  constructor(redis: Redis, prefix: string, volumeKey: string, opts: NamespaceOptions, private readonly feed: () => RedisFeed) {
    checkVolumeKey(volumeKey);
    // Defining a command again only replaces it, but there is no need to on every volume.
    if (!('afpgwNsInitBuffer' in redis)) {
      defineScripts(redis, scriptsWith(LUA_PRELUDE, SCRIPTS, READS));
    }
    this.redis = redis as ScriptedRedis;
    this.base = volumeBase(prefix, volumeKey);
    this.meta = `${this.base}:meta`;
    this.fold = opts.fold;
  }

  /**
   * Guarded scripts publish `<origin> <file> <d|r>` on B:changed in the same step as a fork's
   * new block map or length (see changed() in the prelude); this connection's own are skipped.
   */
  watchForks(w: ForkWatcher): () => void {
    const own = originOf(this.redis);
    return this.feed().listen(`${this.base}:changed`, {
      message: (text) => {
        const [origin, file, f] = text.split(' ');
        const id = Number(file);
        const fork = f === 'd' ? 'data' : f === 'r' ? 'rsrc' : undefined;
        if (origin !== own && isId(id) && fork !== undefined) w.changed(id, fork);
      },
      gap: () => w.gap(),
    });
  }

  async init(rootName: string, init: NodeInit): Promise<NodeRecord> {
    const root = newRoot(rootName, init, Date.now());
    const reply = await this.run('afpgwNsInit', 'init', String(COUNTER_START), ...encode({ ...root, key: '' }));
    return parseRecord(reply, 1);
  }

  async get(id: number): Promise<NodeRecord | undefined> {
    if (!isId(id)) return undefined;
    const reply = await this.call(() => this.redis.hmgetBuffer(this.nodeKey(id), ...FIELDS));
    return reply[0] === null ? undefined : parseRecord([id, ...reply], 0);
  }

  async lookup(parent: number, name: string): Promise<NodeRecord | undefined> {
    if (!isId(parent) || !isValidName(name)) return undefined;
    const key = sortKey(foldName(this.fold, name));
    const reply = asArray(await this.call(() => this.redis.afpgwNsLookupBuffer(this.meta, String(parent), key)));
    return reply.length === 0 ? undefined : parseRecord(reply, 0);
  }

  async create(parent: number, name: string, kind: NodeKind, init: NodeInit, now: number): Promise<NodeRecord> {
    checkKind(kind);
    const key = sortKey(foldName(this.fold, name));
    const draft = newRecord(0, parent, name, kind, init, now);
    if (!isId(parent)) throw fail('not-found', `no directory ${parent}`);
    const reply = await this.run('afpgwNsCreate', `create ${JSON.stringify(name)} in ${parent}`, String(parent), key, String(now), ...encode({ ...draft, key }));
    return { ...draft, id: parseInteger(reply[1], 'id') };
  }

  async remove(id: number, now: number): Promise<NodeRecord> {
    checkNow(now);
    if (!isId(id)) throw fail('not-found', `no node ${id}`);
    return parseRecord(await this.run('afpgwNsRemove', `remove ${id}`, String(id), String(now)), 1);
  }

  async move(id: number, newParent: number, newName: string, now: number): Promise<NodeRecord> {
    checkNow(now);
    const key = sortKey(foldName(this.fold, newName));
    if (!isId(id)) throw fail('not-found', `no node ${id}`);
    // A bad new parent becomes CNID 0, which never exists, so the script still reports
    // is-root and a missing node first, in the same order as the embedded store.
    const target = isId(newParent) ? String(newParent) : '0';
    return parseRecord(await this.run('afpgwNsMove', `move ${id} to ${JSON.stringify(newName)} in ${newParent}`, String(id), target, key, newName, String(now)), 1);
  }

  async update(id: number, patch: NodePatch): Promise<NodeRecord> {
    checkPatch(patch);
    if (!isId(id)) throw fail('not-found', `no node ${id}`);
    const pairs = encode(Object.fromEntries(patchEntries(patch)));
    // The interface takes no time; blocks a shorter length drops are queued as of now.
    const now = String(Date.now());
    return parseRecord(await this.run('afpgwNsUpdate', `update ${id}`, String(id), setsForkLength(patch) ? '1' : '0', now, ...pairs), 1);
  }

  async exchange(a: number, b: number): Promise<[NodeRecord, NodeRecord]> {
    if (!isId(a) || !isId(b)) throw fail('not-found', `no node ${isId(a) ? b : a}`);
    const reply = await this.run('afpgwNsExchange', `exchange ${a} and ${b}`, String(a), String(b), ...EXCHANGED_FIELDS);
    return [parseRecord(reply, 1), parseRecord(reply, 1 + RECORD_WIDTH)];
  }

  async children(parent: number, opts: { after?: string; offset?: number; limit: number }): Promise<ChildrenPage> {
    checkPage(opts);
    if (!isId(parent)) throw fail('not-found', `no directory ${parent}`);
    const after = opts.after !== undefined;
    const reply = await this.run('afpgwNsChildren', `list ${parent}`, String(parent), after ? '1' : '0', after ? sortKey(opts.after!) : '', String(opts.offset ?? 0), String(opts.limit));
    const entries: NodeRecord[] = [];
    let last: string | undefined;
    for (let i = 1; i < reply.length; i += 1 + RECORD_WIDTH) {
      last = text(reply[i], 'sort key');
      entries.push(parseRecord(reply, i + 1));
    }
    return last === undefined ? { entries } : { entries, last: unsortKey(last) };
  }

  async getXattr(id: number, name: string): Promise<Buffer | undefined> {
    checkString(name, 'xattr name');
    if (!isId(id)) throw fail('not-found', `no node ${id}`);
    const reply = await this.run('afpgwNsGetXattr', `xattr ${JSON.stringify(name)} of ${id}`, String(id), name);
    return reply.length > 1 ? bytes(reply[1], 'xattr') : undefined;
  }

  async setXattr(id: number, name: string, value: Buffer, mode: XattrMode): Promise<void> {
    checkXattrName(name);
    if (!Buffer.isBuffer(value)) throw new RangeError('xattr value must be a Buffer');
    if (mode !== 'create' && mode !== 'replace' && mode !== 'any') throw new RangeError(`bad xattr mode ${String(mode)}`);
    if (!isId(id)) throw fail('not-found', `no node ${id}`);
    await this.run('afpgwNsSetXattr', `xattr ${JSON.stringify(name)} of ${id}`, String(id), name, value, mode);
  }

  async removeXattr(id: number, name: string): Promise<void> {
    checkString(name, 'xattr name');
    if (!isId(id)) throw fail('not-found', `no node ${id}`);
    await this.run('afpgwNsRemoveXattr', `xattr ${JSON.stringify(name)} of ${id}`, String(id), name);
  }

  async listXattrs(id: number): Promise<string[]> {
    if (!isId(id)) throw fail('not-found', `no node ${id}`);
    const reply = await this.run('afpgwNsListXattrs', `xattrs of ${id}`, String(id));
    return reply.slice(1).map((n) => text(n, 'xattr name')).sort(compareKeys);
  }

  async kvGet(key: string): Promise<Buffer | undefined> {
    checkString(key, 'kv key');
    const value = await this.call(() => this.redis.hgetBuffer(`${this.base}:kv`, key));
    return value ?? undefined;
  }

  async kvSet(key: string, value: Buffer): Promise<void> {
    checkString(key, 'kv key');
    if (!Buffer.isBuffer(value)) throw new RangeError('kv value must be a Buffer');
    await this.call(() => this.redis.afpgwNsKvSetBuffer(this.meta, key, value));
  }

  async kvDelete(key: string): Promise<boolean> {
    checkString(key, 'kv key');
    const n = await this.call(() => this.redis.afpgwNsKvDeleteBuffer(this.meta, key));
    return n === 1;
  }

  async kvList(prefix: string): Promise<[string, Buffer][]> {
    checkString(prefix, 'kv prefix');
    const reply = asArray(await this.call(() => this.redis.afpgwNsKvListBuffer(this.meta, prefix)));
    const out: [string, Buffer][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([text(reply[i], 'kv key'), bytes(reply[i + 1], 'kv value')]);
    // Redis orders by UTF-8 bytes; the interface promises code-unit order.
    return out.sort((x, y) => compareKeys(x[0], y[0]));
  }

  async stats(): Promise<{ nodes: number; lastId: number; bytes: number }> {
    const [lastId, nodes, bytes] = await this.call(() => this.redis.hmget(this.meta, 'lastId', 'nodes', 'bytes'));
    return {
      nodes: nodes == null ? 0 : parseInteger(nodes, 'node count'),
      lastId: lastId == null ? COUNTER_START : parseInteger(lastId, 'lastId'),
      bytes: bytes == null ? 0 : parseInteger(bytes, 'byte count'),
    };
  }

  async fixBlockSize(proposed: number): Promise<number> {
    checkBlockSize(proposed);
    const reply = await this.call(() => this.redis.afpgwNsFixBlockSizeBuffer(this.meta, String(proposed)));
    return parseInteger(reply as ReplyItem, 'block size');
  }

  async reserveGenerations(count: number): Promise<number> {
    checkGenerationCount(count);
    // One command, so atomic without a script.
    const last = await this.call(() => this.redis.hincrby(this.meta, 'gen', count));
    if (!Number.isSafeInteger(last)) throw new MetaUnavailableError('the volume has run out of block generations');
    return last - count + 1;
  }

  async blockMap(fileId: number, fork: ForkKind): Promise<Map<number, BlockRef>> {
    checkFork(fork);
    if (!isId(fileId)) throw fail('not-found', `no file ${fileId}`);
    const reply = await this.run('afpgwNsBlockMap', `block map of ${fileId}`, String(fileId), forkCode(fork));
    const entries: [number, BlockRef][] = [];
    for (let i = 1; i + 1 < reply.length; i += 2) entries.push([parseInteger(reply[i], 'block index'), parseRef(reply[i + 1])]);
    return new Map(entries.sort((x, y) => x[0] - y[0]));
  }

  async blockRef(fileId: number, fork: ForkKind, index: number): Promise<BlockRef | null> {
    checkFork(fork);
    checkIndex(index);
    if (!isId(fileId)) throw fail('not-found', `no file ${fileId}`);
    const reply = await this.run('afpgwNsBlockRef', `block ${index} of ${fileId}`, String(fileId), forkCode(fork), String(index));
    return reply.length > 1 ? parseRef(reply[1]) : null;
  }

  async commitFork(fileId: number, fork: ForkKind, commit: ForkCommit): Promise<ForkCommitResult> {
    checkCommit(fork, commit);
    if (!isId(fileId)) throw fail('not-found', `no file ${fileId}`);
    const argv: string[] = [String(fileId), forkCode(fork), String(commit.now), opt(commit.length), opt(commit.modifiedAt)];
    for (const c of commit.changes) argv.push(String(c.index), encodeRef(c.expect), encodeRef(c.next));
    const what = `commit to ${fileId}`;
    const reply = asArray(await this.call(() => this.redis.afpgwNsCommitForkBuffer(this.meta, ...argv)));
    const status = reply.length > 0 ? text(reply[0], 'status') : '';
    if (status === 'conflict') return { ok: false, conflicts: reply.slice(1).map((i) => parseInteger(i, 'block index')) };
    if (status === 'ok') return { ok: true, node: parseRecord(reply, 1) };
    if (FAILURES.has(status)) throw new NamespaceError(status as NamespaceFailure, what);
    throw new MetaUnavailableError(`Redis answered afpgwNsCommitFork with ${JSON.stringify(status)}`);
  }

  async gcDue(before: number, limit: number): Promise<GcEntry[]> {
    checkGcQuery(before, limit);
    if (limit === 0) return [];
    const reply = asArray(await this.call(() => this.redis.afpgwNsGcDueBuffer(this.meta, String(before), String(limit))));
    const out: GcEntry[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      // Redis prints scores as doubles, maybe in exponent form; they hold safe integers exactly.
      const entry = parseGcMember(text(reply[i], 'GC member'), Number(text(reply[i + 1], 'GC time')));
      if (!entry) throw new MetaUnavailableError('Redis holds a malformed GC entry');
      out.push(entry);
    }
    return out;
  }

  async gcDone(entries: readonly GcEntry[]): Promise<void> {
    checkGcEntries(entries);
    const members = entries.map(gcMember);
    // Slices keep the argument list of one call small; ZREM is idempotent, so no script is needed.
    for (let i = 0; i < members.length; i += GC_SLICE) await this.call(() => this.redis.zrem(`${this.base}:gc`, ...members.slice(i, i + GC_SLICE)));
  }

  async gcPending(): Promise<number> {
    return this.call(() => this.redis.zcard(`${this.base}:gc`));
  }

  private nodeKey(id: number): string {
    return `${this.base}:node:${id}`;
  }

  /** Runs a script that answers {'ok', ...} or {reason}; throws the NamespaceError for a reason. */
  private async run(script: ScriptName, what: string, ...argv: Arg[]): Promise<ReplyItem[]> {
    const reply = asArray(await this.call(() => this.redis[`${script}Buffer`](this.meta, ...argv)));
    const status = reply.length > 0 ? text(reply[0], 'status') : '';
    if (status === 'ok') return reply;
    if (FAILURES.has(status)) throw new NamespaceError(status as NamespaceFailure, what);
    throw new MetaUnavailableError(`Redis answered ${script} with ${JSON.stringify(status)}`);
  }

  /** Our own errors pass through; anything from ioredis means Redis is unreachable or broken. */
  private call<T>(op: () => Promise<T>): Promise<T> {
    return callRedis(op, (err) => err instanceof NamespaceError);
  }
}

/** B in the layout above: the start of every key of the volume, hash tag included. */
export function volumeBase(prefix: string, volumeKey: string): string {
  return `${prefix}:{v:${volumeKey}}`;
}

/** The B:node:<id> hash of a node indexed under sort key `key` in its parent ('' for the root). */
export function encodeNode(record: NodeRecord, key: string): Arg[] {
  return encode({ ...record, key });
}

/**
 * Field/value pairs for HSET: numbers as decimal strings, null as '', Buffers as they are.
 * The id is the key's name, not a field.
 */
function encode(fields: Record<string, unknown>): Arg[] {
  const out: Arg[] = [];
  for (const [field, v] of Object.entries(fields)) {
    if (field !== 'id') out.push(field, Buffer.isBuffer(v) ? v : v === null ? '' : String(v));
  }
  return out;
}

function opt(v: number | undefined): string {
  return v === undefined ? '' : String(v);
}

export function encodeRef(r: BlockRef | null): string {
  return r === null ? '' : `${r.file}:${r.gen}`;
}

export function parseRef(v: ReplyItem | undefined): BlockRef {
  const m = /^(\d+):(\d+)$/.exec(text(v, 'block ref'));
  const [file, gen] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!isId(file) || !isId(gen)) throw new MetaUnavailableError('Redis holds a malformed block ref');
  return { file, gen };
}

function asArray(reply: unknown): ReplyItem[] {
  if (!Array.isArray(reply)) throw new MetaUnavailableError(`Redis answered a script with ${typeof reply} instead of an array`);
  return reply as ReplyItem[];
}

export function parseRecord(r: ReplyItem[], at: number): NodeRecord {
  if (r.length < at + RECORD_WIDTH) throw new MetaUnavailableError('Redis returned a short node record');
  const f = (name: (typeof FIELDS)[number]) => r[at + 1 + FIELDS.indexOf(name)];
  const n = (name: (typeof FIELDS)[number]) => parseInteger(f(name), name);
  const kind = text(f('kind'), 'kind');
  if (kind !== 'dir' && kind !== 'file') throw new MetaUnavailableError(`Redis holds a node of kind ${JSON.stringify(kind)}`);
  const backupAt = text(f('backupAt'), 'backupAt');
  return {
    id: parseInteger(r[at], 'id'),
    parent: n('parent'),
    name: text(f('name'), 'name'),
    kind,
    attributes: n('attributes'),
    createdAt: n('createdAt'),
    modifiedAt: n('modifiedAt'),
    backupAt: backupAt === '' ? null : parseInteger(backupAt, 'backupAt'),
    finderInfo: bytes(f('finderInfo'), 'finderInfo'),
    uid: n('uid'),
    gid: n('gid'),
    mode: n('mode'),
    dataLength: n('dataLength'),
    rsrcLength: n('rsrcLength'),
    childCount: n('childCount'),
  };
}

function bytes(v: ReplyItem | undefined, what: string): Buffer {
  if (!Buffer.isBuffer(v)) throw new MetaUnavailableError(`Redis returned no ${what}`);
  return Buffer.from(v);
}

function text(v: ReplyItem | undefined, what: string): string {
  return bytes(v, what).toString('utf8');
}

function parseInteger(v: ReplyItem | string | undefined, what: string): number {
  const n = typeof v === 'number' ? v : Number(Buffer.isBuffer(v) ? v.toString('latin1') : v);
  if (v === undefined || v === null || v === '' || !Number.isSafeInteger(n)) throw new MetaUnavailableError(`Redis holds a malformed ${what}`);
  return n;
}
