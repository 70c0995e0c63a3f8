/**
 * Block maps: where each block of each fork lives in the object store. They are part of a
 * volume's namespace (same keys, same hash tag, same transactions) so that removing a file,
 * exchanging two files or changing a fork's length moves its blocks in the same atomic step
 * as the node record: a block can never outlive its file, nor a file point at a block that
 * was collected.
 *
 * A fork is cut into blocks of the volume's block size; block i covers bytes
 * [i × blockSize, (i + 1) × blockSize). A block is absent (a hole or all zeros: no object)
 * or names one immutable object by a `BlockRef`. Switching a block to a new object is a
 * compare-and-set; the replaced object goes onto the volume's GC queue and is deleted after
 * a grace period, so a reader on another node that still holds the old ref finds it.
 */
import type { ForkKind } from './forks.js';
import type { NodeRecord } from './namespace.js';

/**
 * One object: written for file `file` (the file's CNID when the bytes were written; after
 * FPExchangeFiles the ref moves with the bytes to the other file) as generation `gen`.
 * Generations are unique per volume, so (file, fork, index, gen) never names two objects.
 */
export interface BlockRef {
  file: number;
  gen: number;
}

export interface BlockChange {
  index: number;
  /** The ref the caller based its bytes on; null = absent. Compared by value. */
  expect: BlockRef | null;
  /** The new ref; null = absent (a hole, or a block of zeros). */
  next: BlockRef | null;
}

export interface ForkCommit {
  changes: readonly BlockChange[];
  /**
   * The fork's new length, when it changes. Blocks at or past ceil(length / blockSize) are
   * dropped onto the GC queue, including any `next` among `changes` (an upload that finishes
   * after a truncate never resurrects a block past the end). Updates the node's
   * dataLength/rsrcLength and the volume's byte count.
   */
  length?: number;
  /** Sets the node's modifiedAt when given. */
  modifiedAt?: number;
  /** Epoch ms: the time stamped on GC entries this commit creates. */
  now: number;
}

export type ForkCommitResult =
  | { ok: true; node: NodeRecord }
  /** Indices whose `expect` did not hold; nothing was applied. */
  | { ok: false; conflicts: number[] };

/** An object that no block map refers to any more, waiting for its grace period. */
export interface GcEntry {
  file: number;
  fork: ForkKind;
  index: number;
  gen: number;
  /** Epoch ms when it was queued. */
  at: number;
}

export interface BlockMapStore {
  /**
   * The volume's block size, fixed by the first call (`proposed`) and returned unchanged
   * ever after: blocks already written are cut at that size, so a changed configuration
   * must not reinterpret them.
   */
  fixBlockSize(proposed: number): Promise<number>;
  /** Reserves `count` (≥ 1) generation numbers; returns the first. Never hands one out twice. */
  reserveGenerations(count: number): Promise<number>;
  /** Every present block of the fork, by ascending index. Fails with not-found, is-dir. */
  blockMap(fileId: number, fork: ForkKind): Promise<Map<number, BlockRef>>;
  /** One block's ref, null when absent. Fails with not-found, is-dir. */
  blockRef(fileId: number, fork: ForkKind, index: number): Promise<BlockRef | null>;
  /**
   * Applies block changes and an optional length atomically when every `expect` holds.
   * Fails with not-found (the file is gone: the caller drops its objects), is-dir.
   * Refs replaced or dropped go onto the GC queue stamped `now`; a `next` equal to `expect`
   * changes nothing.
   */
  commitFork(fileId: number, fork: ForkKind, commit: ForkCommit): Promise<ForkCommitResult>;
  /** GC entries queued at or before `before`, oldest first, at most `limit`. */
  gcDue(before: number, limit: number): Promise<GcEntry[]>;
  /** Forgets entries whose objects have been deleted (matched by file, fork, index and gen). */
  gcDone(entries: readonly GcEntry[]): Promise<void>;
  /** How many entries wait on the queue. */
  gcPending(): Promise<number>;
  /**
   * Calls `w.changed` when another node commits a block map or length of a fork of this
   * volume, and `w.gap` when notices may have been missed (the feed was reconnected), so a
   * node that holds forks open reloads them instead of serving bytes another node replaced.
   * Absent where no other node can change the volume (the embedded store). Returns the
   * function that stops watching.
   */
  watchForks?(w: ForkWatcher): () => void;
}

export interface ForkWatcher {
  changed(fileId: number, fork: ForkKind): void;
  gap(): void;
}

/** Two refs name the same object (null: both absent). */
export function sameRef(a: BlockRef | null, b: BlockRef | null): boolean {
  return a === null || b === null ? a === b : a.file === b.file && a.gen === b.gen;
}
