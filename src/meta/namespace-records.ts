/**
 * Helpers both namespace backends share, so that they validate the same inputs, fill in
 * the same defaults, order keys the same way and fail in the same order.
 */
import {
  FIRST_FREE_ID,
  NamespaceError,
  PARENT_OF_ROOT,
  ROOT_ID,
  type NamespaceFailure,
  type NodeInit,
  type NodeKind,
  type NodePatch,
  type NodeRecord,
} from './namespace.js';

export const FINDER_INFO_LENGTH = 32;
/** The counter's value before the first create: the next CNID handed out is FIRST_FREE_ID. */
export const COUNTER_START = FIRST_FREE_ID - 1;

export function fail(reason: NamespaceFailure, detail: string): NamespaceError {
  return new NamespaceError(reason, detail);
}

/**
 * Volume keys name storage keys; braces would move the Redis hash tag. The rule holds for
 * the embedded store too, so that any volume can be migrated to Redis.
 */
export function checkVolumeKey(volumeKey: string): void {
  if (typeof volumeKey !== 'string' || volumeKey === '' || /[{}]/.test(volumeKey) || LONE_SURROGATE.test(volumeKey)) {
    throw new RangeError(`volume key must be a non-empty, well-formed string without braces: ${JSON.stringify(volumeKey)}`);
  }
}

// With the u flag a surrogate range matches only halves that are not part of a pair.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Names, xattr names and kv keys must be well-formed UTF-16: Redis stores UTF-8, where a
 * lone surrogate would silently become U+FFFD and two names could collide.
 */
export function checkString(s: string, what: string): void {
  if (typeof s !== 'string' || LONE_SURROGATE.test(s)) throw new RangeError(`${what} must be a well-formed string: ${JSON.stringify(s)}`);
}

export function checkName(name: string): void {
  checkString(name, 'name');
  if (name === '') throw new RangeError('name must not be empty');
}

/** For lookups: a name that could never have been created is simply not there. */
export function isValidName(name: string): boolean {
  try {
    checkName(name);
    return true;
  } catch {
    return false;
  }
}

export function checkXattrName(name: string): void {
  checkString(name, 'xattr name');
  if (name === '') throw new RangeError('xattr name must not be empty');
}

export function checkKind(kind: NodeKind): void {
  if (kind !== 'dir' && kind !== 'file') throw new RangeError(`kind must be 'dir' or 'file', got ${String(kind)}`);
}

export function checkNow(now: number): void {
  checkInt(now, 'now');
}

/** The fold key under which `name` is indexed, checked so a bad fold cannot corrupt the index. */
export function foldName(fold: (name: string) => string, name: string): string {
  checkName(name);
  const key = fold(name);
  if (typeof key !== 'string' || key === '') throw new RangeError(`fold(${JSON.stringify(name)}) must return a non-empty string`);
  checkString(key, 'fold key');
  return key;
}

/** CNIDs are positive safe integers; anything else names no node. */
export function isId(id: number): boolean {
  return Number.isSafeInteger(id) && id > 0;
}

function checkInt(v: number, what: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${String(v)}`);
}

function checkFinderInfo(b: Buffer): void {
  if (!Buffer.isBuffer(b) || b.length !== FINDER_INFO_LENGTH) throw new RangeError(`finderInfo must be a ${FINDER_INFO_LENGTH}-byte Buffer`);
}

const FIELD_RANGES: Record<'attributes' | 'uid' | 'gid' | 'mode' | 'dataLength' | 'rsrcLength' | 'createdAt' | 'modifiedAt', [number, number]> = {
  attributes: [0, 0xffff],
  uid: [0, 0xffffffff],
  gid: [0, 0xffffffff],
  mode: [0, 0o7777],
  dataLength: [0, Number.MAX_SAFE_INTEGER],
  rsrcLength: [0, Number.MAX_SAFE_INTEGER],
  createdAt: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  modifiedAt: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Throws RangeError for a value the store could not keep exactly (bad ranges are caller bugs). */
export function checkPatch(patch: NodePatch): void {
  for (const [field, [min, max]] of Object.entries(FIELD_RANGES)) {
    const v = patch[field as keyof typeof FIELD_RANGES];
    if (v !== undefined) checkInt(v, field, min, max);
  }
  if (patch.backupAt !== undefined && patch.backupAt !== null) checkInt(patch.backupAt, 'backupAt');
  if (patch.finderInfo !== undefined) checkFinderInfo(patch.finderInfo);
}

/** A fresh record with the defaults the interface promises; copies the caller's Buffer. */
export function newRecord(id: number, parent: number, name: string, kind: NodeKind, init: NodeInit, now: number): NodeRecord {
  checkNow(now);
  for (const f of ['uid', 'gid', 'mode'] as const) if (init[f] === undefined) throw new RangeError(`${f} is required`);
  const record: NodeRecord = {
    id,
    parent,
    name,
    kind,
    attributes: init.attributes ?? 0,
    createdAt: init.createdAt ?? now,
    modifiedAt: init.modifiedAt ?? now,
    backupAt: init.backupAt ?? null,
    finderInfo: init.finderInfo ? Buffer.from(init.finderInfo) : Buffer.alloc(FINDER_INFO_LENGTH),
    uid: init.uid,
    gid: init.gid,
    mode: init.mode,
    dataLength: 0,
    rsrcLength: 0,
    childCount: 0,
  };
  checkPatch(record);
  return record;
}

export function newRoot(rootName: string, init: NodeInit, now: number): NodeRecord {
  checkName(rootName);
  return newRecord(ROOT_ID, PARENT_OF_ROOT, rootName, 'dir', init, now);
}

/** Fork lengths are a file's business: a directory keeps 0 (see NodeRecord). */
export function setsForkLength(patch: NodePatch): boolean {
  return (patch.dataLength ?? 0) !== 0 || (patch.rsrcLength ?? 0) !== 0;
}

/** The fields FPExchangeFiles swaps; IDs, names, parents, owners and modes stay. */
export const EXCHANGED_FIELDS = ['attributes', 'createdAt', 'modifiedAt', 'backupAt', 'finderInfo', 'dataLength', 'rsrcLength'] as const;

const PATCH_FIELDS = ['attributes', 'createdAt', 'modifiedAt', 'backupAt', 'finderInfo', 'uid', 'gid', 'mode', 'dataLength', 'rsrcLength'] as const;

/** The patch's known fields only, so a caller cannot slip an id or childCount through. */
export function patchEntries(patch: NodePatch): [keyof NodePatch, NodePatch[keyof NodePatch]][] {
  const out: [keyof NodePatch, NodePatch[keyof NodePatch]][] = [];
  for (const field of PATCH_FIELDS) if (patch[field] !== undefined) out.push([field, patch[field]]);
  return out;
}

export function applyPatch(record: NodeRecord, patch: NodePatch): NodeRecord {
  const out: NodeRecord = { ...record };
  for (const [field, v] of patchEntries(patch)) {
    if (field === 'finderInfo') out.finderInfo = Buffer.from(v as Buffer);
    else (out as unknown as Record<string, unknown>)[field] = v;
  }
  return out;
}

/** A caller that mutates a returned Buffer must not change the stored record. */
export function copyRecord(r: NodeRecord): NodeRecord {
  return { ...r, finderInfo: Buffer.from(r.finderInfo) };
}

export function checkPage(opts: { after?: string; offset?: number; limit: number }): void {
  checkInt(opts.limit, 'limit', 0);
  if (opts.offset !== undefined) checkInt(opts.offset, 'offset', 0);
  if (opts.after !== undefined) checkString(opts.after, 'after');
}

/*
 * Sort keys. Children are listed in code-unit order of their fold keys, but LMDB and
 * Redis's ZRANGEBYLEX compare UTF-8 bytes, which order U+E000..U+FFFF after the surrogate
 * pairs that code-unit order puts first. `sortKey` maps each code unit to one code point so
 * that the UTF-8 byte order of the result is the code-unit order of the input:
 *   U+0000..U+0005  ->  U+0005 followed by '0'..'5' (lmdb-js escapes units 0..4 in short
 *                       keys only, which would make short and long keys disagree)
 *   U+0006..U+D7FF  ->  itself (so keys stay readable in redis-cli)
 *   U+D800..U+FFFF  ->  U+E000..U+107FF (lone or paired surrogates become ordinary scalars)
 * It works unit by unit, so it keeps prefixes: a key range for a prefix is a range of sort keys.
 */
const ESCAPE = 0x05;
const DIGIT_ZERO = 0x30;
const SURROGATE_SHIFT = 0x800;

export function sortKey(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u <= ESCAPE) out += String.fromCharCode(ESCAPE, DIGIT_ZERO + u);
    else if (u < 0xd800) out += s[i];
    else out += String.fromCodePoint(u + SURROGATE_SHIFT);
  }
  return out;
}

export function unsortKey(k: string): string {
  let out = '';
  for (let i = 0; i < k.length; i++) {
    const cp = k.codePointAt(i)!;
    if (cp === ESCAPE) out += String.fromCharCode(k.charCodeAt(++i) - DIGIT_ZERO);
    else if (cp >= 0xe000) {
      out += String.fromCharCode(cp - SURROGATE_SHIFT);
      if (cp > 0xffff) i++;
    } else out += k[i];
  }
  return out;
}
