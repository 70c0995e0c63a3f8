/**
 * VolumeAudit on Redis: finds a volume's keys with one SCAN over its hash tag (layout in
 * redis-namespace.ts), reads them in pipelined batches, and repairs with one Lua script per
 * change, each checking its condition again inside the script. The scripts share the
 * namespace's prelude (its key helpers, dropBlocks, gcFlush) and, like the namespace's own,
 * run under the resend guard (redis-scripts.ts).
 *
 * A scan is not a snapshot: a gateway may change keys while it runs. That is why verify
 * confirms each finding with a re-read before it reports it (the re-reads below are single
 * commands, MULTI or read-only scripts) and why each repair re-checks its condition.
 */
import type { Redis } from 'ioredis';
import type { BlockRef, GcEntry } from './block-maps.js';
import { forkCode, gcMember, parseGcMember } from './block-map-records.js';
import type { ForkKind } from './forks.js';
import { MetaUnavailableError } from './meta-store.js';
import { COUNTER_START, checkVolumeKey, foldName, isId, sortKey } from './namespace-records.js';
import { FIELDS, LUA_PRELUDE, parseRecord, parseRef, type ReplyItem } from './redis-namespace.js';
import { defineScripts, scriptsWith } from './redis-scripts.js';
import { MAX_DEPTH, type AuditBlockMap, type AuditCounters, type AuditEntry, type AuditNode, type Reachability, type VolumeAudit } from './verify-store.js';
import { callRedis } from './redis-call.js';

const SCRIPTS = {
  // ARGV: id. Walks up to the root: each node must exist, its parent must be a directory
  // whose entry under the node's key names it.
  afpgwAuditReach: `
local id = ARGV[1]
if redis.call('EXISTS', nodeKey(id)) == 0 then return 'missing' end
local p, steps = id, ${MAX_DEPTH}
while p ~= '2' do
  steps = steps - 1
  if steps < 0 then return 'loop' end
  local v = redis.call('HMGET', nodeKey(p), 'parent', 'key')
  if not v[1] or not v[2] then return 'unlinked' end
  if redis.call('HGET', dirKey(v[1]), v[2]) ~= p then return 'unlinked' end
  if redis.call('HGET', nodeKey(v[1]), 'kind') ~= 'dir' then return 'unlinked' end
  p = v[1]
end
return 'reachable'`,

  // ARGV: dir. 1 when the listing index holds exactly the entries' keys.
  afpgwAuditIndexAgrees: `
local d, o = dirKey(ARGV[1]), ordKey(ARGV[1])
if redis.call('HLEN', d) ~= redis.call('ZCARD', o) then return 0 end
for _, k in ipairs(redis.call('HKEYS', d)) do
  if not redis.call('ZSCORE', o, k) then return 0 end
end
return 1`,

  // ARGV: parent, key, child ('' for an index member without an entry). Returns 1 when dropped.
  afpgwAuditDropEntry: `
local parent, key, child = ARGV[1], ARGV[2], ARGV[3]
if child == '' then
  if redis.call('HEXISTS', dirKey(parent), key) == 1 then return 0 end
  return redis.call('ZREM', ordKey(parent), key)
end
if redis.call('HGET', dirKey(parent), key) ~= child then return 0 end
local v = redis.call('HMGET', nodeKey(child), 'parent', 'key')
if v[1] == parent and v[2] == key then return 0 end
redis.call('HDEL', dirKey(parent), key)
redis.call('ZREM', ordKey(parent), key)
local p = redis.call('HMGET', nodeKey(parent), 'kind', 'childCount')
if p[1] == 'dir' and tonumber(p[2] or '0') > 0 then redis.call('HINCRBY', nodeKey(parent), 'childCount', -1) end
return 1`,

  // ARGV: dir. Makes the listing index hold exactly the entries' keys. Returns 1 when it changed.
  afpgwAuditReindex: `
local d, o = dirKey(ARGV[1]), ordKey(ARGV[1])
local want = {}
for _, k in ipairs(redis.call('HKEYS', d)) do want[k] = true end
local changed = 0
for _, m in ipairs(redis.call('ZRANGE', o, 0, -1)) do
  if want[m] then want[m] = nil else
    redis.call('ZREM', o, m)
    changed = 1
  end
end
local add = {}
for k in pairs(want) do
  add[#add + 1] = 0
  add[#add + 1] = k
end
for i = 1, #add, 1000 do
  redis.call('ZADD', o, unpack(add, i, math.min(i + 999, #add)))
  changed = 1
end
return changed`,

  // ARGV: id, dir, name, sort key, now. Returns 'ok' or why not.
  afpgwAuditRelink: `
local id, dir, name, key, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local k = nodeKey(id)
local cur = redis.call('HMGET', k, 'parent', 'key', 'kind')
if not cur[1] then return 'not-found' end
local dkind = redis.call('HGET', nodeKey(dir), 'kind')
if not dkind then return 'not-found' end
if dkind ~= 'dir' then return 'not-dir' end
if redis.call('HEXISTS', dirKey(dir), key) == 1 then return 'exists' end
if cur[3] == 'dir' then
  local p, steps = dir, ${MAX_DEPTH}
  while p and p ~= '1' do
    steps = steps - 1
    if p == id or steps < 0 then return 'cycle' end
    p = redis.call('HGET', nodeKey(p), 'parent')
  end
end
if cur[2] and redis.call('HGET', dirKey(cur[1]), cur[2]) == id then
  redis.call('HDEL', dirKey(cur[1]), cur[2])
  redis.call('ZREM', ordKey(cur[1]), cur[2])
  local p = redis.call('HMGET', nodeKey(cur[1]), 'kind', 'childCount')
  if p[1] == 'dir' and tonumber(p[2] or '0') > 0 then redis.call('HINCRBY', nodeKey(cur[1]), 'childCount', -1) end
end
redis.call('HSET', k, 'parent', dir, 'name', name, 'key', key)
redis.call('HSET', dirKey(dir), key, id)
redis.call('ZADD', ordKey(dir), 0, key)
redis.call('HINCRBY', nodeKey(dir), 'childCount', 1)
redis.call('HSET', nodeKey(dir), 'modifiedAt', now)
return 'ok'`,

  // ARGV: dir. Returns 1 when the stored count changed.
  afpgwAuditRecount: `
local k = nodeKey(ARGV[1])
if redis.call('HGET', k, 'kind') ~= 'dir' then return 0 end
local n = redis.call('HLEN', dirKey(ARGV[1]))
if tonumber(redis.call('HGET', k, 'childCount') or '-1') == n then return 0 end
redis.call('HSET', k, 'childCount', n)
return 1`,

  // ARGV: id, fork code, now. Only for a node that does not exist.
  afpgwAuditDropBlockMap: `
if redis.call('EXISTS', nodeKey(ARGV[1])) == 1 then return 0 end
if redis.call('EXISTS', blkKey(ARGV[1], ARGV[2])) == 0 then return 0 end
local gc = {}
dropBlocks(gc, ARGV[1], ARGV[2], 0)
gcFlush(gc, ARGV[3])
return 1`,

  // ARGV: id. Only for a node that does not exist.
  afpgwAuditDropXattrs: `
if redis.call('EXISTS', nodeKey(ARGV[1])) == 1 then return 0 end
return redis.call('DEL', xattrKey(ARGV[1]))`,

  // ARGV: now, members. Queues members not queued yet; returns how many.
  afpgwAuditQueueGc: `
local n = 0
for i = 2, #ARGV do n = n + redis.call('ZADD', gcKey, 'NX', ARGV[1], ARGV[i]) end
return n`,

  // ARGV: lastId, gen (raised to at least), nodes, bytes (set); '' leaves one as it is.
  afpgwAuditFixCounters: `
local changed = 0
for i, f in ipairs({'lastId', 'gen'}) do
  local want = ARGV[i]
  if want ~= '' and tonumber(redis.call('HGET', KEYS[1], f) or '0') < tonumber(want) then
    redis.call('HSET', KEYS[1], f, want)
    changed = 1
  end
end
for i, f in ipairs({'nodes', 'bytes'}) do
  local want = ARGV[i + 2]
  if want ~= '' and redis.call('HGET', KEYS[1], f) ~= want then
    redis.call('HSET', KEYS[1], f, want)
    changed = 1
  end
end
return changed`,
} as const;

const READS: ReadonlySet<string> = new Set(['afpgwAuditReach', 'afpgwAuditIndexAgrees']);

type ScriptName = keyof typeof SCRIPTS;
type Arg = string;
type ScriptedRedis = Redis & { [K in ScriptName]: (meta: string, ...argv: Arg[]) => Promise<unknown> };

/** Keys per SCAN call and per pipelined batch of reads. */
const BATCH = 500;
const GC_SLICE = 1000;

/** What the one SCAN found, by kind. */
interface Keyspace {
  nodes: number[];
  dirs: number[];
  xattrs: number[];
  maps: { file: number; fork: ForkKind }[];
}

const KEY_KINDS = /^(node|dir|ord|xattr):(\d{1,16})$|^blk:(\d{1,16}):([dr])$/;

export class RedisVolumeAudit implements VolumeAudit {
  private readonly redis: ScriptedRedis;
  private readonly base: string;
  private readonly meta: string;
  private keyspace?: Promise<Keyspace>;

  /** `prefix` is the store's key prefix, already checked to be free of braces. */
  constructor(redis: Redis, prefix: string, volumeKey: string, private readonly fold: (name: string) => string) {
    checkVolumeKey(volumeKey);
    if (!('afpgwAuditReach' in redis)) defineScripts(redis, scriptsWith(LUA_PRELUDE, SCRIPTS, READS));
    this.redis = redis as ScriptedRedis;
    this.base = `${prefix}:{v:${volumeKey}}`;
    this.meta = `${this.base}:meta`;
  }

  async counters(): Promise<AuditCounters> {
    const v = await this.call(() => this.redis.hmget(this.meta, 'lastId', 'gen', 'nodes', 'bytes', 'blockSize'));
    const n = (s: string | null, dflt: number): number => (s === null ? dflt : integer(s, 'counter'));
    return { lastId: n(v[0]!, COUNTER_START), gen: n(v[1]!, 0), nodes: n(v[2]!, 0), bytes: n(v[3]!, 0), blockSize: n(v[4]!, 0) };
  }

  async *nodes(): AsyncIterable<AuditNode> {
    const { nodes } = await this.scan();
    for (let i = 0; i < nodes.length; i += BATCH) {
      const ids = nodes.slice(i, i + BATCH);
      const replies = await this.pipeline(ids.map((id) => ['hmgetBuffer', this.key('node', id), ...FIELDS, 'key']));
      for (const [j, reply] of replies.entries()) {
        const node = this.toNode(ids[j]!, reply as (Buffer | null)[]);
        if (node) yield node;
      }
    }
  }

  async *entries(): AsyncIterable<AuditEntry> {
    const { dirs } = await this.scan();
    for (let i = 0; i < dirs.length; i += BATCH) {
      const ids = dirs.slice(i, i + BATCH);
      const replies = await this.pipeline(ids.flatMap((id) => [['hgetall', this.key('dir', id)], ['zrange', this.key('ord', id), '0', '-1']]));
      for (const [j, parent] of ids.entries()) {
        const entries = replies[2 * j] as Record<string, string>;
        const indexed = new Set(replies[2 * j + 1] as string[]);
        for (const [key, child] of Object.entries(entries)) {
          const id = Number(child);
          yield { parent, key, child: isId(id) ? id : 0, indexed: indexed.has(key) };
        }
        for (const key of indexed) if (!(key in entries)) yield { parent, key, child: null, indexed: true };
      }
    }
  }

  async *blockMaps(): AsyncIterable<AuditBlockMap> {
    const { maps } = await this.scan();
    for (let i = 0; i < maps.length; i += BATCH) {
      const batch = maps.slice(i, i + BATCH);
      const replies = await this.pipeline(batch.map((m) => ['hgetall', this.mapKey(m.file, m.fork)]));
      for (const [j, m] of batch.entries()) {
        const blocks = Object.entries(replies[j] as Record<string, string>).map(([index, ref]): [number, BlockRef] => [integer(index, 'block index'), parseRef(Buffer.from(ref))]);
        if (blocks.length > 0) yield { ...m, blocks: blocks.sort((a, b) => a[0] - b[0]) };
      }
    }
  }

  async *xattrOwners(): AsyncIterable<number> {
    yield* (await this.scan()).xattrs;
  }

  async *gcEntries(): AsyncIterable<GcEntry> {
    // ZSCAN returns every member present for the whole scan at least once, changes or not.
    let cursor = '0';
    do {
      const [next, flat] = await this.call(() => this.redis.zscan(`${this.base}:gc`, cursor, 'COUNT', GC_SLICE));
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const e = parseGcMember(flat[i]!, Number(flat[i + 1]));
        if (e) yield e;
      }
    } while (cursor !== '0');
  }

  async node(id: number): Promise<AuditNode | undefined> {
    if (!isId(id)) return undefined;
    const reply = await this.call(() => this.redis.hmgetBuffer(this.key('node', id), ...FIELDS, 'key'));
    return this.toNode(id, reply);
  }

  async entry(parent: number, key: string): Promise<number | undefined> {
    const v = await this.call(() => this.redis.hget(this.key('dir', parent), key));
    return v === null ? undefined : Number(v);
  }

  async reachability(id: number): Promise<Reachability> {
    if (!isId(id)) return 'missing';
    return (await this.call(() => this.redis.afpgwAuditReach(this.meta, String(id)))) as Reachability;
  }

  async childCount(dir: number): Promise<{ stored: number; entries: number } | undefined> {
    const reply = await this.call(() => this.redis.multi().hmget(this.key('node', dir), 'kind', 'childCount').hlen(this.key('dir', dir)).exec());
    const [[, kc], [, n]] = (reply ?? []) as [[unknown, (string | null)[]], [unknown, number]];
    if (!kc || kc[0] !== 'dir') return undefined;
    return { stored: integer(kc[1] ?? '0', 'childCount'), entries: n };
  }

  async blockRef(file: number, fork: ForkKind, index: number): Promise<BlockRef | null> {
    const v = await this.call(() => this.redis.hgetBuffer(this.mapKey(file, fork), String(index)));
    return v === null ? null : parseRef(v);
  }

  async indexAgrees(dir: number): Promise<boolean> {
    return (await this.call(() => this.redis.afpgwAuditIndexAgrees(this.meta, String(dir)))) === 1;
  }

  async gcQueued(entry: Omit<GcEntry, 'at'>): Promise<boolean> {
    return (await this.call(() => this.redis.zscore(`${this.base}:gc`, gcMember(entry)))) !== null;
  }

  async dropEntry(parent: number, key: string, child: number | null): Promise<boolean> {
    return (await this.script('afpgwAuditDropEntry', String(parent), key, child === null ? '' : String(child))) === 1;
  }

  async reindex(dir: number): Promise<boolean> {
    return (await this.script('afpgwAuditReindex', String(dir))) === 1;
  }

  async relink(id: number, dir: number, name: string, now: number): Promise<'ok' | 'exists' | 'not-found' | 'not-dir' | 'cycle'> {
    const key = sortKey(foldName(this.fold, name));
    const r = await this.script('afpgwAuditRelink', String(id), String(dir), name, key, String(now));
    const s = Buffer.isBuffer(r) ? r.toString() : String(r);
    if (s === 'ok' || s === 'exists' || s === 'not-found' || s === 'not-dir' || s === 'cycle') return s;
    throw new MetaUnavailableError(`Redis answered afpgwAuditRelink with ${JSON.stringify(s)}`);
  }

  async recount(dir: number): Promise<boolean> {
    return (await this.script('afpgwAuditRecount', String(dir))) === 1;
  }

  async dropBlockMap(file: number, fork: ForkKind, now: number): Promise<boolean> {
    return (await this.script('afpgwAuditDropBlockMap', String(file), forkCode(fork), String(now))) === 1;
  }

  async dropXattrs(id: number): Promise<boolean> {
    return (await this.script('afpgwAuditDropXattrs', String(id))) === 1;
  }

  async queueGc(entries: readonly Omit<GcEntry, 'at'>[], now: number): Promise<number> {
    let added = 0;
    for (let i = 0; i < entries.length; i += GC_SLICE) {
      added += Number(await this.script('afpgwAuditQueueGc', String(now), ...entries.slice(i, i + GC_SLICE).map(gcMember)));
    }
    return added;
  }

  async fixCounters(fix: { lastId?: number; gen?: number; nodes?: number; bytes?: number }): Promise<boolean> {
    const arg = (v: number | undefined): string => (v === undefined ? '' : String(v));
    return (await this.script('afpgwAuditFixCounters', arg(fix.lastId), arg(fix.gen), arg(fix.nodes), arg(fix.bytes))) === 1;
  }

  private key(kind: 'node' | 'dir' | 'ord' | 'xattr', id: number): string {
    return `${this.base}:${kind}:${id}`;
  }

  private mapKey(file: number, fork: ForkKind): string {
    return `${this.base}:blk:${file}:${forkCode(fork)}`;
  }

  private toNode(id: number, reply: (Buffer | null)[]): AuditNode | undefined {
    if (reply[0] === null || reply[0] === undefined) return undefined;
    const key = reply[FIELDS.length];
    return { ...parseRecord([id, ...reply.slice(0, FIELDS.length)] as ReplyItem[], 0), key: key ? key.toString('utf8') : '' };
  }

  /** One SCAN over the volume's hash tag, sorted by kind; shared by the listings above. */
  private scan(): Promise<Keyspace> {
    this.keyspace ??= (async () => {
      const found: Keyspace = { nodes: [], dirs: [], xattrs: [], maps: [] };
      const dirs = new Set<number>();
      const skip = this.base.length + 1;
      let cursor = '0';
      do {
        const [next, keys] = await this.call(() => this.redis.scan(cursor, 'MATCH', `${globEscape(this.base)}:*`, 'COUNT', BATCH));
        cursor = next;
        for (const k of keys) {
          const m = KEY_KINDS.exec(k.slice(skip));
          if (!m) continue;
          if (m[1] === 'node') found.nodes.push(Number(m[2]));
          else if (m[1] === 'dir' || m[1] === 'ord') dirs.add(Number(m[2]));
          else if (m[1] === 'xattr') found.xattrs.push(Number(m[2]));
          else found.maps.push({ file: Number(m[3]), fork: m[4] === 'd' ? 'data' : 'rsrc' });
        }
      } while (cursor !== '0');
      // SCAN may return a key twice.
      found.nodes = [...new Set(found.nodes)].sort((a, b) => a - b);
      found.xattrs = [...new Set(found.xattrs)].sort((a, b) => a - b);
      found.dirs = [...dirs].sort((a, b) => a - b);
      const maps = new Map(found.maps.map((m) => [`${m.file}:${m.fork}`, m]));
      found.maps = [...maps.values()].sort((a, b) => a.file - b.file || (a.fork < b.fork ? -1 : a.fork > b.fork ? 1 : 0));
      return found;
    })();
    return this.keyspace;
  }

  private async pipeline(commands: (string | number)[][]): Promise<unknown[]> {
    if (commands.length === 0) return [];
    const results = await this.call(() => this.redis.pipeline(commands as [string, ...(string | number)[]][]).exec());
    return (results ?? []).map(([err, value]) => {
      if (err) throw new MetaUnavailableError(`Redis: ${err.message}`);
      return value;
    });
  }

  private script(name: ScriptName, ...argv: Arg[]): Promise<unknown> {
    return this.call(() => this.redis[name](this.meta, ...argv));
  }

  private call<T>(op: () => Promise<T>): Promise<T> {
    return callRedis(op);
  }
}

/** SCAN's MATCH is a glob: the key prefix and volume key must match only themselves. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function integer(s: string, what: string): number {
  const n = Number(s);
  if (s === '' || !Number.isSafeInteger(n)) throw new MetaUnavailableError(`Redis holds a malformed ${what}: ${JSON.stringify(s)}`);
  return n;
}
