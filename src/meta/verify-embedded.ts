/**
 * VolumeAudit on the embedded store: reads every key of a volume's namespace straight from
 * LMDB (layout in embedded-namespace.ts) and repairs it in single synchronous transactions,
 * each checking its condition before its first write (lmdb-js does not roll a callback's
 * writes back when it throws).
 *
 * LMDB is safe to open from a second process while a gateway runs: readers see each commit
 * the writer makes, and writers take turns on LMDB's lock. What such a second process cannot
 * reach is the gateway's memory (the block maps of open forks, for one), which is why
 * `verify --repair` refuses to run while a node holds a lease.
 */
import type { Database } from 'lmdb';
import type { BlockRef, GcEntry } from './block-maps.js';
import { forkCode, gcMember } from './block-map-records.js';
import { namespaceKeys, toRecord, type Meta, type StoredNode } from './embedded-namespace.js';
import type { ForkKind } from './forks.js';
import { PARENT_OF_ROOT, ROOT_ID } from './namespace.js';
import { COUNTER_START, checkVolumeKey, foldName, isId, sortKey } from './namespace-records.js';
import { MAX_DEPTH, isRef, type AuditBlockMap, type AuditCounters, type AuditEntry, type AuditNode, type Reachability, type VolumeAudit } from './verify-store.js';

export class EmbeddedVolumeAudit implements VolumeAudit {
  private readonly k: ReturnType<typeof namespaceKeys>;

  constructor(private readonly db: Database<unknown, string>, volumeKey: string, private readonly fold: (name: string) => string) {
    checkVolumeKey(volumeKey);
    this.k = namespaceKeys(volumeKey);
  }

  async counters(): Promise<AuditCounters> {
    const m = this.meta();
    return { lastId: m.lastId, gen: m.gen, nodes: m.nodes, bytes: m.bytes, blockSize: m.blockSize };
  }

  async *nodes(): AsyncIterable<AuditNode> {
    const range = this.k.all('n');
    for (const { value } of this.db.getRange(range)) {
      const n = value as StoredNode;
      yield { ...toRecord(n), key: n.key };
    }
  }

  async *entries(): AsyncIterable<AuditEntry> {
    const range = this.k.all('c');
    for (const { key, value } of this.db.getRange(range)) {
      const rest = key.slice(range.start.length);
      const colon = rest.indexOf(':');
      const child = typeof value === 'number' ? value : 0;
      yield { parent: Number(rest.slice(0, colon)), key: rest.slice(colon + 1), child, indexed: true };
    }
  }

  async *blockMaps(): AsyncIterable<AuditBlockMap> {
    const range = this.k.all('b');
    let current: AuditBlockMap | undefined;
    for (const { key, value } of this.db.getRange(range)) {
      const [file, f, index] = key.slice(range.start.length).split(':');
      const fork: ForkKind = f === 'd' ? 'data' : 'rsrc';
      if (!current || current.file !== Number(file) || current.fork !== fork) {
        if (current) yield current;
        current = { file: Number(file), fork, blocks: [] };
      }
      if (isRef(value)) current.blocks.push([Number(index), { file: value.file, gen: value.gen }]);
    }
    if (current) yield current;
  }

  async *xattrOwners(): AsyncIterable<number> {
    const range = this.k.all('x');
    let last = 0;
    for (const key of this.db.getKeys(range)) {
      const rest = key.slice(range.start.length);
      const id = Number(rest.slice(0, rest.indexOf(':')));
      if (id !== last) yield id;
      last = id;
    }
  }

  async *gcEntries(): AsyncIterable<GcEntry> {
    for (const key of this.db.getKeys(this.k.gcAll)) {
      const e = this.k.parseGc(key);
      if (e) yield e;
    }
  }

  async node(id: number): Promise<AuditNode | undefined> {
    const n = this.storedNode(id);
    return n && { ...toRecord(n), key: n.key };
  }

  async entry(parent: number, key: string): Promise<number | undefined> {
    const v = this.db.get(this.k.child(parent, key));
    return typeof v === 'number' ? v : undefined;
  }

  async reachability(id: number): Promise<Reachability> {
    if (!this.storedNode(id)) return 'missing';
    let p = id;
    for (let steps = 0; p !== ROOT_ID; steps++) {
      if (steps > MAX_DEPTH) return 'loop';
      const n = this.storedNode(p);
      if (!n || this.db.get(this.k.child(n.parent, n.key)) !== p || this.storedNode(n.parent)?.kind !== 'dir') return 'unlinked';
      p = n.parent;
    }
    return 'reachable';
  }

  async childCount(dir: number): Promise<{ stored: number; entries: number } | undefined> {
    const n = this.storedNode(dir);
    if (n?.kind !== 'dir') return undefined;
    return { stored: n.childCount, entries: this.db.getKeysCount(this.k.childRange(dir)) };
  }

  async blockRef(file: number, fork: ForkKind, index: number): Promise<BlockRef | null> {
    const v = this.db.get(this.k.block(file, forkCode(fork), index));
    return isRef(v) ? { file: v.file, gen: v.gen } : null;
  }

  async indexAgrees(): Promise<boolean> {
    return true;
  }

  async gcQueued(entry: Omit<GcEntry, 'at'>): Promise<boolean> {
    return this.db.get(this.k.gcIndex(gcMember(entry))) !== undefined;
  }

  async dropEntry(parent: number, key: string, child: number | null): Promise<boolean> {
    if (child === null) return false; // one key per entry here: no index to fall out of step
    return this.db.transactionSync(() => {
      const k = this.k.child(parent, key);
      if (this.db.get(k) !== child) return false;
      const n = this.storedNode(child);
      if (n && n.parent === parent && n.key === key) return false;
      this.db.removeSync(k);
      const p = this.storedNode(parent);
      if (p?.kind === 'dir' && p.childCount > 0) this.db.putSync(this.k.node(parent), { ...p, childCount: p.childCount - 1 });
      return true;
    });
  }

  async reindex(): Promise<boolean> {
    return false;
  }

  async relink(id: number, dir: number, name: string, now: number): Promise<'ok' | 'exists' | 'not-found' | 'not-dir' | 'cycle'> {
    const key = sortKey(foldName(this.fold, name));
    return this.db.transactionSync(() => {
      const n = this.storedNode(id);
      const d = this.storedNode(dir);
      if (!n || !d) return 'not-found';
      if (d.kind !== 'dir') return 'not-dir';
      if (this.db.get(this.k.child(dir, key)) !== undefined) return 'exists';
      if (n.kind === 'dir' && this.isAncestorOrSelf(id, dir)) return 'cycle';
      // Child counts change by these amounts once every check has passed.
      const delta = new Map<number, number>([[dir, 1]]);
      const oldEntry = this.k.child(n.parent, n.key);
      const unlink = this.db.get(oldEntry) === id;
      if (unlink) delta.set(n.parent, (delta.get(n.parent) ?? 0) - 1);
      if (unlink) this.db.removeSync(oldEntry);
      this.db.putSync(this.k.node(id), { ...n, parent: dir, name, key });
      this.db.putSync(this.k.child(dir, key), id);
      for (const [p, by] of delta) {
        const pn = this.storedNode(p);
        if (pn?.kind !== 'dir' || by === 0) continue;
        this.db.putSync(this.k.node(p), { ...pn, childCount: Math.max(0, pn.childCount + by), ...(p === dir ? { modifiedAt: now } : {}) });
      }
      return 'ok';
    });
  }

  async recount(dir: number): Promise<boolean> {
    return this.db.transactionSync(() => {
      const n = this.storedNode(dir);
      if (n?.kind !== 'dir') return false;
      const count = this.db.getKeysCount(this.k.childRange(dir));
      if (count === n.childCount) return false;
      this.db.putSync(this.k.node(dir), { ...n, childCount: count });
      return true;
    });
  }

  async dropBlockMap(file: number, fork: ForkKind, now: number): Promise<boolean> {
    return this.db.transactionSync(() => {
      if (this.storedNode(file)) return false;
      const range = this.k.blockRange(file, forkCode(fork));
      const doomed = [...this.db.getRange(range)];
      for (const { key, value } of doomed) {
        if (isRef(value)) this.queue({ file: value.file, fork, index: Number(key.slice(range.start.length)), gen: value.gen }, now);
        this.db.removeSync(key);
      }
      return doomed.length > 0;
    });
  }

  async dropXattrs(id: number): Promise<boolean> {
    return this.db.transactionSync(() => {
      if (this.storedNode(id)) return false;
      const doomed = [...this.db.getKeys(this.k.xattrRange(id))];
      for (const key of doomed) this.db.removeSync(key);
      return doomed.length > 0;
    });
  }

  async queueGc(entries: readonly Omit<GcEntry, 'at'>[], now: number): Promise<number> {
    return this.db.transactionSync(() => {
      let added = 0;
      for (const e of entries) {
        if (this.db.get(this.k.gcIndex(gcMember(e))) !== undefined) continue;
        this.queue(e, now);
        added++;
      }
      return added;
    });
  }

  async fixCounters(fix: { lastId?: number; gen?: number; nodes?: number; bytes?: number }): Promise<boolean> {
    return this.db.transactionSync(() => {
      const m = this.meta();
      const next: Meta = {
        ...m,
        lastId: Math.max(m.lastId, fix.lastId ?? 0),
        gen: Math.max(m.gen, fix.gen ?? 0),
        nodes: fix.nodes ?? m.nodes,
        bytes: fix.bytes ?? m.bytes,
      };
      if (next.lastId === m.lastId && next.gen === m.gen && next.nodes === m.nodes && next.bytes === m.bytes) return false;
      this.db.putSync(this.k.meta, next);
      return true;
    });
  }

  private storedNode(id: number): StoredNode | undefined {
    return isId(id) ? (this.db.get(this.k.node(id)) as StoredNode | undefined) : undefined;
  }

  private meta(): Meta {
    const m = this.db.get(this.k.meta) as Partial<Meta> | undefined;
    return { lastId: m?.lastId ?? COUNTER_START, nodes: m?.nodes ?? 0, bytes: m?.bytes ?? 0, gen: m?.gen ?? 0, blockSize: m?.blockSize ?? 0 };
  }

  /** As EmbeddedNamespace queues a GC entry: the entry and its index by member, replacing an older one. */
  private queue(e: Omit<GcEntry, 'at'>, at: number): void {
    const member = gcMember(e);
    const old = this.db.get(this.k.gcIndex(member));
    if (typeof old === 'number') this.db.removeSync(this.k.gc(old, member));
    this.db.putSync(this.k.gc(at, member), 1);
    this.db.putSync(this.k.gcIndex(member), at);
  }

  private isAncestorOrSelf(id: number, start: number): boolean {
    let p = start;
    for (let steps = 0; p !== PARENT_OF_ROOT; steps++) {
      if (p === id || steps > MAX_DEPTH) return true;
      const n = this.storedNode(p);
      if (!n) return false;
      p = n.parent;
    }
    return false;
  }
}
