/**
 * A volume's namespace in the embedded store's LMDB database. All keys of a volume start
 * with `ns:<volume>:` (the volume key URI-encoded, so it never contains the ':' that ends it):
 *   meta                  { lastId, nodes, bytes }
 *   n:<id>                the node: its NodeRecord plus `key`, the sort key it is indexed under
 *   c:<parent>:<sortKey>  child id; `sortKey` of the child's fold key, so a range scan lists
 *                         a directory in fold-key order, one page at a time
 *   x:<id>:<sortKey>      xattr value (Buffer)
 *   k:<sortKey>           kv value (Buffer)
 *   b:<id>:<d|r>:<index>  a block's BlockRef { file, gen }; the index zero-padded to 16 digits
 *                         (2^53 has 16), so a range scan lists a fork's blocks by index and a
 *                         truncation removes one key range
 *   g:<at>:<member>       a GC entry (value 1): `at` offset by 2^53 and padded to 17 digits so
 *                         that negative times order too; `member` is gcMember(), whose byte
 *                         order breaks ties the same way as the Redis sorted set
 *   q:<member>            the `at` of that entry, so gcDone can find it from the object alone
 *                         and queuing an object again replaces its entry
 * The meta record also holds `gen` (the last generation handed out) and `blockSize` (0 until
 * fixed).
 *
 * Each change runs in one `db.transaction()` callback. lmdb-js does not roll back a callback's
 * writes when it throws, so every callback makes all of its checks first and returns a
 * NamespaceError instead of throwing; `tx` throws it once the transaction is over.
 */
import type { Database } from 'lmdb';
import type { MetaCallObserver } from './call-observer.js';
import { writeTransaction } from './embedded-tx.js';
import type { BlockRef, ForkCommit, ForkCommitResult, GcEntry } from './block-maps.js';
import {
  checkBlockSize,
  checkCommit,
  checkFork,
  checkGcEntries,
  checkGcQuery,
  checkGenerationCount,
  checkIndex,
  firstDropped,
  forkCode,
  gcMember,
  lengthField,
  parseGcMember,
  sameRef,
  type ForkCode,
} from './block-map-records.js';
import type { ForkKind } from './forks.js';
import {
  NamespaceError,
  PARENT_OF_ROOT,
  ROOT_ID,
  type ChildrenPage,
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
  applyPatch,
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
  setsForkLength,
  sortKey,
  unsortKey,
} from './namespace-records.js';

export interface StoredNode extends NodeRecord {
  key: string;
}

export interface Meta {
  lastId: number;
  nodes: number;
  /** Σ dataLength + rsrcLength over all files. */
  bytes: number;
  /** The last generation handed out. */
  gen: number;
  /** 0 until fixBlockSize. */
  blockSize: number;
}

const FORKS: readonly ForkKind[] = ['data', 'rsrc'];

export class EmbeddedNamespace implements NamespaceStore {
  private readonly k: ReturnType<typeof keys>;
  private readonly fold: (name: string) => string;

  /**
   * `syncCommits`: run each change as a synchronous LMDB transaction. Right when commits do
   * not wait for the disk (metadata.sync: periodic): a commit is then a few microseconds,
   * and skipping the hand-off to lmdb-js's write thread doubles one client's create rate
   * (bench/namespace). With a disk sync per commit it would block the event loop, so the
   * asynchronous, batched path is kept for that mode.
   */
  constructor(private readonly db: Database<unknown, string>, volumeKey: string, opts: NamespaceOptions, private readonly syncCommits = false, private readonly calls?: MetaCallObserver) {
    checkVolumeKey(volumeKey);
    this.k = namespaceKeys(volumeKey);
    this.fold = opts.fold;
  }

  async init(rootName: string, init: NodeInit): Promise<NodeRecord> {
    const root = newRoot(rootName, init, Date.now());
    return this.tx(() => {
      const existing = this.node(ROOT_ID);
      if (existing) return toRecord(existing);
      const meta = this.meta();
      this.db.putSync(this.k.meta, { ...meta, nodes: meta.nodes + 1 });
      this.db.putSync(this.k.node(ROOT_ID), { ...root, key: '' });
      return toRecord(root);
    });
  }

  async get(id: number): Promise<NodeRecord | undefined> {
    const node = isId(id) ? this.node(id) : undefined;
    return node && toRecord(node);
  }

  async lookup(parent: number, name: string): Promise<NodeRecord | undefined> {
    if (!isId(parent) || !isValidName(name)) return undefined;
    const id = this.db.get(this.k.child(parent, sortKey(foldName(this.fold, name))));
    const node = typeof id === 'number' ? this.node(id) : undefined;
    return node && toRecord(node);
  }

  async create(parent: number, name: string, kind: NodeKind, init: NodeInit, now: number): Promise<NodeRecord> {
    checkKind(kind);
    const key = sortKey(foldName(this.fold, name));
    const draft = newRecord(0, parent, name, kind, init, now);
    if (!isId(parent)) throw fail('not-found', `no directory ${parent}`);
    return this.tx(() => {
      const dir = this.node(parent);
      if (!dir) return fail('not-found', `no directory ${parent}`);
      if (dir.kind !== 'dir') return fail('not-dir', `${parent} is a file`);
      const entry = this.k.child(parent, key);
      if (this.db.get(entry) !== undefined) return fail('exists', `${JSON.stringify(name)} exists in ${parent}`);
      const meta = this.meta();
      const record: StoredNode = { ...draft, id: meta.lastId + 1, key };
      this.db.putSync(this.k.meta, { ...meta, lastId: record.id, nodes: meta.nodes + 1 });
      this.db.putSync(this.k.node(record.id), record);
      this.db.putSync(entry, record.id);
      this.db.putSync(this.k.node(parent), { ...dir, childCount: dir.childCount + 1, modifiedAt: now });
      return toRecord(record);
    });
  }

  async remove(id: number, now: number): Promise<NodeRecord> {
    checkNow(now);
    return this.tx(() => {
      if (id === ROOT_ID) return fail('is-root', 'the root cannot be removed');
      const node = isId(id) ? this.node(id) : undefined;
      if (!node) return fail('not-found', `no node ${id}`);
      if (node.kind === 'dir' && node.childCount > 0) return fail('not-empty', `directory ${id} has ${node.childCount} children`);
      const parent = this.mustNode(node.parent);
      const xattrs = [...this.db.getKeys(this.k.xattrRange(id))];
      const meta = this.meta();
      if (node.kind === 'file') for (const fork of FORKS) this.dropBlocks(id, fork, 0, now);
      this.db.removeSync(this.k.node(id));
      this.db.removeSync(this.k.child(node.parent, node.key));
      for (const x of xattrs) this.db.removeSync(x);
      this.db.putSync(this.k.node(parent.id), { ...parent, childCount: parent.childCount - 1, modifiedAt: now });
      this.db.putSync(this.k.meta, { ...meta, nodes: meta.nodes - 1, bytes: meta.bytes - forkBytes(node) });
      return toRecord(node);
    });
  }

  async move(id: number, newParent: number, newName: string, now: number): Promise<NodeRecord> {
    checkNow(now);
    const newKey = sortKey(foldName(this.fold, newName));
    return this.tx(() => {
      if (id === ROOT_ID) return fail('is-root', 'the root cannot be moved or renamed');
      const node = isId(id) ? this.node(id) : undefined;
      if (!node) return fail('not-found', `no node ${id}`);
      const target = isId(newParent) ? this.node(newParent) : undefined;
      if (!target) return fail('not-found', `no directory ${newParent}`);
      if (target.kind !== 'dir') return fail('not-dir', `${newParent} is a file`);
      if (node.kind === 'dir' && this.isAncestorOrSelf(id, newParent)) return fail('cycle', `${newParent} is inside ${id}`);
      const holder = this.db.get(this.k.child(newParent, newKey));
      if (holder !== undefined && holder !== id) return fail('exists', `${JSON.stringify(newName)} exists in ${newParent}`);
      const source = node.parent === newParent ? target : this.mustNode(node.parent);

      if (node.parent !== newParent || node.key !== newKey) {
        this.db.removeSync(this.k.child(node.parent, node.key));
        this.db.putSync(this.k.child(newParent, newKey), id);
      }
      const moved: StoredNode = { ...node, parent: newParent, name: newName, key: newKey };
      this.db.putSync(this.k.node(id), moved);
      if (source === target) {
        this.db.putSync(this.k.node(newParent), { ...target, modifiedAt: now });
      } else {
        this.db.putSync(this.k.node(source.id), { ...source, childCount: source.childCount - 1, modifiedAt: now });
        this.db.putSync(this.k.node(newParent), { ...target, childCount: target.childCount + 1, modifiedAt: now });
      }
      return toRecord(moved);
    });
  }

  async update(id: number, patch: NodePatch): Promise<NodeRecord> {
    checkPatch(patch);
    // The interface takes no time; blocks a shorter length drops are queued as of now.
    const now = Date.now();
    return this.tx(() => {
      const node = isId(id) ? this.node(id) : undefined;
      if (!node) return fail('not-found', `no node ${id}`);
      if (node.kind === 'dir' && setsForkLength(patch)) return fail('is-dir', `${id} is a directory and has no forks`);
      const updated = applyPatch(node, patch);
      const delta = forkBytes(updated) - forkBytes(node);
      const meta = this.meta();
      this.db.putSync(this.k.node(id), updated);
      if (delta !== 0) this.db.putSync(this.k.meta, { ...meta, bytes: meta.bytes + delta });
      if (node.kind === 'file') {
        for (const fork of FORKS) {
          const length = patch[lengthField(fork)];
          if (length !== undefined) this.dropBlocks(id, fork, firstDropped(length, meta.blockSize), now);
        }
      }
      return toRecord(updated);
    });
  }

  async exchange(a: number, b: number): Promise<[NodeRecord, NodeRecord]> {
    return this.tx((): [NodeRecord, NodeRecord] | NamespaceError => {
      const na = isId(a) ? this.node(a) : undefined;
      const nb = isId(b) ? this.node(b) : undefined;
      if (!na || !nb) return fail('not-found', `no node ${na ? b : a}`);
      if (na.kind === 'dir' || nb.kind === 'dir') return fail('is-dir', `${na.kind === 'dir' ? a : b} is a directory`);
      if (a === b) return [toRecord(na), toRecord(na)];
      const ua: StoredNode = { ...na };
      const ub: StoredNode = { ...nb };
      for (const f of EXCHANGED_FIELDS) {
        (ua as unknown as Record<string, unknown>)[f] = nb[f];
        (ub as unknown as Record<string, unknown>)[f] = na[f];
      }
      const xa = this.xattrs(a);
      const xb = this.xattrs(b);
      // Refs keep their `file`: it names the object, which moves with the bytes.
      const ba = FORKS.map((fork) => this.blocks(a, fork));
      const bb = FORKS.map((fork) => this.blocks(b, fork));
      this.db.putSync(this.k.node(a), ua);
      this.db.putSync(this.k.node(b), ub);
      for (const [name] of xa) this.db.removeSync(this.k.xattr(a, name));
      for (const [name] of xb) this.db.removeSync(this.k.xattr(b, name));
      for (const [name, value] of xb) this.db.putSync(this.k.xattr(a, name), value);
      for (const [name, value] of xa) this.db.putSync(this.k.xattr(b, name), value);
      FORKS.forEach((fork, i) => {
        const f = forkCode(fork);
        for (const [index] of ba[i]!) this.db.removeSync(this.k.block(a, f, index));
        for (const [index] of bb[i]!) this.db.removeSync(this.k.block(b, f, index));
        for (const [index, ref] of bb[i]!) this.db.putSync(this.k.block(a, f, index), ref);
        for (const [index, ref] of ba[i]!) this.db.putSync(this.k.block(b, f, index), ref);
      });
      return [toRecord(ua), toRecord(ub)];
    });
  }

  async children(parent: number, opts: { after?: string; offset?: number; limit: number }): Promise<ChildrenPage> {
    checkPage(opts);
    // No await from here on: every read below sees the same LMDB read snapshot.
    const dir = isId(parent) ? this.node(parent) : undefined;
    if (!dir) throw fail('not-found', `no directory ${parent}`);
    if (dir.kind !== 'dir') throw fail('not-dir', `${parent} is a file`);
    if (opts.limit === 0) return { entries: [] };
    const range = this.k.childRange(parent);
    const from =
      opts.after !== undefined
        ? { start: range.start + sortKey(opts.after), exclusiveStart: true }
        : { start: range.start, offset: opts.offset ?? 0 };
    const entries: NodeRecord[] = [];
    let last: string | undefined;
    for (const { key, value } of this.db.getRange({ ...from, end: range.end, limit: opts.limit })) {
      entries.push(toRecord(this.mustNode(value as number)));
      last = key;
    }
    return last === undefined ? { entries } : { entries, last: unsortKey(last.slice(range.start.length)) };
  }

  async getXattr(id: number, name: string): Promise<Buffer | undefined> {
    checkString(name, 'xattr name');
    this.mustExist(id);
    const value = this.db.get(this.k.xattr(id, sortKey(name)));
    return value === undefined ? undefined : toBuffer(value);
  }

  async setXattr(id: number, name: string, value: Buffer, mode: XattrMode): Promise<void> {
    checkXattrName(name);
    if (!Buffer.isBuffer(value)) throw new RangeError('xattr value must be a Buffer');
    const copy = Buffer.from(value);
    const key = this.k.xattr(id, sortKey(name));
    await this.tx(() => {
      if (!isId(id) || !this.node(id)) return fail('not-found', `no node ${id}`);
      const exists = this.db.get(key) !== undefined;
      if (mode === 'create' && exists) return fail('exists', `xattr ${JSON.stringify(name)} exists on ${id}`);
      if (mode === 'replace' && !exists) return fail('no-attr', `no xattr ${JSON.stringify(name)} on ${id}`);
      this.db.putSync(key, copy);
      return undefined;
    });
  }

  async removeXattr(id: number, name: string): Promise<void> {
    checkString(name, 'xattr name');
    const key = this.k.xattr(id, sortKey(name));
    await this.tx(() => {
      if (!isId(id) || !this.node(id)) return fail('not-found', `no node ${id}`);
      if (this.db.get(key) === undefined) return fail('no-attr', `no xattr ${JSON.stringify(name)} on ${id}`);
      this.db.removeSync(key);
      return undefined;
    });
  }

  async listXattrs(id: number): Promise<string[]> {
    this.mustExist(id);
    return this.xattrs(id).map(([name]) => unsortKey(name));
  }

  async kvGet(key: string): Promise<Buffer | undefined> {
    checkString(key, 'kv key');
    const value = this.db.get(this.k.kv(sortKey(key)));
    return value === undefined ? undefined : toBuffer(value);
  }

  async kvSet(key: string, value: Buffer): Promise<void> {
    checkString(key, 'kv key');
    if (!Buffer.isBuffer(value)) throw new RangeError('kv value must be a Buffer');
    await this.db.put(this.k.kv(sortKey(key)), Buffer.from(value));
  }

  async kvDelete(key: string): Promise<boolean> {
    checkString(key, 'kv key');
    const k = this.k.kv(sortKey(key));
    // lmdb-js's remove() resolves true whether or not the key was there.
    return this.tx(() => this.db.get(k) !== undefined && this.db.removeSync(k));
  }

  async kvList(prefix: string): Promise<[string, Buffer][]> {
    checkString(prefix, 'kv prefix');
    const start = this.k.kv(sortKey(prefix));
    const skip = this.k.kv('').length;
    const out: [string, Buffer][] = [];
    for (const { key, value } of this.db.getRange({ start, end: this.k.kvEnd })) {
      if (!key.startsWith(start)) break;
      out.push([unsortKey(key.slice(skip)), toBuffer(value)]);
    }
    return out;
  }

  async stats(): Promise<{ nodes: number; lastId: number; bytes: number }> {
    const { nodes, lastId, bytes } = this.meta();
    return { nodes, lastId, bytes };
  }

  async fixBlockSize(proposed: number): Promise<number> {
    checkBlockSize(proposed);
    const fixed = this.meta().blockSize;
    if (fixed > 0) return fixed;
    return this.tx(() => {
      const meta = this.meta();
      if (meta.blockSize > 0) return meta.blockSize;
      this.db.putSync(this.k.meta, { ...meta, blockSize: proposed });
      return proposed;
    });
  }

  async reserveGenerations(count: number): Promise<number> {
    checkGenerationCount(count);
    return this.tx(() => {
      const meta = this.meta();
      const last = meta.gen + count;
      if (!Number.isSafeInteger(last)) return new RangeError('the volume has run out of block generations');
      this.db.putSync(this.k.meta, { ...meta, gen: last });
      return meta.gen + 1;
    });
  }

  async blockMap(fileId: number, fork: ForkKind): Promise<Map<number, BlockRef>> {
    checkFork(fork);
    // No await from here on: the node and its blocks come from one read snapshot.
    this.mustBeFile(fileId);
    return new Map(this.blocks(fileId, fork));
  }

  async blockRef(fileId: number, fork: ForkKind, index: number): Promise<BlockRef | null> {
    checkFork(fork);
    checkIndex(index);
    this.mustBeFile(fileId);
    return this.ref(fileId, forkCode(fork), index);
  }

  async commitFork(fileId: number, fork: ForkKind, commit: ForkCommit): Promise<ForkCommitResult> {
    checkCommit(fork, commit);
    // Copies, so a caller that changes its objects while the transaction waits changes nothing.
    const changes = commit.changes.map((c) => ({ index: c.index, expect: copyRef(c.expect), next: copyRef(c.next) }));
    const { length, modifiedAt, now } = commit;
    if (!isId(fileId)) throw fail('not-found', `no file ${fileId}`);
    const f = forkCode(fork);
    return this.tx((): ForkCommitResult | NamespaceError => {
      const node = this.node(fileId);
      if (!node) return fail('not-found', `no file ${fileId}`);
      if (node.kind === 'dir') return fail('is-dir', `${fileId} is a directory and has no forks`);
      const current = changes.map((c) => this.ref(fileId, f, c.index));
      const conflicts = changes.filter((c, i) => !sameRef(c.expect, current[i]!)).map((c) => c.index);
      if (conflicts.length > 0) return { ok: false, conflicts };

      changes.forEach((c, i) => {
        const cur = current[i]!;
        if (sameRef(c.next, cur)) return;
        if (cur) this.queueGc({ file: cur.file, fork, index: c.index, gen: cur.gen }, now);
        if (c.next) this.db.putSync(this.k.block(fileId, f, c.index), c.next);
        else this.db.removeSync(this.k.block(fileId, f, c.index));
      });
      const meta = this.meta();
      const updated: StoredNode = { ...node };
      if (length !== undefined) {
        // After the changes, so a `next` past the new end goes straight onto the queue.
        this.dropBlocks(fileId, fork, firstDropped(length, meta.blockSize), now);
        updated[lengthField(fork)] = length;
      }
      if (modifiedAt !== undefined) updated.modifiedAt = modifiedAt;
      const delta = forkBytes(updated) - forkBytes(node);
      if (length !== undefined || modifiedAt !== undefined) this.db.putSync(this.k.node(fileId), updated);
      if (delta !== 0) this.db.putSync(this.k.meta, { ...meta, bytes: meta.bytes + delta });
      return { ok: true, node: toRecord(updated) };
    });
  }

  async gcDue(before: number, limit: number): Promise<GcEntry[]> {
    checkGcQuery(before, limit);
    if (limit === 0) return [];
    const out: GcEntry[] = [];
    for (const key of this.db.getKeys({ ...this.k.gcUntil(before), limit })) {
      const entry = this.k.parseGc(key);
      if (!entry) throw new Error(`embedded namespace is inconsistent: malformed GC key ${JSON.stringify(key)}`);
      out.push(entry);
    }
    return out;
  }

  async gcDone(entries: readonly GcEntry[]): Promise<void> {
    checkGcEntries(entries);
    const members = entries.map(gcMember);
    if (members.length === 0) return;
    await this.tx(() => {
      for (const m of members) this.unqueueGc(m);
      return undefined;
    });
  }

  async gcPending(): Promise<number> {
    return this.db.getKeysCount(this.k.gcAll);
  }

  /** Runs `body` as one LMDB write transaction; an error it returns is thrown here. */
  private tx<T>(body: () => T | NamespaceError | RangeError): Promise<T> {
    return writeTransaction<T>(this.db, this.syncCommits, body, this.calls, 'namespace.write');
  }

  private node(id: number): StoredNode | undefined {
    return this.db.get(this.k.node(id)) as StoredNode | undefined;
  }

  /** For nodes the index says exist: their absence means a broken store, not a caller error. */
  private mustNode(id: number): StoredNode {
    const node = this.node(id);
    if (!node) throw new Error(`embedded namespace is inconsistent: node ${id} is referenced but missing`);
    return node;
  }

  private mustExist(id: number): void {
    if (!isId(id) || !this.node(id)) throw fail('not-found', `no node ${id}`);
  }

  private mustBeFile(id: number): void {
    const node = isId(id) ? this.node(id) : undefined;
    if (!node) throw fail('not-found', `no file ${id}`);
    if (node.kind === 'dir') throw fail('is-dir', `${id} is a directory and has no forks`);
  }

  private meta(): Meta {
    return readMeta(this.db.get(this.k.meta));
  }

  private ref(id: number, f: ForkCode, index: number): BlockRef | null {
    const v = this.db.get(this.k.block(id, f, index));
    return v === undefined ? null : copyRef(v as BlockRef);
  }

  /** [index, ref] of a fork's blocks by ascending index. */
  private blocks(id: number, fork: ForkKind): [number, BlockRef][] {
    const range = this.k.blockRange(id, forkCode(fork));
    const out: [number, BlockRef][] = [];
    for (const { key, value } of this.db.getRange(range)) out.push([Number(key.slice(range.start.length)), copyRef(value as BlockRef)]);
    return out;
  }

  /** Moves every block of the fork at or past `from` onto the GC queue, stamped `at`. */
  private dropBlocks(id: number, fork: ForkKind, from: number, at: number): void {
    if (!Number.isFinite(from)) return;
    const f = forkCode(fork);
    const range = this.k.blockRange(id, f);
    // Collected before any removal, as remove() does with xattrs, so no cursor walks keys being deleted.
    const doomed = [...this.db.getRange({ start: this.k.block(id, f, from), end: range.end })];
    for (const { key, value } of doomed) {
      const ref = value as BlockRef;
      this.queueGc({ file: ref.file, fork, index: Number(key.slice(range.start.length)), gen: ref.gen }, at);
      this.db.removeSync(key);
    }
  }

  private queueGc(entry: Omit<GcEntry, 'at'>, at: number): void {
    const member = gcMember(entry);
    this.unqueueGc(member);
    this.db.putSync(this.k.gc(at, member), 1);
    this.db.putSync(this.k.gcIndex(member), at);
  }

  private unqueueGc(member: string): void {
    const at = this.db.get(this.k.gcIndex(member));
    if (typeof at !== 'number') return;
    this.db.removeSync(this.k.gc(at, member));
    this.db.removeSync(this.k.gcIndex(member));
  }

  /** Walks up from `start`; the bound turns a corrupt parent loop into an error, not a hang. */
  private isAncestorOrSelf(id: number, start: number): boolean {
    let steps = this.meta().nodes + 1;
    for (let p = start; p !== PARENT_OF_ROOT; p = this.mustNode(p).parent) {
      if (p === id) return true;
      if (--steps < 0) throw new Error(`embedded namespace is inconsistent: the ancestors of ${start} loop`);
    }
    return false;
  }

  /** [sort key of the name, value] in name order. */
  private xattrs(id: number): [string, Buffer][] {
    const range = this.k.xattrRange(id);
    const out: [string, Buffer][] = [];
    for (const { key, value } of this.db.getRange(range)) out.push([key.slice(range.start.length), toBuffer(value)]);
    return out;
  }
}

/** Where a volume's namespace keys start. */

const INDEX_DIGITS = 16;
const TIME_DIGITS = 17;
const TIME_OFFSET = 2n ** 53n;

/** Decimal digits whose string order is numeric order, for every safe integer (negative too). */
function orderedTime(at: number): string {
  return (BigInt(at) + TIME_OFFSET).toString().padStart(TIME_DIGITS, '0');
}

/** The meta record as stored, with the defaults of a volume that has none yet. */
export function readMeta(value: unknown): Meta {
  const meta = value as Partial<Meta> | undefined;
  return {
    lastId: meta?.lastId ?? COUNTER_START,
    nodes: meta?.nodes ?? 0,
    bytes: meta?.bytes ?? 0,
    gen: meta?.gen ?? 0,
    blockSize: meta?.blockSize ?? 0,
  };
}

/** Where every key of a volume's namespace starts; the volume key never contains the ':' that ends it. */
export const NAMESPACE_PREFIX = 'ns:';

export function namespaceKeys(volumeKey: string) {
  return keys(`${NAMESPACE_PREFIX}${encodeURIComponent(volumeKey)}:`);
}

/** ';' follows ':', so [p:, p;) holds exactly the keys that start with p:. */
function keys(p: string) {
  const range = (prefix: string) => ({ start: `${prefix}:`, end: `${prefix};` });
  const gcStart = `${p}g:`;
  return {
    meta: `${p}meta`,
    node: (id: number) => `${p}n:${id}`,
    nodeRange: range(`${p}n`),
    child: (parent: number, key: string) => `${p}c:${parent}:${key}`,
    childRange: (parent: number) => range(`${p}c:${parent}`),
    xattr: (id: number, key: string) => `${p}x:${id}:${key}`,
    xattrRange: (id: number) => range(`${p}x:${id}`),
    kv: (key: string) => `${p}k:${key}`,
    kvEnd: `${p}k;`,
    kvRange: range(`${p}k`),
    block: (id: number, f: ForkCode, index: number) => `${p}b:${id}:${f}:${String(index).padStart(INDEX_DIGITS, '0')}`,
    blockRange: (id: number, f: ForkCode) => range(`${p}b:${id}:${f}`),
    gc: (at: number, member: string) => `${gcStart}${orderedTime(at)}:${member}`,
    gcUntil: (before: number) => ({ start: gcStart, end: `${gcStart}${orderedTime(before)};` }),
    gcAll: range(`${p}g`),
    parseGc(key: string): GcEntry | undefined {
      const rest = key.slice(gcStart.length);
      if (!key.startsWith(gcStart) || !/^\d{17}:/.test(rest)) return undefined;
      return parseGcMember(rest.slice(TIME_DIGITS + 1), Number(BigInt(rest.slice(0, TIME_DIGITS)) - TIME_OFFSET));
    },
    gcIndex: (member: string) => `${p}q:${member}`,
    /** Every key of one kind: 'n' nodes, 'c' entries, 'x' xattrs, 'b' blocks. */
    all: (kind: 'n' | 'c' | 'x' | 'b') => range(`${p}${kind}`),
  };
}

/** Only the declared fields leave the store, with a Buffer of our own. */
export function toRecord(n: NodeRecord): NodeRecord {
  return {
    id: n.id,
    parent: n.parent,
    name: n.name,
    kind: n.kind,
    attributes: n.attributes,
    createdAt: n.createdAt,
    modifiedAt: n.modifiedAt,
    backupAt: n.backupAt,
    finderInfo: toBuffer(n.finderInfo),
    uid: n.uid,
    gid: n.gid,
    mode: n.mode,
    dataLength: n.dataLength,
    rsrcLength: n.rsrcLength,
    childCount: n.childCount,
  };
}

function copyRef(r: BlockRef): BlockRef;
function copyRef(r: BlockRef | null): BlockRef | null;
function copyRef(r: BlockRef | null): BlockRef | null {
  return r === null ? null : { file: r.file, gen: r.gen };
}

function forkBytes(n: NodeRecord): number {
  return n.dataLength + n.rsrcLength;
}

export function toBuffer(v: unknown): Buffer {
  return Buffer.from(v as Uint8Array);
}
