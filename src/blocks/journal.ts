/**
 * The cache's journal: an append-only file of JSON lines that says which cached blocks hold
 * bytes the object store does not have yet. A write's record is appended (to the page cache,
 * no fsync) before the write is acknowledged, so a killed process loses nothing it
 * acknowledged; FPFlushFork/FPFlush fsync it for power loss. On start the journal is replayed
 * into the set of dirty blocks, then rewritten compactly.
 *
 * Records (one letter each to keep lines short, since there is one per write):
 *   w  a write of [s, e) into block i (of `z` bytes, written on base `b`), the block's
 *      write sequence number `q`, and the fork's length `n` after it
 *   c  block i committed as ref `r` covering writes up to sequence `q`
 *   x  block i dropped (file removed, or truncated away): nothing to replay
 *   l  the fork's length set to `n` (truncate or extend)
 *   b  block i re-based onto ref `r` (another node committed it; the writes since stay)
 * Every record names the volume `v`, file `f` and fork `k` ('d' or 'r').
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BlockRef } from '../meta/block-maps.js';
import { Ranges } from './ranges.js';

type Ref = [file: number, gen: number] | null;

export type JournalRecord =
  | { t: 'w'; v: string; f: number; k: 'd' | 'r'; i: number; z: number; b: Ref; s: number; e: number; q: number; n: number }
  | { t: 'c'; v: string; f: number; k: 'd' | 'r'; i: number; r: Ref; q: number }
  | { t: 'x'; v: string; f: number; k: 'd' | 'r'; i: number }
  | { t: 'l'; v: string; f: number; k: 'd' | 'r'; n: number }
  | { t: 'b'; v: string; f: number; k: 'd' | 'r'; i: number; r: Ref };

export function toRef(r: BlockRef | null): Ref {
  return r === null ? null : [r.file, r.gen];
}

export function fromRef(r: Ref): BlockRef | null {
  return r === null ? null : { file: r[0], gen: r[1] };
}

/** A dirty block as the journal leaves it after replay. */
export interface ReplayedBlock {
  volume: string;
  file: number;
  fork: 'd' | 'r';
  index: number;
  blockSize: number;
  base: BlockRef | null;
  /** Bytes written since `base`. */
  written: Ranges;
  /** The last write's sequence number. */
  seq: number;
}

export interface Replay {
  blocks: ReplayedBlock[];
  /** The last length the journal saw per fork (`<volume>\0<file>\0<fork>`), for forks with dirty blocks. */
  lengths: Map<string, number>;
  /** Lines that could not be parsed (a torn last line after a crash is expected). */
  skipped: number;
}

export function forkKey(volume: string, file: number, fork: 'd' | 'r'): string {
  return `${volume}\0${file}\0${fork}`;
}

const blockKey = (r: { v: string; f: number; k: string; i: number }) => `${r.v}\0${r.f}\0${r.k}\0${r.i}`;

/** Rebuilds the dirty set from journal lines. */
export function replay(text: string): Replay {
  interface Entry {
    rec: ReplayedBlock;
    writes: { q: number; s: number; e: number }[];
  }
  const entries = new Map<string, Entry>();
  const lengths = new Map<string, number>();
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let r: JournalRecord;
    try {
      r = JSON.parse(line) as JournalRecord;
    } catch {
      skipped++;
      continue;
    }
    switch (r.t) {
      case 'w': {
        let e = entries.get(blockKey(r));
        if (!e) {
          e = { rec: { volume: r.v, file: r.f, fork: r.k, index: r.i, blockSize: r.z, base: fromRef(r.b), written: new Ranges(), seq: r.q }, writes: [] };
          entries.set(blockKey(r), e);
        }
        e.writes.push({ q: r.q, s: r.s, e: r.e });
        e.rec.seq = Math.max(e.rec.seq, r.q);
        lengths.set(forkKey(r.v, r.f, r.k), r.n);
        break;
      }
      case 'c': {
        const e = entries.get(blockKey(r));
        if (!e) break;
        e.writes = e.writes.filter((w) => w.q > r.q);
        if (e.writes.length === 0) entries.delete(blockKey(r));
        else e.rec.base = fromRef(r.r);
        break;
      }
      case 'x':
        entries.delete(blockKey(r));
        break;
      case 'b': {
        const e = entries.get(blockKey(r));
        if (e) e.rec.base = fromRef(r.r);
        break;
      }
      case 'l':
        lengths.set(forkKey(r.v, r.f, r.k), r.n);
        break;
      default:
        skipped++;
    }
  }
  const blocks: ReplayedBlock[] = [];
  const live = new Set<string>();
  for (const e of entries.values()) {
    for (const w of e.writes) e.rec.written.add(w.s, w.e);
    blocks.push(e.rec);
    live.add(forkKey(e.rec.volume, e.rec.file, e.rec.fork));
  }
  for (const k of [...lengths.keys()]) if (!live.has(k)) lengths.delete(k);
  return { blocks, lengths, skipped };
}

export class Journal {
  private fd: number;
  private bytes: number;
  /** Lines appended by this process; a flush with none since the last fsync needs none. */
  private appends = 0;
  /** `appends` at the last fsync; -1 so the first flush also covers lines a crashed process left. */
  private syncedAppends = -1;

  private constructor(private readonly path: string, fd: number, bytes: number) {
    this.fd = fd;
    this.bytes = bytes;
  }

  /** Opens (creating) the journal and returns what it held. */
  static open(path: string): { journal: Journal; replay: Replay } {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const fd = openSync(path, 'a');
    return { journal: new Journal(path, fd, Buffer.byteLength(text)), replay: replay(text) };
  }

  get size(): number {
    return this.bytes;
  }

  /**
   * Appends synchronously: a few microseconds into the page cache, and no other append or
   * acknowledgement can slip in between the write it records and its reply.
   */
  append(rec: JournalRecord): void {
    const line = Buffer.from(JSON.stringify(rec) + '\n');
    let off = 0;
    while (off < line.length) off += writeSync(this.fd, line, off);
    this.bytes += line.length;
    this.appends++;
  }

  /**
   * Makes every line appended so far durable, on the thread pool so that other sessions go on
   * meanwhile. Through a descriptor of its own, never the append descriptor a rewrite may
   * close (and the kernel reuse) under it: if a rewrite replaced the file in between, the new
   * file already holds what still matters, fsynced, and syncing either inode is enough.
   * Called only by FPFlush/FPFlushFork.
   */
  async fsync(): Promise<void> {
    const target = this.appends;
    if (this.syncedAppends >= target) return;
    const fh = await open(this.path, 'r');
    try {
      await fh.sync();
      this.syncedAppends = Math.max(this.syncedAppends, target);
    } finally {
      await fh.close();
    }
  }

  /**
   * Replaces the journal with `records` (the current dirty state), atomically and durably.
   * Synchronous from start to rename, so no append can land in the old file after the new
   * one was written (it would be lost with the old file).
   */
  rewrite(records: readonly JournalRecord[]): void {
    const tmp = `${this.path}.tmp`;
    const body = records.map((r) => JSON.stringify(r) + '\n').join('');
    const fd = openSync(tmp, 'w');
    try {
      let off = 0;
      const buf = Buffer.from(body);
      while (off < buf.length) off += writeSync(fd, buf, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.bytes = Buffer.byteLength(body);
    // The new file holds everything still needed, and it was fsynced above.
    this.syncedAppends = this.appends;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
