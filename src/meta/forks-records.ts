import { checkString, isId } from './namespace-records.js';
import { Access, LOCK_TO_END, type ByteRange, type ForkOpen } from './forks.js';

/**
 * Rules and argument checks both fork-store backends share, so they refuse the same
 * arguments and agree on every conflict.
 */

/** Locks per (file, fork) across all its opens: a bound on what one client can make us hold. */
export const MAX_LOCKS_PER_FORK = 4096;

/** Whether an open with `mode` may join an existing open with `existing` of the same file and fork. */
export function denyConflict(mode: number, existing: number): boolean {
  return (
    (mode & Access.Read && existing & Access.DenyRead) ||
    (mode & Access.Write && existing & Access.DenyWrite) ||
    (mode & Access.DenyRead && existing & Access.Read) ||
    (mode & Access.DenyWrite && existing & Access.Write)
  ) !== 0;
}

export function checkOpenId(openId: string): void {
  checkString(openId, 'openId');
  if (openId === '') throw new RangeError('openId must not be empty');
}

export function checkForkOpen(o: ForkOpen): void {
  checkOpenId(o.openId);
  checkString(o.session, 'session');
  checkString(o.node, 'node');
  if (!isId(o.fileId)) throw new RangeError(`fileId must be a positive integer, got ${String(o.fileId)}`);
  if (o.fork !== 'data' && o.fork !== 'rsrc') throw new RangeError(`bad fork ${String(o.fork)}`);
  if (!Number.isInteger(o.mode) || o.mode < 0 || o.mode > 0xffff) throw new RangeError(`mode must be a 16-bit integer, got ${String(o.mode)}`);
}

/** [start, end) with 0 ≤ start ≤ end ≤ LOCK_TO_END; a lock must not be empty, an access check may. */
export function checkRange(r: ByteRange, allowEmpty: boolean): void {
  const ok = Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end) && r.start >= 0 && r.end <= LOCK_TO_END && (allowEmpty ? r.start <= r.end : r.start < r.end);
  if (!ok) throw new RangeError(`bad byte range [${String(r.start)}, ${String(r.end)})`);
}

/** JavaScript string order (UTF-16 code units), the order the listing methods return. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted by openId, in place. */
export function sortByOpenId(opens: ForkOpen[]): ForkOpen[] {
  return opens.sort((a, b) => compareStrings(a.openId, b.openId));
}
