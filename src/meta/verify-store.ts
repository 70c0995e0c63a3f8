/**
 * A volume's namespace as `afp-gateway verify` sees it: every record, entry, block map and
 * GC entry, read without the rules the NamespaceStore methods enforce (which assume a
 * consistent store), and the repairs verify may make. Both backends implement it over their
 * own keys (verify-embedded.ts, verify-redis.ts).
 *
 * Every repair is one atomic step (one LMDB transaction, one Lua script) that checks again,
 * inside that step, the condition that made it necessary, and does nothing when it no longer
 * holds: a repair never undoes what a gateway did after the scan. Each returns whether it
 * changed anything.
 */
import type { BlockRef, GcEntry } from './block-maps.js';
import type { ForkKind } from './forks.js';
import type { NodeRecord } from './namespace.js';

/** A node as stored: its record plus `key`, the sort key it is indexed under in its parent. */
export interface AuditNode extends NodeRecord {
  key: string;
}

/**
 * A directory entry: `key` (a sort key, as the stores index names) in directory `parent`
 * names node `child`. `indexed` is false where the entry is missing from the listing index
 * (Redis keeps lookups and listings in two keys; the embedded store in one, so always true
 * there); `child` is null for an index member with no entry behind it.
 */
export interface AuditEntry {
  parent: number;
  key: string;
  child: number | null;
  indexed: boolean;
}

export interface AuditBlockMap {
  /** The CNID the map is kept under (its node may be missing). */
  file: number;
  fork: ForkKind;
  /** [index, ref] by ascending index. */
  blocks: [number, BlockRef][];
}

export interface AuditCounters {
  /** The CNID counter: the last CNID handed out. */
  lastId: number;
  /** The last block generation handed out. */
  gen: number;
  nodes: number;
  bytes: number;
  /** 0 while no block size is fixed. */
  blockSize: number;
}

/** Where a node is on the way up to the root, as read in one consistent step. */
export type Reachability = 'reachable' | 'missing' | 'unlinked' | 'loop';

export interface VolumeAudit {
  counters(): Promise<AuditCounters>;
  nodes(): AsyncIterable<AuditNode>;
  entries(): AsyncIterable<AuditEntry>;
  blockMaps(): AsyncIterable<AuditBlockMap>;
  /** CNIDs that have extended attributes stored. */
  xattrOwners(): AsyncIterable<number>;
  gcEntries(): AsyncIterable<GcEntry>;

  // ---- re-reads, to confirm what a scan found while gateways may be changing things ----
  node(id: number): Promise<AuditNode | undefined>;
  /** The child an entry names now (undefined: no entry). */
  entry(parent: number, key: string): Promise<number | undefined>;
  /** Walks up from `id` to the root, checking each step's node and entry, in one read. */
  reachability(id: number): Promise<Reachability>;
  /** A directory's stored child count and its number of entries, in one read. */
  childCount(dir: number): Promise<{ stored: number; entries: number } | undefined>;
  /** The ref at one index of a fork's map now (null: none), whether or not the node exists. */
  blockRef(file: number, fork: ForkKind, index: number): Promise<BlockRef | null>;
  /** Whether a directory's listing index holds exactly its entries' keys, in one read. */
  indexAgrees(dir: number): Promise<boolean>;
  /** Whether the GC queue holds the object. */
  gcQueued(entry: Omit<GcEntry, 'at'>): Promise<boolean>;

  // ---- repairs ----
  /**
   * Removes an entry (and its index member) that names `child` when `child` is missing or is
   * not indexed there (its record names another parent or key); the parent's child count
   * drops by one when the parent exists. `child` null: removes an index member that has no
   * entry.
   */
  dropEntry(parent: number, key: string, child: number | null): Promise<boolean>;
  /** Rebuilds a directory's listing index from its entries (Redis); nothing to do embedded. */
  reindex(dir: number): Promise<boolean>;
  /**
   * Moves an unreachable node into `dir` as `name`, unlinking the entry that still names it
   * from its old parent if there is one. Fails with 'exists' when the name is taken in `dir`,
   * 'not-found' when the node or `dir` is gone, 'not-dir' / 'cycle' as move() does.
   */
  relink(id: number, dir: number, name: string, now: number): Promise<'ok' | 'exists' | 'not-found' | 'not-dir' | 'cycle'>;
  /** Sets a directory's child count to its number of entries. */
  recount(dir: number): Promise<boolean>;
  /** Queues every block of a map whose node is missing for GC and removes the map. */
  dropBlockMap(file: number, fork: ForkKind, now: number): Promise<boolean>;
  /** Removes the extended attributes of a missing node. */
  dropXattrs(id: number): Promise<boolean>;
  /** Queues objects for GC stamped `now`, leaving entries already queued as they are; returns how many were added. */
  queueGc(entries: readonly Omit<GcEntry, 'at'>[], now: number): Promise<number>;
  /** Raises the counters to at least the given values, and sets the totals when given. */
  fixCounters(fix: { lastId?: number; gen?: number; nodes?: number; bytes?: number }): Promise<boolean>;
}

/** No real tree is this deep; a longer walk up means the parents loop. */
export const MAX_DEPTH = 10_000;

/** Refs in a Redis map and an LMDB value alike: positive safe integers. */
export function isRef(v: unknown): v is BlockRef {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return Number.isSafeInteger(r.file) && (r.file as number) > 0 && Number.isSafeInteger(r.gen) && (r.gen as number) > 0;
}
