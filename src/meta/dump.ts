/**
 * What a metadata store keeps that a restarted gateway relies on, in a form neither backend
 * owns: the unit a migration reads from one store and writes into another. Transient state
 * (open forks, deny modes, locks, node and named leases, sessions, replay caches) is not
 * part of it: a stopped gateway has none that matters.
 */
import type { BlockRef } from './block-maps.js';
import type { ServerIdentity, UserRecord } from './meta-store.js';
import type { NodeRecord } from './namespace.js';

/** The server-wide records. */
export interface GlobalDump {
  /** Absent until a gateway first started on the store (`user add` alone does not make one). */
  identity?: ServerIdentity;
  /** With the key each is stored under (userKey of the name), sorted by it. */
  users: { key: string; user: UserRecord }[];
  /** The last uid handed out; absent before the first user. uids are never reused. */
  uidCounter?: number;
}

/** A volume's counters: what its `meta` record holds in either backend. */
export interface VolumeCounters {
  /** The CNID counter: the last CNID handed out. */
  lastId: number;
  nodes: number;
  /** Σ dataLength + rsrcLength. */
  bytes: number;
  /** The last block generation handed out. */
  gen: number;
  /** 0 while no block size is fixed. */
  blockSize: number;
}

/** One node of a volume's namespace with everything that hangs off it. */
export interface NodeDump {
  record: NodeRecord;
  /** The sort key (sortKey of the fold key) it is indexed under in its parent; '' for the root. */
  key: string;
  /** Name and value, in code-unit order of the names. */
  xattrs: [string, Buffer][];
  /** Block index and ref, by ascending index. Directories have none. */
  data: [number, BlockRef][];
  rsrc: [number, BlockRef][];
}

/** How many records of each kind one volume holds: progress, summaries and count checks. */
export interface VolumeCensus {
  nodes: number;
  xattrs: number;
  /** Desktop database and other per-volume key/value records. */
  kv: number;
  blocks: number;
  /** Objects waiting on the GC queue. */
  gc: number;
}

/**
 * The fold of the namespace readers a migration makes: it lists and reads by CNID, never
 * looks a name up, so a call is a bug. Those readers stay outside the stores' namespace
 * caches, which keep the first caller's fold for good.
 */
export const NO_FOLD = {
  fold(): never {
    throw new Error('a migration does not look names up');
  },
};

export function emptyCensus(): VolumeCensus {
  return { nodes: 0, xattrs: 0, kv: 0, blocks: 0, gc: 0 };
}

export function censusTotal(c: VolumeCensus): number {
  return c.nodes + c.xattrs + c.kv + c.blocks + c.gc;
}

