/**
 * Reads every record a restarted gateway relies on out of the embedded store's LMDB
 * database, in the backend-neutral form of dump.ts: the source side of a migration.
 *
 * The census walks every key once and sorts it into a kind: records to copy, records that
 * other records imply (the uid index, the child index, the GC index), transient state, and
 * anything else, which it reports instead of leaving behind. A new kind of record that
 * nobody taught the migration about then stops it rather than being lost on the way.
 */
import type { Database } from 'lmdb';
import type { BlockRef, GcEntry } from './block-maps.js';
import type { ForkKind } from './forks.js';
import { emptyCensus, NO_FOLD, type GlobalDump, type NodeDump, type VolumeCensus, type VolumeCounters } from './dump.js';
import { EmbeddedNamespace, NAMESPACE_PREFIX, namespaceKeys, readMeta, toBuffer, toRecord, type StoredNode } from './embedded-namespace.js';
import { NODE_RANGE, STORE_KEYS, UID_RANGE, USER_RANGE } from './embedded-keys.js';
import { forkCode } from './block-map-records.js';
import type { ServerIdentity, UserRecord } from './meta-store.js';
import { ROOT_ID, type NamespaceStore } from './namespace.js';
import { copyIdentity, copyPassword } from './records.js';
import { unsortKey } from './namespace-records.js';

export interface StoreCensus {
  identity: boolean;
  users: number;
  /** By volume key, in key order. */
  volumes: Map<string, VolumeCensus>;
  /** Keys of transient state (sessions, open forks, locks, leases): not copied. */
  transient: number;
  /** Up to MAX_UNKNOWN keys of no kind the migration knows; empty when all are known. */
  unknown: string[];
}

const MAX_UNKNOWN = 5;

/**
 * Top-level key kinds of transient state: node leases and named leases (embedded-store.ts),
 * open forks and locks (embedded-forks.ts), sessions and replay caches (embedded-sessions.ts).
 */
const TRANSIENT = [NODE_RANGE.start, 'lease:', 'fk:', 'ss:'];

/**
 * Per-volume kinds (the part of the key after `ns:<volume>:` up to the next ':') that the
 * dump carries, or that follow from what it carries: the child index from each node's parent
 * and key, the GC index from the queue.
 */
const VOLUME_KINDS = new Map<string, keyof VolumeCensus | 'implied'>([
  ['n', 'nodes'],
  ['x', 'xattrs'],
  ['k', 'kv'],
  ['b', 'blocks'],
  ['g', 'gc'],
  ['c', 'implied'],
  ['q', 'implied'],
]);

export class EmbeddedDump {
  constructor(private readonly db: Database<unknown, string>) {}

  /** A reader of the volume's namespace through the backend's own code (see NO_FOLD). */
  namespace(volumeKey: string): NamespaceStore {
    return new EmbeddedNamespace(this.db, volumeKey, NO_FOLD);
  }

  census(): StoreCensus {
    const out: StoreCensus = { identity: false, users: 0, volumes: new Map(), transient: 0, unknown: [] };
    for (const key of this.db.getKeys()) {
      if (key === STORE_KEYS.identity) out.identity = true;
      else if (key.startsWith(USER_RANGE.start)) out.users++;
      else if (key.startsWith(UID_RANGE.start) || key === STORE_KEYS.uidCounter) continue;
      else if (TRANSIENT.some((p) => key.startsWith(p))) out.transient++;
      else if (!this.countVolumeKey(key, out.volumes) && out.unknown.length < MAX_UNKNOWN) out.unknown.push(key);
    }
    return out;
  }

  globals(): GlobalDump {
    const identity = this.db.get(STORE_KEYS.identity) as ServerIdentity | undefined;
    const counter = this.db.get(STORE_KEYS.uidCounter);
    const users: GlobalDump['users'] = [];
    for (const { key, value } of this.db.getRange(USER_RANGE)) {
      const u = value as UserRecord;
      users.push({ key: key.slice(USER_RANGE.start.length), user: { name: u.name, uid: u.uid, gid: u.gid, password: copyPassword(u.password), createdAt: u.createdAt, updatedAt: u.updatedAt } });
    }
    return {
      ...(identity ? { identity: copyIdentity({ signature: toBuffer(identity.signature), createdAt: identity.createdAt }) } : {}),
      users,
      ...(typeof counter === 'number' ? { uidCounter: counter } : {}),
    };
  }

  counters(volumeKey: string): VolumeCounters {
    const { lastId, nodes, bytes, gen, blockSize } = readMeta(this.db.get(namespaceKeys(volumeKey).meta));
    return { lastId, nodes, bytes, gen, blockSize };
  }

  /** Every node with its xattrs and block maps, in key order (not CNID order). */
  *nodes(volumeKey: string): Generator<NodeDump> {
    const k = namespaceKeys(volumeKey);
    for (const { value } of this.db.getRange(k.nodeRange)) {
      const stored = value as StoredNode;
      const record = toRecord(stored);
      if (typeof stored.key !== 'string' || (stored.key === '') !== (record.id === ROOT_ID)) {
        throw new Error(`the embedded store holds node ${record.id} of volume ${JSON.stringify(volumeKey)} without the key it is listed under in its folder`);
      }
      const xattrs: [string, Buffer][] = [];
      const xr = k.xattrRange(record.id);
      for (const { key, value: v } of this.db.getRange(xr)) xattrs.push([unsortKey(key.slice(xr.start.length)), toBuffer(v)]);
      yield {
        record,
        key: stored.key,
        xattrs,
        data: record.kind === 'file' ? this.blocks(volumeKey, record.id, 'data') : [],
        rsrc: record.kind === 'file' ? this.blocks(volumeKey, record.id, 'rsrc') : [],
      };
    }
  }

  /** The key/value area (desktop database), in key order. */
  *kv(volumeKey: string): Generator<[string, Buffer]> {
    const r = namespaceKeys(volumeKey).kvRange;
    for (const { key, value } of this.db.getRange(r)) yield [unsortKey(key.slice(r.start.length)), toBuffer(value)];
  }

  /** The GC queue, oldest first. */
  *gc(volumeKey: string): Generator<GcEntry> {
    const k = namespaceKeys(volumeKey);
    for (const key of this.db.getKeys(k.gcAll)) {
      const entry = k.parseGc(key);
      if (!entry) throw new Error(`the embedded store holds a malformed GC entry: ${JSON.stringify(key)}`);
      yield entry;
    }
  }

  private blocks(volumeKey: string, id: number, fork: ForkKind): [number, BlockRef][] {
    const range = namespaceKeys(volumeKey).blockRange(id, forkCode(fork));
    const out: [number, BlockRef][] = [];
    for (const { key, value } of this.db.getRange(range)) {
      const ref = value as BlockRef;
      out.push([Number(key.slice(range.start.length)), { file: ref.file, gen: ref.gen }]);
    }
    return out;
  }

  /** Counts a namespace key into its volume's census; false for a key of no known kind. */
  private countVolumeKey(key: string, volumes: Map<string, VolumeCensus>): boolean {
    if (!key.startsWith(NAMESPACE_PREFIX)) return false;
    const end = key.indexOf(':', NAMESPACE_PREFIX.length);
    if (end < 0) return false;
    const volumeKey = decodeVolumeKey(key.slice(NAMESPACE_PREFIX.length, end));
    const rest = key.slice(end + 1);
    const colon = rest.indexOf(':');
    const kind = rest === 'meta' ? 'implied' : colon > 0 ? VOLUME_KINDS.get(rest.slice(0, colon)) : undefined;
    if (volumeKey === undefined || kind === undefined) return false;
    let census = volumes.get(volumeKey);
    if (!census) volumes.set(volumeKey, (census = emptyCensus()));
    if (kind !== 'implied') census[kind]++;
    return true;
  }
}

function decodeVolumeKey(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}
