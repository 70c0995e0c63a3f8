/**
 * The node's write-back cache of blocks: one file per block on local disk, shared by every
 * volume. A block is *dirty* while it holds bytes the object store does not (pinned, counted
 * against the dirty limit, recorded in the journal before a write is acknowledged) and *clean*
 * once uploaded and committed (evictable, least recently used first, within the cache size).
 *
 * A dirty block written without fetching its base object knows only the bytes written to it
 * (`written`); the rest comes from the base when the block is read or uploaded (`fillGaps`),
 * so a write never waits on the object store.
 */
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { sameRef, type BlockRef } from '../meta/block-maps.js';
import type { ForkKind } from '../meta/forks.js';
import type { Logger } from '../ops/log.js';
import { Journal, forkKey, toRef, type ReplayedBlock } from './journal.js';
import { Mutex } from './mutex.js';
import { forkLetter } from './object-names.js';
import { Ranges } from './ranges.js';

export interface BlockAddress {
  volume: string;
  file: number;
  fork: ForkKind;
  index: number;
}

export function blockId(a: BlockAddress): string {
  return `${a.volume}\0${a.file}\0${forkLetter(a.fork)}\0${a.index}`;
}

export class CachedBlock {
  /** The committed object these bytes derive from; null: absent (zeros). */
  base: BlockRef | null;
  /** Bytes written since `base` (and not yet part of an upload under way). */
  written = new Ranges();
  /** Every byte of the block is in the file: the base was merged in, or there is no base. */
  complete: boolean;
  /** Sequence number of the last write; `committedSeq` that of the last write an upload covered. */
  seq = 0;
  committedSeq = 0;
  /** `seq` at the last datasync that finished: a flush skips blocks not written since. */
  flushedSeq = 0;
  /** The block file's directory entry is on disk (synced after the file was created). */
  entryFlushed = false;
  /** Bytes of the block file (a sparse file: bytes past it read as zeros). */
  fileSize = 0;
  /** Counted against the dirty limit. */
  pinned = false;
  /** Removed from the cache; an operation that still holds it must not recreate its file. */
  dropped = false;
  readonly lock = new Mutex();
  /** The upload under way, if any, so a sync can wait for it. */
  uploading: Promise<void> | null = null;

  constructor(readonly id: string, readonly addr: BlockAddress, readonly path: string, readonly blockSize: number, base: BlockRef | null) {
    this.base = base;
    this.complete = base === null;
  }

  get dirty(): boolean {
    return this.seq > this.committedSeq;
  }

  /** The byte range [start, end) can be served from the file. */
  holds(start: number, end: number): boolean {
    return this.complete || this.written.covers(start, end);
  }
}

export interface BandCacheOptions {
  dir: string;
  /** Bytes of clean and dirty blocks together. */
  size: number;
  dirtyLimit: number;
  log: Logger;
}

/** The journal is rewritten once it grows past this (it gets one line per write). */
const JOURNAL_COMPACT_BYTES = 64 * 1024 * 1024;

/** A write reached a block that was dropped while the writer waited; it must look again. */
export class DroppedBlockError extends Error {
  constructor(b: CachedBlock) {
    super(`block ${b.addr.index} of file ${b.addr.file} was dropped`);
    this.name = 'DroppedBlockError';
  }
}

export class BandCache {
  private readonly blocks = new Map<string, CachedBlock>();
  /** Clean blocks only, sized by their files; evicting one deletes its file. */
  private readonly clean: LRUCache<string, CachedBlock>;
  private dirtyBytes = 0;
  private readonly waiters: { bytes: number; resolve: () => void }[] = [];
  private readonly madeDirs = new Set<string>();
  /**
   * Open block files. Block I/O is synchronous on a kept descriptor: a 1 MiB pwrite into the
   * page cache takes a few hundred microseconds, less than the three thread-pool hops
   * (open, write, close) an asynchronous call per request would cost, and requests of one
   * connection are handled one at a time anyway (bench/data-path).
   */
  private readonly fds = new LRUCache<string, number>({ max: 128, dispose: (fd) => closeSync(fd) });
  /** Called when a writer has to wait for the dirty limit: uploads should start now. */
  onPressure: () => void = () => {};

  private constructor(private readonly opts: BandCacheOptions, private readonly journal: Journal, private readonly recovered: CachedBlock[], private readonly forkLengths: Map<string, number>) {
    this.clean = new LRUCache<string, CachedBlock>({
      // Dirty bytes have their own budget; clean blocks get what is left (at least one block's worth).
      maxSize: Math.max(1, opts.size - opts.dirtyLimit),
      sizeCalculation: (b) => Math.max(1, b.fileSize),
      noDisposeOnSet: true,
      dispose: (b, _k, reason) => {
        if (reason === 'evict') void this.evict(b);
      },
    });
  }

  /**
   * Opens the cache directory: replays the journal into dirty blocks (returned per volume by
   * `recoveredBlocks`), deletes every other block file (clean blocks are not trusted across a
   * restart: another node may have replaced them), and rewrites the journal compactly.
   */
  static async open(opts: BandCacheOptions): Promise<BandCache> {
    mkdirSync(join(opts.dir, 'blocks'), { recursive: true });
    const { journal, replay } = Journal.open(join(opts.dir, 'journal'));
    if (replay.skipped > 0) opts.log.warn({ skipped: replay.skipped }, 'cache journal: unreadable lines skipped (a torn last line is normal after a crash)');
    const blocks: CachedBlock[] = [];
    for (const r of replay.blocks) blocks.push(await recoveredBlock(opts.dir, r));
    const cache = new BandCache(opts, journal, blocks, replay.lengths);
    for (const b of blocks) {
      cache.blocks.set(b.id, b);
      b.pinned = true;
      cache.dirtyBytes += b.blockSize;
    }
    removeStrays(join(opts.dir, 'blocks'), new Set(blocks.map((b) => b.path)));
    cache.compact();
    if (blocks.length > 0) opts.log.info({ blocks: blocks.length }, 'cache journal: dirty blocks to upload after restart');
    return cache;
  }

  /** The dirty blocks the journal held for one volume, removed from the list as they are taken. */
  takeRecovered(volume: string): CachedBlock[] {
    const mine = this.recovered.filter((b) => b.addr.volume === volume);
    for (const b of mine) this.recovered.splice(this.recovered.indexOf(b), 1);
    return mine;
  }

  /** The last fork length the journal recorded for a fork with dirty blocks. */
  recoveredLength(volume: string, file: number, fork: ForkKind): number | undefined {
    return this.forkLengths.get(forkKey(volume, file, forkLetter(fork)));
  }

  get dirtyTotal(): number {
    return this.dirtyBytes;
  }

  /** Bytes of clean blocks the cache holds (evicted by LRU beyond size - dirtyLimit). */
  get cleanBytes(): number {
    return this.clean.calculatedSize;
  }

  get dirtyLimit(): number {
    return this.opts.dirtyLimit;
  }

  get(a: BlockAddress): CachedBlock | undefined {
    const b = this.blocks.get(blockId(a));
    if (b && !b.dirty) this.clean.get(b.id); // bump recency
    return b;
  }

  /** The cached block at `a`, or a new, empty one on `base` (not yet dirty, no file yet). */
  obtain(a: BlockAddress, blockSize: number, base: BlockRef | null): CachedBlock {
    const id = blockId(a);
    let b = this.blocks.get(id);
    if (!b) {
      b = new CachedBlock(id, a, this.pathOf(a), blockSize, base);
      this.blocks.set(id, b);
    }
    return b;
  }

  /** Every cached block of a fork (or of both forks when `fork` is omitted). */
  blocksOf(volume: string, file: number, fork?: ForkKind): CachedBlock[] {
    const out: CachedBlock[] = [];
    for (const b of this.blocks.values()) if (b.addr.volume === volume && b.addr.file === file && (fork === undefined || b.addr.fork === fork)) out.push(b);
    return out;
  }

  dirtyBlocks(volume?: string): CachedBlock[] {
    const out: CachedBlock[] = [];
    for (const b of this.blocks.values()) if (b.dirty && (volume === undefined || b.addr.volume === volume)) out.push(b);
    return out;
  }

  /**
   * Writes `data` at `offset` within the block; the caller holds the block's lock. Waits for
   * room under the dirty limit if the block was clean. `forkLength` is the fork's length after
   * the write, recorded for replay.
   */
  async write(b: CachedBlock, offset: number, data: Buffer, forkLength: number): Promise<void> {
    if (b.dropped) throw new DroppedBlockError(b);
    this.pinNow(b);
    try {
      await this.pwrite(b, offset, data);
    } catch (err) {
      if (!b.dirty) this.unpin(b);
      throw err;
    }
    b.written.add(offset, offset + data.length);
    this.recordWrite(b, offset, offset + data.length, forkLength);
    this.maybeCompact();
  }

  /**
   * Cuts the block at `end` (a truncate inside it): the bytes from `end` on become zeros,
   * recorded as written so an upload does not take them from the base. Caller holds the lock.
   * Does not wait for the dirty limit: a truncate adds at most one block, and it runs under
   * its fork's commit lock, which the uploads that would make room need.
   */
  async cut(b: CachedBlock, end: number, forkLength: number): Promise<void> {
    if (b.dropped) throw new DroppedBlockError(b);
    this.pinNow(b);
    if (b.fileSize > end) {
      ftruncateSync(this.fd(b), end);
      b.fileSize = end;
    }
    b.written.clip(end).add(end, b.blockSize);
    this.recordWrite(b, end, b.blockSize, forkLength);
  }

  /**
   * Waits, without holding the block's lock, until the block may become dirty under the
   * limit, and counts it. A writer waits here rather than inside the lock, so truncates,
   * uploads and drops of the block are never stuck behind a writer waiting for room.
   */
  async reserve(b: CachedBlock): Promise<void> {
    if (b.pinned) return;
    this.clean.delete(b.id);
    if (this.dirtyBytes + b.blockSize > this.opts.dirtyLimit && this.dirtyBytes > 0) {
      this.onPressure();
      await new Promise<void>((resolve) => this.waiters.push({ bytes: b.blockSize, resolve }));
      if (b.pinned || b.dropped) {
        // Pinned by a truncate meanwhile, or gone: give the room back.
        this.release(b.blockSize);
        return;
      }
    } else {
      this.dirtyBytes += b.blockSize;
    }
    b.pinned = true;
  }

  private recordWrite(b: CachedBlock, start: number, end: number, forkLength: number): void {
    b.seq++;
    const k = forkLetter(b.addr.fork);
    this.forkLengths.set(forkKey(b.addr.volume, b.addr.file, k), forkLength);
    this.journal.append({ t: 'w', v: b.addr.volume, f: b.addr.file, k, i: b.addr.index, z: b.blockSize, b: toRef(b.base), s: start, e: end, q: b.seq, n: forkLength });
  }

  /** Records a fork length change (truncate or extend) for replay. */
  noteLength(volume: string, file: number, fork: ForkKind, length: number): void {
    this.forkLengths.set(forkKey(volume, file, forkLetter(fork)), length);
    this.journal.append({ t: 'l', v: volume, f: file, k: forkLetter(fork), n: length });
  }

  /** Bytes [offset, offset + length) of the block file; bytes past its end read as zeros. Caller holds the lock. */
  async read(b: CachedBlock, offset: number, length: number): Promise<Buffer> {
    const avail = Math.max(0, Math.min(length, b.fileSize - offset));
    // Unzeroed: every byte below `avail` is read from the file, the rest is filled below.
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    if (avail > 0) {
      const fd = this.fd(b);
      while (done < avail) {
        const n = readSync(fd, out, done, avail - done, offset + done);
        if (n === 0) break;
        done += n;
      }
    }
    out.fill(0, done);
    return out;
  }

  /**
   * Merges the base object's bytes into the parts of the block not written locally, making
   * the block complete. `baseBytes` must be the object `b.base` names (shorter objects mean
   * trailing zeros). Caller holds the lock.
   */
  async fillGaps(b: CachedBlock, baseBytes: Buffer): Promise<void> {
    if (b.complete) return;
    // Past the base's end the block is zeros; the file may still hold an older base's bytes there.
    const end = Math.max(b.fileSize, Math.min(baseBytes.length, b.blockSize));
    for (const [s, e] of b.written.gaps(0, end)) {
      const from = Math.min(s, baseBytes.length);
      const to = Math.min(e, baseBytes.length);
      const part = to - from === e - s ? baseBytes.subarray(s, e) : Buffer.concat([baseBytes.subarray(from, to), Buffer.alloc(e - s - (to - from))]);
      await this.pwrite(b, s, part);
    }
    b.complete = true;
  }

  /**
   * A fetched base merged in for a read: the block becomes complete, and clean (evictable)
   * unless it holds writes of its own. Caller holds the lock.
   */
  async fillForRead(b: CachedBlock, baseBytes: Buffer): Promise<void> {
    await this.fillGaps(b, baseBytes);
    if (!b.dirty) this.settleClean(b);
  }

  /** The whole block's bytes for an upload; moves `written` aside so later writes are told apart. Caller holds the lock. */
  async snapshot(b: CachedBlock): Promise<{ bytes: Buffer; seq: number; written: Ranges }> {
    const bytes = await this.read(b, 0, b.fileSize);
    const written = b.written;
    b.written = new Ranges();
    return { bytes, seq: b.seq, written };
  }

  /** An upload failed or lost its compare-and-set: its bytes count as unwritten again. */
  restore(b: CachedBlock, written: Ranges): void {
    b.written.addAll(written);
  }

  /**
   * The block's bytes up to `seq` are committed as `ref`. Clean again unless written since;
   * either way the journal learns that replay need not upload them. Caller holds the lock.
   */
  committed(b: CachedBlock, ref: BlockRef | null, seq: number): void {
    b.base = ref;
    b.committedSeq = Math.max(b.committedSeq, seq);
    this.journal.append({ t: 'c', v: b.addr.volume, f: b.addr.file, k: forkLetter(b.addr.fork), i: b.addr.index, r: toRef(ref), q: seq });
    if (!b.dirty) this.settleClean(b);
  }

  /** Another node moved the block on: re-base the unwritten parts on `ref`. Caller holds the lock. */
  rebase(b: CachedBlock, ref: BlockRef | null): void {
    if (sameRef(b.base, ref)) return;
    b.base = ref;
    this.journal.append({ t: 'b', v: b.addr.volume, f: b.addr.file, k: forkLetter(b.addr.fork), i: b.addr.index, r: toRef(ref) });
    // The gaps still hold the old base's bytes: the next fill replaces them (with zeros for an absent base).
    b.complete = false;
  }

  /** Removes a block (its file was removed or truncated away): no upload, no replay. */
  async drop(b: CachedBlock): Promise<void> {
    if (b.dropped) return;
    b.dropped = true;
    // Unlinked before the id is free again: a new block on the same path must never open
    // the file this one is about to remove.
    this.fds.delete(b.path);
    rmSync(b.path, { force: true });
    this.blocks.delete(b.id);
    this.clean.delete(b.id);
    this.unpin(b);
    b.committedSeq = b.seq;
    this.journal.append({ t: 'x', v: b.addr.volume, f: b.addr.file, k: forkLetter(b.addr.fork), i: b.addr.index });
  }

  /** Forgets a clean block (e.g. its ref changed under it); dirty blocks are left alone. */
  async discardClean(b: CachedBlock): Promise<void> {
    if (b.dirty || b.dropped) return;
    await this.drop(b);
  }

  /** FPFlushFork/FPFlush: block files of the given blocks and the journal reach the disk. */
  async flush(blocks: readonly CachedBlock[]): Promise<void> {
    // FPFlushFork comes often (hundreds of times in a backup): only blocks written since
    // their last datasync need one, and they go to the thread pool together.
    const due = blocks.filter((b) => !b.dropped && b.fileSize > 0 && b.seq !== b.flushedSeq);
    // New block files are directory entries too: those must survive a power cut as well.
    const fresh = due.filter((b) => !b.entryFlushed);
    await Promise.all([
      ...due.map(async (b) => {
        const seq = b.seq;
        const fh = await open(b.path, 'r+').catch(() => undefined);
        if (!fh) return;
        try {
          await fh.datasync();
          b.flushedSeq = Math.max(b.flushedSeq, seq);
        } finally {
          await fh.close();
        }
      }),
      ...[...new Set(fresh.map((b) => join(b.path, '..')))].map(async (dir) => {
        const dh = await open(dir, 'r').catch(() => undefined);
        if (!dh) return;
        try {
          await dh.sync();
        } finally {
          await dh.close();
        }
      }),
      this.journal.fsync(),
    ]);
    for (const b of fresh) b.entryFlushed = true;
  }

  async close(): Promise<void> {
    this.fds.clear();
    this.journal.close();
    for (const w of this.waiters.splice(0)) {
      this.dirtyBytes += w.bytes;
      w.resolve();
    }
  }

  // ---- internals -------------------------------------------------------------------------

  private pathOf(a: BlockAddress): string {
    return join(this.opts.dir, 'blocks', encodeURIComponent(a.volume), String(a.file), `${forkLetter(a.fork)}${a.index}`);
  }

  private async pwrite(b: CachedBlock, offset: number, data: Buffer): Promise<void> {
    const fd = this.fd(b);
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
    b.fileSize = Math.max(b.fileSize, offset + data.length);
  }

  /** The block file's descriptor, opening (and creating) it if needed. */
  private fd(b: CachedBlock): number {
    let fd = this.fds.get(b.path);
    if (fd === undefined) {
      const dir = join(b.path, '..');
      if (!this.madeDirs.has(dir)) {
        mkdirSync(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      // O_CREAT without O_TRUNC: one call whether or not the file exists yet.
      fd = openSync(b.path, constants.O_RDWR | constants.O_CREAT, 0o600);
      this.fds.set(b.path, fd);
    }
    return fd;
  }

  /** Counts a block against the dirty limit now, over the limit if need be (see reserve). */
  private pinNow(b: CachedBlock): void {
    if (b.pinned) return;
    this.clean.delete(b.id);
    this.dirtyBytes += b.blockSize;
    b.pinned = true;
  }

  private unpin(b: CachedBlock): void {
    if (!b.pinned) return;
    b.pinned = false;
    this.release(b.blockSize);
  }

  private release(bytes: number): void {
    this.dirtyBytes -= bytes;
    // Wake waiters in order while they fit (a waiter's bytes are counted when it is woken).
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      if (this.dirtyBytes + w.bytes > this.opts.dirtyLimit && this.dirtyBytes > 0) break;
      this.waiters.shift();
      this.dirtyBytes += w.bytes;
      w.resolve();
    }
  }

  private settleClean(b: CachedBlock): void {
    this.unpin(b);
    if (b.dropped) return;
    this.clean.set(b.id, b);
    // lru-cache refuses an entry larger than its whole budget (a cache no bigger than its
    // dirty limit keeps no clean blocks): such a block goes at once rather than never.
    if (!this.clean.has(b.id)) void this.evict(b);
  }

  private async evict(b: CachedBlock): Promise<void> {
    await b.lock.run(async () => {
      if (b.dirty || b.dropped || this.blocks.get(b.id) !== b) return;
      b.dropped = true;
      this.fds.delete(b.path);
      rmSync(b.path, { force: true });
      this.blocks.delete(b.id);
    });
  }

  private maybeCompact(): void {
    if (this.journal.size < JOURNAL_COMPACT_BYTES) return;
    try {
      this.compact();
    } catch (err) {
      this.opts.log.error({ err }, 'cache journal: compaction failed (the old journal stays valid)');
    }
  }

  /** Rewrites the journal as one record per written span of each dirty block. */
  private compact(): void {
    const records = [];
    const lengths = new Map<string, number>();
    for (const b of this.blocks.values()) {
      if (!b.dirty) continue;
      const k = forkLetter(b.addr.fork);
      const n = this.forkLengths.get(forkKey(b.addr.volume, b.addr.file, k)) ?? 0;
      lengths.set(forkKey(b.addr.volume, b.addr.file, k), n);
      // A complete block's bytes are all needed; record it as wholly written so replay does not refill from the base.
      const spans = b.complete ? [[0, b.blockSize] as const] : b.written.list();
      for (const [s, e] of spans) records.push({ t: 'w' as const, v: b.addr.volume, f: b.addr.file, k, i: b.addr.index, z: b.blockSize, b: toRef(b.base), s, e, q: b.seq, n });
    }
    for (const k of [...this.forkLengths.keys()]) if (!lengths.has(k)) this.forkLengths.delete(k);
    this.journal.rewrite(records);
  }
}

async function recoveredBlock(dir: string, r: ReplayedBlock): Promise<CachedBlock> {
  const fork: ForkKind = r.fork === 'd' ? 'data' : 'rsrc';
  const addr = { volume: r.volume, file: r.file, fork, index: r.index };
  const path = join(dir, 'blocks', encodeURIComponent(r.volume), String(r.file), `${r.fork}${r.index}`);
  const b = new CachedBlock(blockId(addr), addr, path, r.blockSize, r.base);
  b.written = r.written;
  b.complete = r.base === null;
  b.seq = r.seq;
  b.committedSeq = 0;
  b.fileSize = await stat(path).then(
    (s) => s.size,
    () => 0,
  );
  return b;
}

/** Deletes block files the journal does not name, and directories left empty. */
function removeStrays(dir: string, keep: Set<string>): void {
  const walk = (d: string): boolean => {
    let empty = true;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (walk(p)) rmSync(p, { recursive: true, force: true });
        else empty = false;
      } else if (keep.has(p)) empty = false;
      else rmSync(p, { force: true });
    }
    return empty;
  };
  walk(dir);
}
