/**
 * Helpers both namespace backends share for block maps (see block-maps.ts), so that they
 * validate the same inputs in the same order, encode GC entries the same way and list them
 * in the same order.
 */
import type { BlockRef, ForkCommit, GcEntry } from './block-maps.js';
import type { ForkKind } from './forks.js';
import { checkNow } from './namespace-records.js';

/**
 * The most generations one reserveGenerations call hands out: a caller that asks for more
 * is broken, and the counter must not run out of safe integers because of it.
 */
export const MAX_GENERATION_BATCH = 1_000_000;

export type ForkCode = 'd' | 'r';

function isPositive(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) > 0;
}

function isIndex(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

export function checkBlockSize(size: number): void {
  if (!isPositive(size)) throw new RangeError(`block size must be a positive safe integer, got ${String(size)}`);
}

export function checkGenerationCount(count: number): void {
  if (!isPositive(count) || count > MAX_GENERATION_BATCH) throw new RangeError(`generation count must be an integer in [1, ${MAX_GENERATION_BATCH}], got ${String(count)}`);
}

export function checkFork(fork: ForkKind): void {
  if (fork !== 'data' && fork !== 'rsrc') throw new RangeError(`fork must be 'data' or 'rsrc', got ${String(fork)}`);
}

export function checkIndex(index: number): void {
  if (!isIndex(index)) throw new RangeError(`block index must be a non-negative safe integer, got ${String(index)}`);
}

function checkRef(ref: BlockRef | null, what: string): void {
  if (ref === null) return;
  if (typeof ref !== 'object' || !isPositive(ref.file) || !isPositive(ref.gen)) {
    throw new RangeError(`${what} must be null or { file, gen } of positive safe integers, got ${JSON.stringify(ref)}`);
  }
}

/** Throws RangeError for anything a commit could not apply exactly (caller bugs, not conflicts). */
export function checkCommit(fork: ForkKind, commit: ForkCommit): void {
  checkFork(fork);
  if (typeof commit !== 'object' || commit === null || !Array.isArray(commit.changes)) throw new RangeError('commit must have an array of changes');
  const seen = new Set<number>();
  for (const c of commit.changes) {
    checkIndex(c.index);
    if (seen.has(c.index)) throw new RangeError(`block ${c.index} is changed twice in one commit`);
    seen.add(c.index);
    checkRef(c.expect, `expect of block ${c.index}`);
    checkRef(c.next, `next of block ${c.index}`);
  }
  if (commit.length !== undefined && !isIndex(commit.length)) throw new RangeError(`length must be a non-negative safe integer, got ${String(commit.length)}`);
  if (commit.modifiedAt !== undefined && !Number.isSafeInteger(commit.modifiedAt)) throw new RangeError(`modifiedAt must be a safe integer, got ${String(commit.modifiedAt)}`);
  checkNow(commit.now);
}

export function checkGcQuery(before: number, limit: number): void {
  if (!Number.isSafeInteger(before)) throw new RangeError(`before must be a safe integer, got ${String(before)}`);
  if (!isIndex(limit)) throw new RangeError(`limit must be a non-negative safe integer, got ${String(limit)}`);
}

/** `at` is not checked: entries are matched without it. */
export function checkGcEntries(entries: readonly GcEntry[]): void {
  if (!Array.isArray(entries)) throw new RangeError('GC entries must be an array');
  for (const e of entries) {
    if (typeof e !== 'object' || e === null || !isPositive(e.file) || !isIndex(e.index) || !isPositive(e.gen)) throw new RangeError(`malformed GC entry ${JSON.stringify(e)}`);
    checkFork(e.fork);
  }
}

export { sameRef } from './block-maps.js';

export function forkCode(fork: ForkKind): ForkCode {
  return fork === 'data' ? 'd' : 'r';
}

export function lengthField(fork: ForkKind): 'dataLength' | 'rsrcLength' {
  return fork === 'data' ? 'dataLength' : 'rsrcLength';
}

/**
 * The first block index a fork of `length` bytes does not cover: blocks at or past it are
 * dropped. Without a fixed block size no block was ever written, so nothing is dropped.
 * (For lengths below 2^53 the double division cannot round a fractional quotient onto an
 * integer, so Math.ceil is exact; the Lua scripts rely on the same.)
 */
export function firstDropped(length: number, blockSize: number | undefined): number {
  return blockSize ? Math.ceil(length / blockSize) : Number.POSITIVE_INFINITY;
}

/**
 * The identity of a GC entry, `<file>:<d|r>:<index>:<gen>` in decimal. It is the Redis
 * sorted-set member and the tail of the LMDB key, so entries queued at the same millisecond
 * come out in the byte order of this string on both backends (file 10 before file 9).
 * An object has one entry: queuing it again restamps it.
 */
export function gcMember(e: Pick<GcEntry, 'file' | 'fork' | 'index' | 'gen'>): string {
  return `${e.file}:${forkCode(e.fork)}:${e.index}:${e.gen}`;
}

const MEMBER = /^(\d{1,16}):([dr]):(\d{1,16}):(\d{1,16})$/;

/** Undefined for a member no backend would have written. */
export function parseGcMember(member: string, at: number): GcEntry | undefined {
  const m = MEMBER.exec(member);
  if (!m || !Number.isSafeInteger(at)) return undefined;
  const [file, index, gen] = [Number(m[1]), Number(m[3]), Number(m[4])];
  if (!isPositive(file) || !isIndex(index) || !isPositive(gen)) return undefined;
  return { file, fork: m[2] === 'd' ? 'data' : 'rsrc', index, gen, at };
}

/** The order gcDue lists entries in: oldest first, then by gcMember's bytes (all ASCII). */
export function compareGcEntries(a: GcEntry, b: GcEntry): number {
  if (a.at !== b.at) return a.at - b.at;
  const [x, y] = [gcMember(a), gcMember(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}
