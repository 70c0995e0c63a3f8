/**
 * Writes the records of dump.ts into Redis in the layout the Redis backend reads
 * (redis-store.ts for the server-wide keys, redis-namespace.ts for a volume's): the target
 * side of a migration. Writes go out as pipelines of many commands, one round trip per
 * batch, not one per record.
 *
 * It writes without scripts because it writes alone: the migration first makes sure no
 * gateway uses the target and that nothing is there to merge with (see `existing`).
 * Every key of a volume carries the volume's hash tag, the server-wide keys {global}.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { GcEntry } from './block-maps.js';
import { gcMember } from './block-map-records.js';
import { NO_FOLD, type GlobalDump, type NodeDump, type VolumeCounters } from './dump.js';
import { MetaUnavailableError, type ServerIdentity } from './meta-store.js';
import { PARENT_OF_ROOT, type NamespaceStore } from './namespace.js';
import { encodeNode, encodeRef, RedisNamespace, volumeBase, type Arg } from './redis-namespace.js';
import { encodeIdentity, encodeUser, globalKeys, parseIdentity } from './redis-global-records.js';
import { callRedis } from './redis-call.js';

/** Field/value pairs (or members) per command: keeps any one command's argument list small. */
const SLICE = 500;
/** Keys per SCAN step and per UNLINK. */
const SCAN_COUNT = 1000;

/** What the target already holds under the key prefix, in the parts a migration writes. */
export interface TargetKeys {
  /** {global}: users, the server identity, node and named leases. */
  global: number;
  /** {sess}: sessions and replay caches. */
  sessions: number;
  /** By volume key: keys under the volume's hash tag. Only volumes asked about. */
  volumes: Map<string, number>;
}

export function targetKeyCount(t: TargetKeys): number {
  let n = t.global + t.sessions;
  for (const v of t.volumes.values()) n += v;
  return n;
}

export class RedisLoad {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  /**
   * A reader of the volume's namespace through the backend's own code (see NO_FOLD), for
   * the verification. It has no change feed: a migration watches no forks.
   */
  namespace(volumeKey: string): NamespaceStore {
    return new RedisNamespace(this.redis, this.prefix, volumeKey, NO_FOLD, () => {
      throw new Error('a migration watches no forks');
    });
  }

  /** Counts the keys a migration of these volumes would write over (one SCAN of the prefix). */
  async existing(volumeKeys: readonly string[]): Promise<TargetKeys> {
    const out: TargetKeys = { global: 0, sessions: 0, volumes: new Map(volumeKeys.map((v) => [v, 0])) };
    await this.scan(volumeKeys, (_key, part) => {
      if (part === 'global') out.global++;
      else if (part === 'sessions') out.sessions++;
      else out.volumes.set(part.volume, out.volumes.get(part.volume)! + 1);
    });
    return out;
  }

  /** Deletes what `existing` counts; returns how many keys went. */
  async clear(volumeKeys: readonly string[]): Promise<number> {
    let doomed: string[] = [];
    let n = 0;
    const flush = async (): Promise<void> => {
      if (doomed.length === 0) return;
      const keys = doomed;
      doomed = [];
      n += await this.call(() => this.redis.unlink(...keys));
    };
    await this.scan(volumeKeys, async (key) => {
      doomed.push(key);
      if (doomed.length >= SCAN_COUNT) await flush();
    });
    await flush();
    return n;
  }

  /** Users, the uid index and the uid counter. The identity goes separately, last of all. */
  async writeUsers(g: GlobalDump): Promise<void> {
    const k = globalKeys(this.prefix);
    const batch = this.batch();
    for (const { key, user } of g.users) {
      batch.add((p) => p.hset(k.user(key), ...encodeUser(user)));
      batch.add((p) => p.sadd(k.users, key));
      batch.add((p) => p.hset(k.uids, String(user.uid), key));
    }
    if (g.uidCounter !== undefined) {
      const counter = String(g.uidCounter);
      batch.add((p) => p.set(k.uidCounter, counter));
    }
    await batch.flush();
  }

  /**
   * The server identity. Written last: until it is there, a gateway started on the target by
   * mistake would make a new one, which the next migration attempt then finds and refuses.
   */
  async writeIdentity(identity: ServerIdentity): Promise<void> {
    const value = encodeIdentity(identity);
    await this.call(() => this.redis.set(globalKeys(this.prefix).identity, value));
  }

  /** Nodes with their xattrs, block maps and places in their parents' child indexes. */
  async writeNodes(volumeKey: string, nodes: readonly NodeDump[]): Promise<void> {
    const b = volumeBase(this.prefix, volumeKey);
    const batch = this.batch();
    // One HSET and one ZADD per parent for the whole batch, rather than one per child.
    const children = new Map<number, NodeDump[]>();
    for (const n of nodes) {
      const id = n.record.id;
      const fields = encodeNode(n.record, n.key);
      batch.add((p) => p.hset(`${b}:node:${id}`, ...fields));
      if (n.record.parent !== PARENT_OF_ROOT) {
        let list = children.get(n.record.parent);
        if (!list) children.set(n.record.parent, (list = []));
        list.push(n);
      }
      sliced(batch, n.xattrs.flatMap(([name, value]): Arg[] => [name, value]), (p, args) => p.hset(`${b}:xattr:${id}`, ...args));
      sliced(batch, n.data.flatMap(([index, ref]) => [String(index), encodeRef(ref)]), (p, args) => p.hset(`${b}:blk:${id}:d`, ...args));
      sliced(batch, n.rsrc.flatMap(([index, ref]) => [String(index), encodeRef(ref)]), (p, args) => p.hset(`${b}:blk:${id}:r`, ...args));
    }
    for (const [parent, list] of children) {
      sliced(batch, list.flatMap((n) => [n.key, String(n.record.id)]), (p, args) => p.hset(`${b}:dir:${parent}`, ...args));
      sliced(batch, list.flatMap((n) => ['0', n.key]), (p, args) => p.zadd(`${b}:ord:${parent}`, ...args));
    }
    await batch.flush();
  }

  /** Key/value records (the desktop database). */
  async writeKv(volumeKey: string, entries: readonly [string, Buffer][]): Promise<void> {
    const b = volumeBase(this.prefix, volumeKey);
    const batch = this.batch();
    sliced(batch, entries.flatMap(([key, value]): Arg[] => [key, value]), (p, args) => p.hset(`${b}:kv`, ...args));
    sliced(batch, entries.flatMap(([key]) => ['0', key]), (p, args) => p.zadd(`${b}:kvkeys`, ...args));
    await batch.flush();
  }

  /** Entries of the GC queue, with the times they were queued at. */
  async writeGc(volumeKey: string, entries: readonly GcEntry[]): Promise<void> {
    const b = volumeBase(this.prefix, volumeKey);
    const batch = this.batch();
    sliced(batch, entries.flatMap((e) => [String(e.at), gcMember(e)]), (p, args) => p.zadd(`${b}:gc`, ...args));
    await batch.flush();
  }

  /** The volume's counters; blockSize only once fixed, as afpgwNsFixBlockSize leaves it. */
  async writeCounters(volumeKey: string, c: VolumeCounters): Promise<void> {
    const fields = ['lastId', String(c.lastId), 'nodes', String(c.nodes), 'bytes', String(c.bytes), 'gen', String(c.gen)];
    if (c.blockSize > 0) fields.push('blockSize', String(c.blockSize));
    await this.call(() => this.redis.hset(`${volumeBase(this.prefix, volumeKey)}:meta`, ...fields));
  }

  /** The counters as stored, read back for the verification; undefined when the volume has none. */
  async readCounters(volumeKey: string): Promise<VolumeCounters | undefined> {
    const key = `${volumeBase(this.prefix, volumeKey)}:meta`;
    const [lastId, nodes, bytes, gen, blockSize] = await this.call(() => this.redis.hmget(key, 'lastId', 'nodes', 'bytes', 'gen', 'blockSize'));
    if (lastId == null && nodes == null) return undefined;
    const n = (v: string | null | undefined, what: string): number => {
      const x = Number(v ?? '0');
      if (!Number.isSafeInteger(x)) throw new MetaUnavailableError(`Redis holds a malformed ${what} for volume ${JSON.stringify(volumeKey)}: ${String(v)}`);
      return x;
    };
    return { lastId: n(lastId, 'lastId'), nodes: n(nodes, 'node count'), bytes: n(bytes, 'byte count'), gen: n(gen, 'generation'), blockSize: n(blockSize, 'block size') };
  }

  /** The identity (without making one, as serverIdentity() would) and the uid counter, as stored. */
  async readGlobals(): Promise<{ identity?: ServerIdentity; uidCounter?: number }> {
    const k = globalKeys(this.prefix);
    const [identity, counter] = await this.call(() => this.redis.mget(k.identity, k.uidCounter));
    const uidCounter = counter == null ? undefined : Number(counter);
    if (uidCounter !== undefined && !Number.isSafeInteger(uidCounter)) throw new MetaUnavailableError(`Redis holds a malformed uid counter: ${String(counter)}`);
    return { ...(identity != null ? { identity: parseIdentity(identity) } : {}), ...(uidCounter !== undefined ? { uidCounter } : {}) };
  }

  /** Calls `each` for every key under {global}, {sess} and the listed volumes' hash tags. */
  private async scan(volumeKeys: readonly string[], each: (key: string, part: 'global' | 'sessions' | { volume: string }) => void | Promise<void>): Promise<void> {
    const wanted = new Set(volumeKeys);
    const global = `${this.prefix}:{global}:`;
    const sessions = `${this.prefix}:{sess}:`;
    const volume = `${this.prefix}:{v:`;
    let cursor = '0';
    do {
      const [next, keys] = await this.call(() => this.redis.scan(cursor, 'MATCH', `${globEscape(this.prefix)}:*`, 'COUNT', SCAN_COUNT));
      cursor = next;
      for (const key of keys) {
        if (key.startsWith(global)) await each(key, 'global');
        else if (key.startsWith(sessions)) await each(key, 'sessions');
        else if (key.startsWith(volume)) {
          // Volume keys hold no braces (checkVolumeKey), so the tag ends at the first '}'.
          const end = key.indexOf('}', volume.length);
          const v = end < 0 ? undefined : key.slice(volume.length, end);
          if (v !== undefined && wanted.has(v)) await each(key, { volume: v });
        }
      }
    } while (cursor !== '0');
  }

  private batch(): Batch {
    return new Batch(this.redis, (op) => this.call(op));
  }

  /** Our own errors pass through; anything from ioredis means Redis is unreachable or broken. */
  private call<T>(op: () => Promise<T>): Promise<T> {
    return callRedis(op);
  }
}

/** Commands gathered into one pipeline; `flush` sends them and fails on the first error reply. */
class Batch {
  private pipeline: ChainableCommander;
  private size = 0;

  constructor(private readonly redis: Redis, private readonly call: <T>(op: () => Promise<T>) => Promise<T>) {
    this.pipeline = redis.pipeline();
  }

  add(command: (p: ChainableCommander) => unknown): void {
    command(this.pipeline);
    this.size++;
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const pipeline = this.pipeline;
    this.pipeline = this.redis.pipeline();
    this.size = 0;
    const replies = await this.call(() => pipeline.exec());
    for (const [err] of replies ?? []) {
      if (err) throw new MetaUnavailableError(`Redis refused a write of the migration: ${err.message}`);
    }
  }
}

/** Adds `command` once per slice of `args` (pairs stay together: SLICE is even). */
function sliced(batch: Batch, args: readonly Arg[], command: (p: ChainableCommander, args: Arg[]) => unknown): void {
  for (let i = 0; i < args.length; i += SLICE * 2) {
    const part = args.slice(i, i + SLICE * 2);
    batch.add((p) => command(p, part));
  }
}

/** A literal string as a SCAN MATCH pattern. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
