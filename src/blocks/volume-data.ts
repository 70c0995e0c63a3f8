/**
 * The bytes of one volume's forks on this node: reads and writes through the band cache,
 * uploads through the pipeline, block maps and fork lengths committed to the metadata store,
 * and the sync that ties them together (FPSyncFork/FPSyncDir's "in the object store and
 * committed").
 *
 * Per fork, a `ForkState` holds the live length (with writes not yet committed) and the block
 * map as last committed. It lives while the fork is open on this node or holds dirty blocks.
 *
 * Coherence with the other node of a pair: a state is reloaded from the metadata store when
 * the store says another node committed the fork (BlockMapStore.watchForks: Redis pub/sub,
 * published in the same step as the commit), when the feed may have missed notices, and at
 * every open; reads and writes wait for a reload under way. Clean cached blocks whose object
 * is no longer the one the block map names are dropped when next touched, so a reload is all
 * it takes to stop serving replaced bytes.
 */
import { sameRef, type BlockMapStore, type BlockRef } from '../meta/block-maps.js';
import type { ForkKind } from '../meta/forks.js';
import { NamespaceError, type NodeRecord } from '../meta/namespace.js';
import { ObjectNotFoundError } from '../objects/errors.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Logger } from '../ops/log.js';
import type { BandCache, CachedBlock, BlockAddress } from './band-cache.js';
import { Mutex } from './mutex.js';
import { blockObjectKey } from './object-names.js';
import { Priority, UploadPipeline } from './upload-pipeline.js';

export interface VolumeDataOptions {
  volumeKey: string;
  /** The volume's fixed block size (BlockMapStore.fixBlockSize). */
  blockSize: number;
  store: BlockMapStore & { get(id: number): Promise<NodeRecord | undefined> };
  objects: ObjectStore;
  cache: BandCache;
  uploads: UploadPipeline;
  /** Makes committed metadata durable (MetaStore.sync). */
  durable: () => Promise<void>;
  /** How long a sync may wait for the object and metadata stores before it fails. */
  syncTimeoutMs: number;
  /** A block not written to the end is uploaded this long after its last write. */
  uploadDelayMs: number;
  log: Logger;
  now?: () => number;
}

/** Why a data operation failed, in terms the volume layer restates as FsError. */
export class DataError extends Error {
  constructor(readonly reason: 'timeout' | 'gone', message: string) {
    super(message);
    this.name = 'DataError';
  }
}

export class ForkState {
  attached = 0;
  /** The fork's length including writes not yet committed. */
  length: number;
  committedLength: number;
  /** Length or modification date differ from what the store holds. */
  metaDirty = false;
  modifiedAt: number | null = null;
  /** A truncate whose commit failed: the next commit cuts the fork there first. */
  pendingCut: number | null = null;
  /** Serialises commits of this fork, so a truncate and an upload's length never cross. */
  readonly commitLock = new Mutex();
  /** Another node changed the fork since the last reload (or a reload failed). */
  stale = false;
  /** The reload under way; reads and writes wait for it. */
  refreshing: Promise<void> | null = null;

  constructor(readonly file: number, readonly fork: ForkKind, length: number, readonly refs: Map<number, BlockRef>) {
    this.length = length;
    this.committedLength = length;
  }
}

const GEN_BATCH = 64;
/** Blocks fetched ahead of a sequential reader that missed the cache. */
const READ_AHEAD_BLOCKS = 2;
const EMPTY = Buffer.alloc(0);

export class VolumeData {
  private readonly forks = new Map<string, ForkState>();
  private readonly loading = new Map<string, Promise<ForkState>>();
  private readonly fetching = new Map<string, Promise<Buffer>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private gens: { next: number; end: number } = { next: 0, end: 0 };
  private genLock = new Mutex();
  private readonly now: () => number;
  readonly blockSize: number;
  /** Counts commits that changed a fork's length: a volume's cached byte count is stale once it moves. */
  lengthCommits = 0;
  /**
   * Block reads since start: served from the cache (hits), or waiting on the object store
   * (misses, a read-ahead GET joined included). Reads of holes, which need neither, are not counted.
   */
  readonly reads = { hits: 0, misses: 0 };
  /** Stops the change notices; undefined when no other node shares the store. */
  private readonly unwatch: (() => void) | undefined;

  private constructor(private readonly o: VolumeDataOptions) {
    this.now = o.now ?? Date.now;
    this.blockSize = o.blockSize;
    this.unwatch = o.store.watchForks?.({
      changed: (file, fork) => {
        const st = this.forks.get(forkKey(file, fork));
        if (st) this.refreshInBackground(st);
      },
      gap: () => {
        for (const st of this.forks.values()) this.refreshInBackground(st);
      },
    });
  }

  /** Stops listening for other nodes' changes. */
  close(): void {
    this.unwatch?.();
  }

  /** Opens the volume's data and starts uploading the dirty blocks a crash left behind. */
  static async open(o: VolumeDataOptions): Promise<VolumeData> {
    const d = new VolumeData(o);
    await d.recover();
    return d;
  }

  // ---- fork states -----------------------------------------------------------------------

  /** The fork's state, loaded from the store if this node holds none (fails with the store's not-found/is-dir). */
  async attach(file: number, fork: ForkKind): Promise<ForkState> {
    const have = this.forks.get(forkKey(file, fork));
    // Held already: another node may have changed it since, and a notice is only as quick
    // as pub/sub, so an open asks the store itself.
    if (have && this.unwatch) await this.refresh(have);
    const st = have ?? (await this.state(file, fork));
    st.attached++;
    return st;
  }

  /** An open ended: its dirty blocks start uploading now, and the state goes once clean. `log`: the session's. */
  detach(st: ForkState, log: Logger = this.o.log): void {
    st.attached = Math.max(0, st.attached - 1);
    if (st.attached > 0) return;
    for (const b of this.o.cache.blocksOf(this.o.volumeKey, st.file, st.fork)) if (b.dirty) this.uploadNow(b, Priority.Background);
    if (this.dirtyOf(st).length === 0 && st.metaDirty) {
      this.commitMeta(st).catch((err: unknown) => log.warn({ file: st.file, fork: st.fork, err }, 'fork length commit after close failed; the next sync or upload retries'));
    }
    this.release(st);
  }

  /** The length of a fork whose length this node has changed and not yet committed. */
  liveLength(file: number, fork: ForkKind): number | undefined {
    const st = this.forks.get(forkKey(file, fork));
    // Otherwise the store's length is as new as ours, or newer (another node's commit).
    return st && (st.metaDirty || st.length !== st.committedLength) ? st.length : undefined;
  }

  /** Bytes written on this node beyond the committed lengths (for the volume's used space). */
  get pendingGrowth(): number {
    let n = 0;
    for (const st of this.forks.values()) n += st.length - st.committedLength;
    return n;
  }

  /** Files with bytes or lengths not yet committed. */
  dirtyFiles(): number[] {
    const out = new Set<number>();
    for (const b of this.o.cache.dirtyBlocks(this.o.volumeKey)) out.add(b.addr.file);
    for (const st of this.forks.values()) if (st.metaDirty) out.add(st.file);
    return [...out];
  }

  private async state(file: number, fork: ForkKind): Promise<ForkState> {
    const key = forkKey(file, fork);
    const have = this.forks.get(key);
    if (have) return have;
    let p = this.loading.get(key);
    if (!p) {
      p = this.load(file, fork).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private async load(file: number, fork: ForkKind): Promise<ForkState> {
    const refs = await this.o.store.blockMap(file, fork);
    const node = await this.o.store.get(file);
    if (!node) throw new DataError('gone', `file ${file} is gone`);
    const st = new ForkState(file, fork, fork === 'data' ? node.dataLength : node.rsrcLength, refs);
    // Clean blocks cached from an earlier open may have been replaced by another node since.
    for (const b of this.o.cache.blocksOf(this.o.volumeKey, file, fork)) {
      if (!b.dirty && !sameRef(b.base, refs.get(b.addr.index) ?? null)) await b.lock.run(() => this.o.cache.discardClean(b));
    }
    this.forks.set(forkKey(file, fork), st);
    return st;
  }

  /**
   * Reloads a held fork's block map and committed length from the store, under the commit
   * lock so that no commit of this node's crosses it. Notices that arrive during a reload
   * make it run once more. A failed reload leaves the state stale: the next read, write or
   * open tries again, and fails if the store is still away rather than serve old bytes.
   */
  private refresh(st: ForkState): Promise<void> {
    st.stale = true;
    st.refreshing ??= (async () => {
      try {
        while (st.stale) {
          st.stale = false;
          await st.commitLock.run(() => this.reloadLocked(st));
        }
      } catch (err) {
        st.stale = true;
        throw err;
      } finally {
        st.refreshing = null;
      }
    })();
    return st.refreshing;
  }

  private refreshInBackground(st: ForkState): void {
    this.refresh(st).catch((err: unknown) => this.o.log.warn({ err, file: st.file, fork: st.fork }, 'could not reload a fork another node changed; its next use tries again'));
  }

  private async reloadLocked(st: ForkState): Promise<void> {
    const [refs, node] = await Promise.all([this.o.store.blockMap(st.file, st.fork), this.o.store.get(st.file)]).catch((err: unknown) => {
      // Removed: this node learns at its next commit ('gone'); nothing to reload.
      if (isNotFound(err)) return [undefined, undefined] as const;
      throw err;
    });
    if (!refs || !node) return;
    const committed = st.fork === 'data' ? node.dataLength : node.rsrcLength;
    // A truncate of ours not yet committed keeps the blocks past it out of reach.
    const keep = st.pendingCut === null ? Infinity : Math.ceil(st.pendingCut / this.blockSize);
    st.refs.clear();
    for (const [i, r] of refs) if (i < keep) st.refs.set(i, r);
    if (committed !== st.committedLength) this.lengthCommits++;
    st.committedLength = committed;
    // Our own uncommitted writes keep the fork at least as long as they made it; a longer
    // fork from the other node is not cut back by our next commit.
    const ours = st.metaDirty || this.dirtyOf(st).length > 0;
    st.length = ours ? Math.max(st.length, committed) : committed;
  }

  private release(st: ForkState): void {
    if (st.attached > 0 || st.metaDirty || this.dirtyOf(st).length > 0) return;
    if (this.forks.get(forkKey(st.file, st.fork)) === st) this.forks.delete(forkKey(st.file, st.fork));
  }

  private dirtyOf(st: ForkState): CachedBlock[] {
    return this.o.cache.blocksOf(this.o.volumeKey, st.file, st.fork).filter((b) => b.dirty);
  }

  private addr(st: ForkState, index: number): BlockAddress {
    return { volume: this.o.volumeKey, file: st.file, fork: st.fork, index };
  }

  // ---- reads -----------------------------------------------------------------------------

  /** Up to `count` bytes from `offset`, fewer at the end of the fork. `log`: the reading session's. */
  async read(st: ForkState, offset: number, count: number, log: Logger = this.o.log): Promise<Buffer> {
    // Wait for a reload under way, or make one when the state is known to be stale.
    if (st.stale || st.refreshing) await this.refresh(st);
    const end = Math.min(offset + count, st.length);
    if (end <= offset) return EMPTY;
    const bs = this.blockSize;
    const parts: Buffer[] = [];
    for (let at = offset; at < end; ) {
      const index = Math.floor(at / bs);
      const s = at - index * bs;
      const e = Math.min(bs, end - index * bs);
      parts.push(await this.readPiece(st, index, s, e, log));
      at = index * bs + e;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private async readPiece(st: ForkState, index: number, s: number, e: number, log: Logger): Promise<Buffer> {
    // Each check happens under the block's lock: an eviction, a re-base or a drop may come
    // between two awaits, and then the piece is looked up again.
    for (let attempt = 0; ; attempt++) {
      const a = this.addr(st, index);
      const ref = st.refs.get(index) ?? null;
      let b = this.o.cache.get(a);
      if (b && !b.dirty && !sameRef(b.base, ref)) {
        const stale = b;
        await stale.lock.run(() => this.o.cache.discardClean(stale));
        b = undefined;
      }
      if (!b) {
        if (ref === null) return Buffer.alloc(e - s);
        b = this.o.cache.obtain(a, this.blockSize, ref);
      }
      const block = b;
      const hit = await block.lock.run(async () => (block.dropped || !block.holds(s, e) ? undefined : this.o.cache.read(block, s, e - s)));
      if (hit) {
        this.reads.hits++;
        return hit;
      }
      if (!block.dropped) {
        const baseRef = block.base;
        if (baseRef !== null && !block.dirty) this.readAhead(st, index, log);
        const bytes = await this.fetch(index, st, baseRef).catch(async (err: unknown) => {
          // Leave no empty placeholder behind for a block that could not be fetched.
          await block.lock.run(async () => {
            if (!block.dirty && !block.complete) await this.o.cache.discardClean(block);
          });
          throw err;
        });
        const filled = await block.lock.run(async () => {
          if (block.dropped || !sameRef(block.base, baseRef)) return undefined;
          await this.o.cache.fillForRead(block, bytes);
          return this.o.cache.read(block, s, e - s);
        });
        if (filled) {
          this.reads.misses++;
          return filled;
        }
      }
      if (attempt >= 10) throw new Error(`block ${index} of file ${st.file} kept changing while being read`);
    }
  }

  /**
   * A block missed the cache: fetch the next few too, in the background, so a sequential
   * reader (a restore, a verify) finds them there instead of waiting on one GET at a time.
   * A reader that reaches a block still in flight joins its GET (see fetch).
   */
  private readAhead(st: ForkState, index: number, log: Logger): void {
    for (let j = index + 1; j <= index + READ_AHEAD_BLOCKS && j * this.blockSize < st.length; j++) {
      const ref = st.refs.get(j);
      const a = this.addr(st, j);
      if (ref === undefined || this.o.cache.get(a)) continue;
      this.fetch(j, st, ref).then(
        async (bytes) => {
          const b = this.o.cache.get(a) ?? this.o.cache.obtain(a, this.blockSize, ref);
          await b.lock.run(async () => {
            if (!b.dropped && !b.complete && sameRef(b.base, ref)) await this.o.cache.fillForRead(b, bytes);
          });
        },
        (err: unknown) => log.debug({ err, file: st.file, block: j }, 'read-ahead failed (the reader will fetch the block itself)'),
      ).catch((err: unknown) => log.warn({ err, file: st.file, block: j }, 'read-ahead could not cache a block'));
    }
  }

  /** The bytes of a block's object (one GET per block at a time, shared by concurrent readers). */
  private fetch(index: number, st: ForkState, ref: BlockRef | null): Promise<Buffer> {
    if (ref === null) return Promise.resolve(EMPTY);
    const key = blockObjectKey(this.o.volumeKey, st.fork, index, ref);
    let p = this.fetching.get(key);
    if (!p) {
      p = this.o.objects.get(key).finally(() => this.fetching.delete(key));
      this.fetching.set(key, p);
    }
    return p;
  }

  // ---- writes ----------------------------------------------------------------------------

  /** Writes into the cache; resolves once the bytes and their journal record are there. */
  async write(st: ForkState, offset: number, data: Buffer): Promise<void> {
    if (data.length === 0) return;
    if (st.stale || st.refreshing) await this.refresh(st);
    const bs = this.blockSize;
    const end = offset + data.length;
    const newLength = Math.max(st.length, end);
    // Before any piece lands: an upload that starts meanwhile commits the live length, and
    // a block past a shorter one would be dropped as beyond the end.
    st.length = newLength;
    for (let at = offset; at < end; ) {
      const index = Math.floor(at / bs);
      const s = at - index * bs;
      const e = Math.min(bs, end - index * bs);
      const piece = data.subarray(at - offset, at - offset + (e - s));
      for (;;) {
        const b = await this.writable(st, index);
        // Room under the dirty limit is waited for outside the block's lock.
        await this.o.cache.reserve(b);
        // The fork's length as of this append: a later-started, longer write may have
        // journaled its length already, and replay takes the last record's.
        const landed = await b.lock.run(async () => {
          if (b.dropped) return false;
          await this.o.cache.write(b, s, piece, st.length);
          return true;
        });
        if (landed) {
          this.scheduleUpload(b, e === bs);
          break;
        }
      }
      at = index * bs + e;
    }
    st.modifiedAt = this.now();
    st.metaDirty = true;
  }

  /** The cached block to write into, on the block's current base. */
  private async writable(st: ForkState, index: number): Promise<CachedBlock> {
    const a = this.addr(st, index);
    const ref = st.refs.get(index) ?? null;
    const b = this.o.cache.get(a);
    if (b && !b.dirty && !sameRef(b.base, ref)) await b.lock.run(() => this.o.cache.discardClean(b));
    return this.o.cache.obtain(a, this.blockSize, ref);
  }

  /**
   * Truncates or extends the fork and commits the new length at once (a truncate drops
   * blocks, which must not wait for a sync to stop costing objects).
   */
  async setLength(st: ForkState, length: number): Promise<void> {
    if (st.stale || st.refreshing) await this.refresh(st);
    await st.commitLock.run(async () => {
      const bs = this.blockSize;
      if (length < st.length) {
        const keep = Math.ceil(length / bs);
        // Reads must stop seeing the dropped blocks now, whether or not the commit below
        // gets through; if it does not, the next commit of this fork retries the cut.
        for (const i of [...st.refs.keys()]) if (i >= keep) st.refs.delete(i);
        st.pendingCut = Math.min(st.pendingCut ?? length, length);
        for (const b of this.o.cache.blocksOf(this.o.volumeKey, st.file, st.fork)) {
          if (b.addr.index >= keep) {
            this.cancelTimer(b);
            await b.lock.run(() => this.o.cache.drop(b));
          }
        }
        const inner = length % bs;
        const last = Math.floor(length / bs);
        if (inner !== 0 && (st.refs.has(last) || this.o.cache.get(this.addr(st, last)))) {
          for (;;) {
            const b = await this.writable(st, last);
            const cut = await b.lock.run(async () => {
              if (b.dropped) return false;
              await this.o.cache.cut(b, inner, length);
              return true;
            });
            if (cut) {
              this.scheduleUpload(b, false);
              break;
            }
          }
        }
      }
      st.length = length;
      st.modifiedAt = this.now();
      st.metaDirty = true;
      this.o.cache.noteLength(this.o.volumeKey, st.file, st.fork, length);
      const r = await this.commitLocked(st, []);
      if (r === 'gone') throw new DataError('gone', `file ${st.file} was removed`);
    });
  }

  // ---- uploads ---------------------------------------------------------------------------

  private scheduleUpload(b: CachedBlock, full: boolean): void {
    const pressure = this.o.cache.dirtyTotal > this.o.cache.dirtyLimit / 2;
    if (full || pressure || this.o.uploadDelayMs === 0) {
      this.uploadNow(b, pressure ? Priority.Pressure : Priority.Background);
      return;
    }
    this.cancelTimer(b);
    const t = setTimeout(() => {
      this.timers.delete(b.id);
      this.uploadNow(b, Priority.Background);
    }, this.o.uploadDelayMs);
    t.unref();
    this.timers.set(b.id, t);
  }

  private cancelTimer(b: CachedBlock): void {
    const t = this.timers.get(b.id);
    if (t) clearTimeout(t);
    this.timers.delete(b.id);
  }

  /** Queues every dirty block of this volume (the cache is at its dirty limit). */
  uploadAll(priority: number = Priority.Pressure): void {
    for (const b of this.o.cache.dirtyBlocks(this.o.volumeKey)) this.uploadNow(b, priority);
  }

  private uploadNow(b: CachedBlock, priority: number): Promise<void> {
    this.cancelTimer(b);
    return this.o.uploads.submit(b.id, () => this.upload(b), priority);
  }

  private async nextGeneration(): Promise<number> {
    return this.genLock.run(async () => {
      if (this.gens.next >= this.gens.end) {
        const first = await this.o.store.reserveGenerations(GEN_BATCH);
        this.gens = { next: first, end: first + GEN_BATCH };
      }
      return this.gens.next++;
    });
  }

  /**
   * One block to the object store: merge the remote base into what was written locally,
   * snapshot, PUT a new object (nothing for all zeros), compare-and-set the block map.
   */
  private async upload(b: CachedBlock): Promise<void> {
    // One upload per block at a time; a request that arrives meanwhile runs after it, since
    // the running one may have taken its snapshot before the latest write.
    while (b.uploading) await b.uploading.catch(() => {});
    if (!b.dirty || b.dropped) return;
    const run = (async () => {
      try {
        const st = await this.state(b.addr.file, b.addr.fork).catch((err: unknown) => {
          if (err instanceof DataError || isNotFound(err)) return undefined;
          throw err;
        });
        if (!st) {
          await b.lock.run(() => this.o.cache.drop(b));
          return;
        }
        for (let attempt = 0; attempt < 5; attempt++) if (await this.uploadOnce(st, b)) return;
        throw new Error(`block ${b.addr.index} of file ${b.addr.file} kept changing on another node`);
      } finally {
        b.uploading = null;
      }
    })();
    b.uploading = run;
    return run;
  }

  /** One try; false when another node moved the block on and the bytes were re-based. */
  private async uploadOnce(st: ForkState, b: CachedBlock): Promise<boolean> {
    const i = b.addr.index;
    if (!b.complete) {
      const baseRef = b.base;
      const bytes = await this.fetch(i, st, baseRef).catch((err: unknown) => {
        // The base was collected: another node replaced it long ago; re-base below.
        if (err instanceof ObjectNotFoundError) return undefined;
        throw err;
      });
      const filled = await b.lock.run(async () => {
        if (b.dropped || !sameRef(b.base, baseRef) || bytes === undefined) return false;
        await this.o.cache.fillGaps(b, bytes);
        return true;
      });
      if (!filled) {
        if (b.dropped) return true;
        await this.rebase(st, b);
        return false;
      }
    }
    const snap = await b.lock.run(async () => (b.dropped || !b.dirty ? undefined : { base: b.base, ...(await this.o.cache.snapshot(b)) }));
    if (!snap) return true;
    let next: BlockRef | null = null;
    try {
      if (!isZero(snap.bytes)) {
        next = { file: b.addr.file, gen: await this.nextGeneration() };
        await this.o.objects.put(blockObjectKey(this.o.volumeKey, st.fork, i, next), snap.bytes);
      }
      // Checked under the commit lock, which a truncate holds while it drops blocks: a block
      // truncated away while its upload ran must not come back through that upload's commit.
      const result = await st.commitLock.run(() => (b.dropped ? Promise.resolve('dropped' as const) : this.commitLocked(st, [{ index: i, expect: snap.base, next }])));
      if (result === 'dropped') {
        await this.deleteObject(st, i, next);
        return true;
      }
      if (result === 'gone') {
        await this.deleteObject(st, i, next);
        await b.lock.run(() => this.o.cache.drop(b));
        return true;
      }
      if (result === 'conflict') {
        await this.deleteObject(st, i, next);
        await b.lock.run(async () => this.o.cache.restore(b, snap.written));
        await this.rebase(st, b);
        return false;
      }
    } catch (err) {
      await b.lock.run(async () => this.o.cache.restore(b, snap.written));
      throw err;
    }
    await b.lock.run(async () => this.o.cache.committed(b, next, snap.seq));
    this.release(st);
    return true;
  }

  /** Another node committed the block: take its ref as the new base for the unwritten bytes. */
  private async rebase(st: ForkState, b: CachedBlock): Promise<void> {
    const current = await this.o.store.blockRef(st.file, st.fork, b.addr.index);
    if (current === null) st.refs.delete(b.addr.index);
    else st.refs.set(b.addr.index, current);
    this.o.log.info({ file: st.file, fork: st.fork, block: b.addr.index }, 'block changed on another node; merging this node\'s writes onto it');
    await b.lock.run(async () => this.o.cache.rebase(b, current));
  }

  private async deleteObject(st: ForkState, index: number, ref: BlockRef | null): Promise<void> {
    if (ref === null) return;
    await this.o.objects.delete(blockObjectKey(this.o.volumeKey, st.fork, index, ref)).catch((err: unknown) => {
      this.o.log.warn({ err, file: st.file, index }, 'could not delete an uncommitted block object (left for a scrub)');
    });
  }

  /**
   * Commits block changes with the fork's live length; the caller holds `st.commitLock`.
   * 'gone': the file was removed; 'conflict': an expectation failed (nothing applied).
   */
  private async commitLocked(st: ForkState, changes: { index: number; expect: BlockRef | null; next: BlockRef | null }[]): Promise<'ok' | 'gone' | 'conflict'> {
    const length = st.length;
    const modifiedAt = st.modifiedAt;
    let result;
    try {
      if (st.pendingCut !== null) {
        // The blocks past an earlier truncate must go before the fork grows again over them.
        const cut = await this.o.store.commitFork(st.file, st.fork, { changes: [], length: Math.min(st.pendingCut, length), now: this.now() });
        if (cut.ok) st.pendingCut = null;
      }
      result = await this.o.store.commitFork(st.file, st.fork, { changes, length, ...(modifiedAt !== null ? { modifiedAt } : {}), now: this.now() });
    } catch (err) {
      if (isNotFound(err)) return 'gone';
      throw err;
    }
    if (!result.ok) return 'conflict';
    const keep = Math.ceil(length / this.blockSize);
    for (const c of changes) {
      if (c.next === null || c.index >= keep) st.refs.delete(c.index);
      else st.refs.set(c.index, c.next);
    }
    for (const i of [...st.refs.keys()]) if (i >= keep) st.refs.delete(i);
    if (st.committedLength !== length) this.lengthCommits++;
    st.committedLength = length;
    if (st.length === length && st.modifiedAt === modifiedAt && st.pendingCut === null) st.metaDirty = false;
    return 'ok';
  }

  private async commitMeta(st: ForkState): Promise<void> {
    const r = await st.commitLock.run(() => this.commitLocked(st, []));
    if (r === 'gone') this.forget(st.file);
    this.release(st);
  }

  // ---- durability ------------------------------------------------------------------------

  /** FPFlushFork: the fork's cached bytes and the journal reach this node's disk. */
  async flush(st: ForkState): Promise<void> {
    await this.o.cache.flush(this.o.cache.blocksOf(this.o.volumeKey, st.file, st.fork));
  }

  /** FPFlush: every cached block of the volume reaches this node's disk. */
  async flushAll(): Promise<void> {
    await this.o.cache.flush(this.o.cache.dirtyBlocks(this.o.volumeKey));
  }

  /**
   * FPSyncFork: every byte written before the call is in the object store, the block map and
   * length committed, the store synced. Throws DataError('timeout') when that cannot be
   * done within the sync timeout; uploads go on in the background.
   */
  async sync(st: ForkState, deadline = this.now() + this.o.syncTimeoutMs): Promise<void> {
    const targets = this.dirtyOf(st).map((b) => ({ b, seq: b.seq }));
    await Promise.all(targets.map(({ b, seq }) => this.uploadThrough(b, seq, deadline)));
    if (st.metaDirty || st.length !== st.committedLength) {
      const r = await withDeadline(st.commitLock.run(() => this.commitLocked(st, [])), deadline, 'committing the fork length', this.now);
      if (r === 'gone') throw new DataError('gone', `file ${st.file} was removed`);
    }
    await withDeadline(this.o.durable(), deadline, 'the metadata store sync', this.now);
    this.release(st);
  }

  /** Syncs every fork of the given files that has anything uncommitted, then the store once. */
  async syncFiles(files: readonly number[], deadline = this.now() + this.o.syncTimeoutMs): Promise<void> {
    const states: ForkState[] = [];
    for (const f of files) {
      for (const fork of ['data', 'rsrc'] as const) {
        const have = this.forks.get(forkKey(f, fork));
        if (have) states.push(have);
        else if (this.o.cache.blocksOf(this.o.volumeKey, f, fork).some((b) => b.dirty)) states.push(await this.state(f, fork));
      }
    }
    await Promise.all(states.map((st) => this.sync(st, deadline)));
  }

  /**
   * `afp-gateway cache flush`: FPSyncFork of everything the volume holds at once. Every
   * block dirty at the call is uploaded and committed, every uncommitted fork length
   * committed, then the store synced. `onBlock` hears of each block as it lands, for a
   * progress bar. Writes that arrive meanwhile are not waited for: a busy volume never
   * has nothing dirty, but what was acknowledged before the call is durable after it.
   */
  async syncAll(deadline: number, onBlock?: (bytes: number) => void, abandoned?: AbortSignal): Promise<void> {
    const targets = this.o.cache.dirtyBlocks(this.o.volumeKey).map((b) => ({ b, seq: b.seq }));
    await Promise.all(
      targets.map(async ({ b, seq }) => {
        await this.uploadThrough(b, seq, deadline, abandoned);
        onBlock?.(this.blockSize);
      }),
    );
    const forks = [...this.forks.values()].filter((st) => st.metaDirty || st.length !== st.committedLength);
    // A fork removed meanwhile has nothing left to make durable (commitMeta forgets it).
    await Promise.all(forks.map((st) => withDeadline(this.commitMeta(st), deadline, 'committing a fork length', this.now)));
    await withDeadline(this.o.durable(), deadline, 'the metadata store sync', this.now);
  }

  /** Waits until block `b`'s writes up to `seq` are committed, pushing its upload to the front. */
  private async uploadThrough(b: CachedBlock, seq: number, deadline: number, abandoned?: AbortSignal): Promise<void> {
    let pause = 100;
    while (!b.dropped && b.committedSeq < seq) {
      // A flush whose operator went away stops pushing; the block still uploads in its turn.
      if (abandoned?.aborted) throw new DataError('timeout', 'abandoned: nobody waits for this block any more');
      const before = b.committedSeq;
      await withDeadline(this.uploadNow(b, Priority.Sync), deadline, 'uploading a block', this.now);
      if (b.dropped || b.committedSeq >= seq) return;
      if (b.committedSeq === before) {
        // That run failed (the store is down) or had nothing new; do not spin.
        const left = deadline - this.now();
        if (left <= 0) throw new DataError('timeout', 'the object store did not take the block in time');
        await sleep(Math.min(pause, left));
        pause = Math.min(pause * 2, 2000);
      }
    }
  }

  // ---- whole files -----------------------------------------------------------------------

  /** The file was removed: its cached blocks go (dirty ones too: their commit could only fail). */
  forget(file: number): void {
    for (const b of this.o.cache.blocksOf(this.o.volumeKey, file)) {
      this.cancelTimer(b);
      void b.lock.run(() => this.o.cache.drop(b)).catch((err: unknown) => this.o.log.warn({ err, file }, 'could not drop a cached block'));
    }
    for (const fork of ['data', 'rsrc'] as const) this.forks.delete(forkKey(file, fork));
  }

  /**
   * The file's contents were replaced behind this node's back (FPExchangeFiles, a hard
   * create): reload its states from the store. Dirty blocks must have been synced first.
   */
  async reload(file: number): Promise<void> {
    for (const b of this.o.cache.blocksOf(this.o.volumeKey, file)) {
      if (!b.dirty) await b.lock.run(() => this.o.cache.discardClean(b));
    }
    for (const fork of ['data', 'rsrc'] as const) {
      const st = this.forks.get(forkKey(file, fork));
      if (st) await this.refresh(st);
    }
  }

  /** FPCopyFile's bytes: block by block through the cache of the new file. */
  async copy(src: number, dst: number): Promise<void> {
    for (const fork of ['data', 'rsrc'] as const) {
      const from = await this.attach(src, fork);
      const to = await this.attach(dst, fork);
      try {
        for (let at = 0; at < from.length; at += this.blockSize) {
          const bytes = await this.read(from, at, this.blockSize);
          if (!isZero(bytes)) await this.write(to, at, bytes);
        }
        if (to.length !== from.length) await this.setLength(to, from.length);
      } finally {
        this.detach(from);
        this.detach(to);
      }
    }
  }

  // ---- recovery --------------------------------------------------------------------------

  /**
   * Dirty blocks the journal held: each whose base is still the committed ref is uploaded
   * and committed; one whose base moved on (another node committed the block since) is
   * discarded, with a log line, as is everything of a file that no longer exists.
   */
  private async recover(): Promise<void> {
    const blocks = this.o.cache.takeRecovered(this.o.volumeKey);
    if (blocks.length === 0) return;
    const byFork = new Map<string, CachedBlock[]>();
    for (const b of blocks) {
      const k = forkKey(b.addr.file, b.addr.fork);
      byFork.set(k, [...(byFork.get(k) ?? []), b]);
    }
    let kept = 0;
    let discarded = 0;
    for (const list of byFork.values()) {
      const { file, fork } = list[0]!.addr;
      const st = await this.load(file, fork).catch((err: unknown) => {
        if (err instanceof DataError || isNotFound(err)) return undefined;
        throw err;
      });
      if (!st) {
        this.o.log.warn({ file, fork, blocks: list.length }, 'cache recovery: the file is gone; its unsynced blocks are discarded');
        for (const b of list) await b.lock.run(() => this.o.cache.drop(b));
        discarded += list.length;
        continue;
      }
      let all = true;
      for (const b of list) {
        if (b.blockSize !== this.blockSize || !sameRef(b.base, st.refs.get(b.addr.index) ?? null)) {
          this.o.log.warn({ file, fork, block: b.addr.index }, 'cache recovery: the block changed in the store since; this node\'s unsynced bytes of it are discarded');
          await b.lock.run(() => this.o.cache.drop(b));
          discarded++;
          all = false;
        } else kept++;
      }
      const len = this.o.cache.recoveredLength(this.o.volumeKey, file, fork);
      if (all && len !== undefined && len !== st.length) {
        st.length = len;
        st.metaDirty = true;
      }
      for (const b of list) if (!b.dropped) this.uploadNow(b, Priority.Background);
    }
    this.o.log.info({ volume: this.o.volumeKey, kept, discarded }, 'cache recovery: unsynced blocks found after restart');
  }
}

function forkKey(file: number, fork: ForkKind): string {
  return `${file}:${fork}`;
}

function isZero(b: Buffer): boolean {
  // Compare 4 KiB at a time against a zero page: far faster than a byte loop.
  for (let at = 0; at < b.length; at += ZERO_PAGE.length) {
    const n = Math.min(ZERO_PAGE.length, b.length - at);
    if (b.compare(ZERO_PAGE, 0, n, at, at + n) !== 0) return false;
  }
  return true;
}
const ZERO_PAGE = Buffer.alloc(64 * 1024);

function isNotFound(err: unknown): boolean {
  return err instanceof NamespaceError && err.reason === 'not-found';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function withDeadline<T>(p: Promise<T>, deadline: number, what: string, now: () => number = Date.now): Promise<T> {
  const left = deadline - now();
  if (left <= 0) {
    p.catch(() => {});
    throw new DataError('timeout', `sync timed out waiting for ${what}`);
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DataError('timeout', `sync timed out waiting for ${what}`)), left);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
    p.catch(() => {});
  }
}

