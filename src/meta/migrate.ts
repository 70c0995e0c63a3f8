/**
 * Moves a gateway's metadata from the embedded store to Redis: every record a restarted
 * gateway relies on (the server identity, users, each volume's namespace with its block
 * maps, key/value area and GC queue), none of the transient state (open forks, locks,
 * leases, sessions, replay caches). The objects in the bucket do not move: the block maps
 * that name them do.
 *
 * It refuses rather than merge: not while a gateway holds a live lease on either store, not
 * into a Redis that already holds data under the same key prefix for the server or for one
 * of the volumes (unless told to replace it), not from a store that holds records of a
 * kind it does not know. After the copy it reads everything back through the Redis
 * backend's own code (the code a gateway will run) and compares it with the source, so a
 * record the gateway would not find, or find changed, fails the migration.
 */
import { isDeepStrictEqual } from 'node:util';
import type { BlockRef } from './block-maps.js';
import { censusTotal, type GlobalDump, type NodeDump, type VolumeCensus, type VolumeCounters } from './dump.js';
import type { StoreCensus } from './embedded-dump.js';
import type { EmbeddedMetaStore } from './embedded-store.js';
import { MetaError, type NodeLease } from './meta-store.js';
import type { NamespaceStore } from './namespace.js';
import type { RedisMetaStore } from './redis-store.js';
import { targetKeyCount, type TargetKeys } from './redis-load.js';

/** A precondition does not hold; nothing was written. */
export class MigrationRefusedError extends MetaError {}

/** What to do about a target that holds part of a copy, or a wrong one. */
const PARTIAL = 'the target Redis holds an incomplete or wrong copy: do not start a gateway on it; once the cause is fixed, run the migration again with --force to replace it';

/** The target does not read back what the source holds. */
export class MigrationMismatchError extends MetaError {
  constructor(readonly differences: readonly string[], total: number) {
    const more = total > differences.length ? `\n  ... and ${total - differences.length} more` : '';
    super(`${total} difference${total === 1 ? '' : 's'} between the source and what Redis reads back:\n  ${differences.join('\n  ')}${more}\n${PARTIAL}`);
  }
}

/** The copy failed part way (Redis went away, refused a write, the source could not be read). */
export class MigrationIncompleteError extends MetaError {
  constructor(cause: unknown) {
    super(`${cause instanceof Error ? cause.message : String(cause)}\n${PARTIAL}`);
    this.cause = cause;
  }
}

export type MigrationStep = 'copy' | 'verify';

/** Hears how far a migration has got, in records (a node, an xattr, a block, a kv or GC entry). */
export interface MigrationListener {
  begin(step: MigrationStep, volumeKey: string, records: number): void;
  advance(records: number): void;
  end(): void;
}

export interface MigrationOptions {
  /** Replace what the target holds for the server and these volumes instead of refusing. */
  force?: boolean;
  listener?: MigrationListener;
}

export interface VolumeSummary {
  key: string;
  /** What was copied (and verified). */
  copied: VolumeCensus;
  counters: VolumeCounters;
}

export interface MigrationSummary {
  identity: boolean;
  users: number;
  volumes: VolumeSummary[];
  /** Records copied, all kinds together. */
  records: number;
  /** Keys of the target that --force replaced. */
  replaced: number;
  /** Keys of transient state left behind. */
  transient: number;
  /** Records the source holds that belong to nothing (e.g. an xattr of a node that is gone): not copied. */
  orphans: number;
}

/** A copy pipeline ends at this many records, or at BATCH_NODES nodes. */
const BATCH_RECORDS = 5000;
const BATCH_NODES = 500;
/** Nodes whose reads the verification has in flight at once. */
const VERIFY_WINDOW = 256;
/** Children per listing page the verification compares. */
const PAGE = 1000;
/** Differences listed in full; the rest are counted. */
const MAX_LISTED = 20;

const silent: MigrationListener = { begin: () => undefined, advance: () => undefined, end: () => undefined };

export async function migrateToRedis(source: EmbeddedMetaStore, target: RedisMetaStore, opts: MigrationOptions = {}): Promise<MigrationSummary> {
  const listener = opts.listener ?? silent;
  const dump = source.dump();
  const load = target.load();

  refuseLive('source', await source.listNodes());
  const census = dump.census();
  if (census.unknown.length > 0) {
    throw new MigrationRefusedError(
      `the embedded store holds records of a kind this version cannot migrate (${census.unknown.map((k) => JSON.stringify(k)).join(', ')}); migrate with the version that wrote them`,
    );
  }
  refuseLive('target', await target.listNodes());
  const volumeKeys = [...census.volumes.keys()];
  const existing = await load.existing(volumeKeys);
  if (targetKeyCount(existing) > 0 && !opts.force) {
    throw new MigrationRefusedError(`the target Redis already holds ${describeExisting(existing)}; a migration does not merge. Point the config at an empty Redis or another metadata.keyPrefix, or run again with --force to replace it`);
  }
  try {
    return await copyAll(source, target, census, targetKeyCount(existing) > 0, listener);
  } catch (err) {
    if (err instanceof MigrationMismatchError) throw err;
    throw new MigrationIncompleteError(err);
  }
}

async function copyAll(source: EmbeddedMetaStore, target: RedisMetaStore, census: StoreCensus, replace: boolean, listener: MigrationListener): Promise<MigrationSummary> {
  const dump = source.dump();
  const load = target.load();
  const replaced = replace ? await load.clear([...census.volumes.keys()]) : 0;
  const globals = dump.globals();
  await load.writeUsers(globals);
  const volumes: VolumeSummary[] = [];
  for (const [key, counted] of census.volumes) {
    listener.begin('copy', key, censusTotal(counted));
    volumes.push(await copyVolume(source, target, key, listener));
    listener.end();
  }
  // A gateway started on either side during the copy would miss it or change it under it.
  refuseLive('source', await source.listNodes());
  refuseLive('target', await target.listNodes());
  // Last: see writeIdentity.
  if (globals.identity) await load.writeIdentity(globals.identity);
  // With metadata.waitReplicas set, the copy is on the replicas too before anyone relies on it.
  await target.sync();

  await verifyMigration(source, target, { listener, globals, volumes });
  let records = globals.users.length + (globals.identity ? 1 : 0);
  let orphans = 0;
  for (const v of volumes) {
    records += censusTotal(v.copied);
    orphans += censusTotal(census.volumes.get(v.key)!) - censusTotal(v.copied);
  }
  return { identity: globals.identity !== undefined, users: globals.users.length, volumes, records, replaced, transient: census.transient, orphans };
}

async function copyVolume(source: EmbeddedMetaStore, target: RedisMetaStore, key: string, listener: MigrationListener): Promise<VolumeSummary> {
  const dump = source.dump();
  const load = target.load();
  const copied: VolumeCensus = { nodes: 0, xattrs: 0, kv: 0, blocks: 0, gc: 0 };
  // One batch in flight while the next is read: LMDB reads are synchronous, Redis is a round trip.
  let inFlight: Promise<void> = Promise.resolve();
  const send = async (batch: NodeDump[], records: number): Promise<void> => {
    await inFlight;
    const write = load.writeNodes(key, batch).then(() => listener.advance(records));
    // Awaited with the next batch or at the end; should reading the source fail first, this
    // keeps the write's own failure from going unhandled.
    write.catch(() => undefined);
    inFlight = write;
  };
  let batch: NodeDump[] = [];
  let records = 0;
  for (const node of dump.nodes(key)) {
    const weight = nodeWeight(node);
    copied.nodes++;
    copied.xattrs += node.xattrs.length;
    copied.blocks += node.data.length + node.rsrc.length;
    batch.push(node);
    records += weight;
    if (records >= BATCH_RECORDS || batch.length >= BATCH_NODES) {
      await send(batch, records);
      batch = [];
      records = 0;
    }
  }
  await send(batch, records);
  await inFlight;

  for (const part of chunks(dump.kv(key), BATCH_RECORDS)) {
    await load.writeKv(key, part);
    copied.kv += part.length;
    listener.advance(part.length);
  }
  for (const part of chunks(dump.gc(key), BATCH_RECORDS)) {
    await load.writeGc(key, part);
    copied.gc += part.length;
    listener.advance(part.length);
  }

  const counters = dump.counters(key);
  await load.writeCounters(key, counters);
  return { key, copied, counters };
}

function* chunks<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let part: T[] = [];
  for (const item of items) {
    part.push(item);
    if (part.length >= size) {
      yield part;
      part = [];
    }
  }
  if (part.length > 0) yield part;
}

function nodeWeight(n: NodeDump): number {
  return 1 + n.xattrs.length + n.data.length + n.rsrc.length;
}

/**
 * Reads every copied record back from the target through the Redis backend and compares it
 * with the source; throws MigrationMismatchError listing what differs.
 */
export async function verifyMigration(
  source: EmbeddedMetaStore,
  target: RedisMetaStore,
  copied: { listener?: MigrationListener; globals: GlobalDump; volumes: readonly VolumeSummary[] },
): Promise<void> {
  const listener = copied.listener ?? silent;
  const diff = new Differences();
  await verifyGlobals(target, copied.globals, diff);
  for (const v of copied.volumes) {
    listener.begin('verify', v.key, censusTotal(v.copied));
    await verifyVolume(source, target, v, diff, listener);
    listener.end();
  }
  diff.throwIfAny();
}

async function verifyGlobals(target: RedisMetaStore, g: GlobalDump, diff: Differences): Promise<void> {
  const stored = await target.load().readGlobals();
  diff.check(isDeepStrictEqual(stored.identity, g.identity), 'server identity');
  if (g.identity) diff.check(isDeepStrictEqual(await target.serverIdentity(), g.identity), 'server identity as a gateway reads it');
  diff.check(stored.uidCounter === g.uidCounter, `uid counter: ${String(stored.uidCounter)} instead of ${String(g.uidCounter)}`);
  const users = await target.listUsers();
  diff.check(
    isDeepStrictEqual(
      users,
      g.users.map((u) => u.user),
    ),
    `users: ${users.map((u) => u.name).join(', ') || '(none)'} instead of ${g.users.map((u) => u.user.name).join(', ') || '(none)'}, or their records differ`,
  );
  for (const { user } of g.users) {
    const byUid = await target.getUserByUid(user.uid);
    diff.check(byUid?.name === user.name, `uid ${user.uid} does not lead to user ${JSON.stringify(user.name)}`);
  }
}

async function verifyVolume(source: EmbeddedMetaStore, target: RedisMetaStore, v: VolumeSummary, diff: Differences, listener: MigrationListener): Promise<void> {
  const where = `volume ${JSON.stringify(v.key)}`;
  const src = source.dump().namespace(v.key);
  const dst = target.load().namespace(v.key);
  const seen: VolumeCensus = { nodes: 0, xattrs: 0, kv: 0, blocks: 0, gc: 0 };

  let window: NodeDump[] = [];
  const run = async (): Promise<void> => {
    await Promise.all(window.map((n) => verifyNode(src, dst, n, `${where}, node ${n.record.id}`, diff, seen)));
    listener.advance(window.reduce((sum, n) => sum + nodeWeight(n), 0));
    window = [];
  };
  for (const node of source.dump().nodes(v.key)) {
    window.push(node);
    if (window.length >= VERIFY_WINDOW) await run();
  }
  await run();

  const kv = [...source.dump().kv(v.key)];
  const kvBack = await dst.kvList('');
  seen.kv = kvBack.length;
  diff.check(isDeepStrictEqual(kvBack, kv), `${where}: the key/value area (desktop database) differs`);
  listener.advance(kv.length);

  const gc = [...source.dump().gc(v.key)];
  const gcBack = await dst.gcDue(Number.MAX_SAFE_INTEGER, gc.length + 1);
  seen.gc = gcBack.length;
  diff.check(isDeepStrictEqual(gcBack, gc), `${where}: the GC queue differs (${gcBack.length} entries instead of ${gc.length})`);
  listener.advance(gc.length);

  const counters = await target.load().readCounters(v.key);
  diff.check(isDeepStrictEqual(counters, v.counters), `${where}: counters ${JSON.stringify(counters)} instead of ${JSON.stringify(v.counters)}`);
  const stats = await dst.stats();
  diff.check(
    stats.nodes === v.counters.nodes && stats.lastId === v.counters.lastId && stats.bytes === v.counters.bytes,
    `${where}: stats ${JSON.stringify(stats)} instead of nodes ${v.counters.nodes}, lastId ${v.counters.lastId}, bytes ${v.counters.bytes}`,
  );
  for (const kind of ['nodes', 'xattrs', 'blocks'] as const) {
    diff.check(seen[kind] === v.copied[kind], `${where}: ${seen[kind]} ${kind} read back instead of ${v.copied[kind]}`);
  }
}

/** A node that cannot even be read back (a broken index makes a script fail) is a difference too. */
async function verifyNode(src: NamespaceStore, dst: NamespaceStore, n: NodeDump, where: string, diff: Differences, seen: VolumeCensus): Promise<void> {
  try {
    await compareNode(src, dst, n, where, diff, seen);
  } catch (err) {
    diff.add(`${where}: reading it back failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function compareNode(src: NamespaceStore, dst: NamespaceStore, n: NodeDump, where: string, diff: Differences, seen: VolumeCensus): Promise<void> {
  const id = n.record.id;
  const record = await dst.get(id);
  if (!record) {
    diff.add(`${where} (${JSON.stringify(n.record.name)}) is missing`);
    return;
  }
  seen.nodes++;
  diff.check(isDeepStrictEqual(record, n.record), `${where} (${JSON.stringify(n.record.name)}): its record differs`);
  // The reads of one node go out together: the verification takes round trips, not work.
  await Promise.all([compareXattrs(dst, n, where, diff, seen), n.record.kind === 'file' ? compareBlocks(dst, n, where, diff, seen) : compareListing(src, dst, id, where, diff)]);
}

async function compareXattrs(dst: NamespaceStore, n: NodeDump, where: string, diff: Differences, seen: VolumeCensus): Promise<void> {
  const id = n.record.id;
  const expected = n.xattrs.map(([name]) => name);
  const [names, values] = await Promise.all([dst.listXattrs(id), Promise.all(n.xattrs.map(([name]) => dst.getXattr(id, name)))]);
  seen.xattrs += names.length;
  diff.check(isDeepStrictEqual(names, expected), `${where}: xattrs ${JSON.stringify(names)} instead of ${JSON.stringify(expected)}`);
  n.xattrs.forEach(([name, value], i) => diff.check(values[i]?.equals(value) === true, `${where}: xattr ${JSON.stringify(name)} differs`));
}

async function compareBlocks(dst: NamespaceStore, n: NodeDump, where: string, diff: Differences, seen: VolumeCensus): Promise<void> {
  const forks = [['data', n.data], ['rsrc', n.rsrc]] as const;
  const maps = await Promise.all(forks.map(([fork]) => dst.blockMap(n.record.id, fork)));
  forks.forEach(([fork, blocks], i) => {
    const map = maps[i]!;
    seen.blocks += map.size;
    diff.check(sameBlocks(map, blocks), `${where}: the ${fork} fork's block map differs (${map.size} blocks instead of ${blocks.length})`);
  });
}

/** A directory's listing: the same children in the same order, page by page. */
async function compareListing(src: NamespaceStore, dst: NamespaceStore, id: number, where: string, diff: Differences): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const page = { limit: PAGE, ...(after !== undefined ? { after } : {}) };
    const [a, b] = await Promise.all([src.children(id, page), dst.children(id, page)]);
    if (!diff.check(isDeepStrictEqual(b.entries.map((e) => e.id), a.entries.map((e) => e.id)) && b.last === a.last, `${where}: its listing differs`)) return;
    if (a.last === undefined || a.entries.length < PAGE) return;
    after = a.last;
  }
}

function sameBlocks(map: Map<number, BlockRef>, blocks: readonly [number, BlockRef][]): boolean {
  return map.size === blocks.length && blocks.every(([index, ref]) => isDeepStrictEqual(map.get(index), ref));
}

function refuseLive(which: 'source' | 'target', leases: NodeLease[]): void {
  if (leases.length === 0) return;
  const who = leases.map((l) => `node ${l.id} on ${l.host}:${l.port} (version ${l.version}, started ${new Date(l.startedAt).toISOString()}, lease until ${new Date(l.expiresAt).toISOString()})`).join('; ');
  throw new MigrationRefusedError(
    which === 'source'
      ? `a gateway is running on the embedded store: ${who}. Stop it first (the lease of a gateway that was killed lapses at the time shown)`
      : `a gateway is running on the target Redis: ${who}. Stop it first`,
  );
}

function describeExisting(t: TargetKeys): string {
  const parts: string[] = [];
  if (t.global > 0) parts.push(`${t.global} server-wide key${t.global === 1 ? '' : 's'} (users, server identity, leases)`);
  if (t.sessions > 0) parts.push(`${t.sessions} session key${t.sessions === 1 ? '' : 's'}`);
  for (const [v, n] of t.volumes) if (n > 0) parts.push(`${n} key${n === 1 ? '' : 's'} of volume ${JSON.stringify(v)}`);
  return parts.join(', ');
}

/** What the verification found wrong: the first MAX_LISTED in full, the rest counted. */
class Differences {
  private readonly listed: string[] = [];
  private total = 0;

  add(what: string): void {
    this.total++;
    if (this.listed.length < MAX_LISTED) this.listed.push(what);
  }

  /** Records `what` unless `ok`; returns `ok`. */
  check(ok: boolean, what: string): boolean {
    if (!ok) this.add(what);
    return ok;
  }

  throwIfAny(): void {
    if (this.total > 0) throw new MigrationMismatchError(this.listed, this.total);
  }
}

