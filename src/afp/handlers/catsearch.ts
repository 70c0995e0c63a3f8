/**
 * FPCatSearch (43) and FPCatSearchExt (67): find every object on a volume that meets a set
 * of criteria, a page at a time.
 *
 * Layouts (Wireshark epan/dissectors/packet-afp.c: query_catsearch, catsearch_spec,
 * reply_catsearch, loop_record; netatalk etc/afpd/catsearch.c: catsearch_afp, rslt_add;
 * netatalk afptest test/afpcli.c: AFPCatSearch/AFPCatSearchExt, afp_filedir_pack):
 *
 *   request  cmd(1) pad(1) VolID(2) ReqMatches(4) Reserved(4) CatalogPosition(16)
 *            FileRsltBitmap(2) DirRsltBitmap(2) ReqBitmap(4) Spec1 Spec2
 *   Spec     FPCatSearch: Length(1) pad(1) params; FPCatSearchExt: Length(2) params.
 *            Length counts the params only; Spec2 follows Spec1 with no padding.
 *            params: the fields of ReqBitmap's low word in bit order, laid out as in a
 *            parameter block; a name field holds a 16-bit offset from the start of params
 *            (UTF8Name: offset(2) + 4 more bytes) to a pstring (LongName) or to
 *            hint(4) length(2) bytes (UTF8Name).
 *            Spec1 holds values and lower bounds, Spec2 upper bounds and masks.
 *   ReqBitmap Attributes 0x1 (Spec1 value, Spec2 mask), ParentDirID 0x2, CreateDate 0x4,
 *            ModDate 0x8, BackupDate 0x10 (ranges), FinderInfo 0x20 (value, mask),
 *            LongName 0x40, UTF8Name 0x2000 (Spec1 only), and, because their meaning
 *            depends on the kind, only in a one-kind search: OffspringCount 0x200 (dirs)
 *            or DataForkLen 0x200, RsrcForkLen 0x400, ExtDataForkLen 0x800,
 *            ExtRsrcForkLen 0x4000 (files). Bit 31 set: names match partially.
 *   reply    CatalogPosition(16) FileRsltBitmap(2) DirRsltBitmap(2) ActualCount(4), then
 *            per entry FPCatSearch: Length(1) IsDir(1) params; FPCatSearchExt: Length(2)
 *            IsDir(1) pad(1) params. Unlike FPEnumerate, Length excludes the header
 *            (netatalk writes it so, Wireshark adds 2 or 4 back). params are even-padded.
 *            The last page comes with kFPEOFErr, entries included (afptest reads
 *            ActualCount from an EOF reply).
 *
 * Semantics follow netatalk, except where it is plainly unfinished (it parses ParentDirID
 * and OffspringCount but never tests them): ranges are inclusive, masks apply to both the
 * value and the object, FinderInfo is masked byte by byte, names match without regard to
 * case or Unicode normalization. As in netatalk, FPCatSearch returns at most ParentDirID
 * and LongName (other requested result bits are dropped and the reply says so).
 *
 * The walk is depth-first over `v.list` pages, and needs no state between calls: the
 * CatalogPosition names the directory being listed and the last child examined in it
 * (children come in fold-key order, so listing resumes just after it); a finished
 * directory resumes its parent after itself. A position that fails its check, or whose
 * directory or last child is gone (or the child has left that directory), is
 * kFPCatalogChanged, which tells the client to start again from a zero position: better
 * than restarting silently and handing a client that believes it is resuming duplicates.
 */
import { createHash } from 'node:crypto';
import { ROOT_ID, type NodeKind, type NodeRecord } from '../../volume/node.js';
import { rightsOf, type Principal } from '../../volume/permissions.js';
import type { Volume } from '../../volume/volume.js';
import { Reader } from '../../wire/reader.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import { AFP_DATE_NEVER, toAfpDate } from '../dates.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { withCodes } from '../fs-errors.js';
import { decodeMacRoman, encodeMacRomanLossy } from '../mac-roman.js';
import { UTF8_HINT } from '../names.js';
import { checkBitmap, dirFields, encodeBlock, fileFields, type Tail } from '../params.js';
import { kFPBitmapErr, kFPCatalogChanged, kFPEOFErr, kFPParamErr } from '../result-codes.js';
import type { AfpReply } from '../reply.js';
import type { AfpSession } from '../session.js';
import { nodeContext } from './common.js';

/** Inclusive bounds. */
export type Bounds = readonly [number, number];
/** Inclusive bounds in epoch ms; null: "never" as a low bound, "no limit" as a high one. */
export type DateBounds = readonly [number | null, number | null];

/** A search as a client states it; each criterion reads its own key. */
export interface CatSearchQuery {
  attributes?: { bits: number; mask: number };
  parentId?: Bounds;
  createdAt?: DateBounds;
  modifiedAt?: DateBounds;
  backupAt?: DateBounds;
  finderInfo?: { bytes: Buffer; mask: Buffer };
  longName?: string;
  offspringCount?: Bounds;
  dataLength?: Bounds;
  rsrcLength?: Bounds;
  extDataLength?: Bounds;
  utf8Name?: string;
  extRsrcLength?: Bounds;
  /** Names match as substrings unless this is true. */
  wholeName?: boolean;
}

/** ReqBitmap bit 31: names match partially (netatalk CATPBIT_PARTIAL). */
export const PARTIAL_NAMES = 0x80000000;

type Test = (n: NodeRecord) => boolean;
/** Spec1 is side 0, Spec2 side 1. */
type Side = 0 | 1;

interface SpecContext {
  spec1: Buffer;
  fold(name: string): string;
  partial: boolean;
}

/**
 * One search criterion, serving both ends as the fields of params.ts do: the server parses
 * it from the two Specs into a test, the client builds it from a query.
 */
export interface Criterion {
  bit: number;
  name: string;
  /** Bytes the field takes in the fixed part of each Spec. */
  size: number;
  /** Set on the bits that mean this only in a search of that one kind of object. */
  kind?: NodeKind;
  /** Ranges and masks need Spec2; names come from Spec1 alone. */
  bounded: boolean;
  parse(s1: Reader, s2: Reader, c: SpecContext): Test;
  build(w: Writer, q: CatSearchQuery, side: Side, tail: Tail): void;
  present(q: CatSearchQuery): boolean;
}

interface Codec {
  size: number;
  read(r: Reader): number;
  write(w: Writer, v: number): void;
}

const u16: Codec = { size: 2, read: (r) => r.u16(), write: (w, v) => w.u16(v) };
const u32: Codec = { size: 4, read: (r) => r.u32(), write: (w, v) => w.u32(v) };
const u64: Codec = { size: 8, read: (r) => Number(r.u64()), write: (w, v) => w.u64(BigInt(v)) };
const afpDate = (ms: number | null): number => (ms === null ? AFP_DATE_NEVER : toAfpDate(ms));

type RangeKey = 'parentId' | 'offspringCount' | 'dataLength' | 'rsrcLength' | 'extDataLength' | 'extRsrcLength';

function range(bit: number, name: string, c: Codec, key: RangeKey, get: (n: NodeRecord) => number, kind?: NodeKind): Criterion {
  return {
    bit,
    name,
    size: c.size,
    ...(kind ? { kind } : {}),
    bounded: true,
    parse(s1, s2) {
      const lo = c.read(s1);
      const hi = c.read(s2);
      return (n) => lo <= get(n) && get(n) <= hi;
    },
    build: (w, q, side) => c.write(w, q[key]?.[side] ?? 0),
    present: (q) => q[key] !== undefined,
  };
}

function date(bit: number, name: string, key: 'createdAt' | 'modifiedAt' | 'backupAt'): Criterion {
  return {
    bit,
    name,
    size: 4,
    bounded: true,
    parse(s1, s2) {
      const lo = s1.i32();
      const hi = s2.i32();
      return (n) => lo <= afpDate(n[key]) && afpDate(n[key]) <= hi;
    },
    build(w, q, side) {
      const ms = q[key]?.[side] ?? null;
      w.i32(ms !== null ? toAfpDate(ms) : side === 0 ? AFP_DATE_NEVER : 0x7fffffff);
    },
    present: (q) => q[key] !== undefined,
  };
}

/** Attributes and Finder info: Spec1 holds the bits wanted, Spec2 which bits count. */
function masked(bit: number, name: string, size: number, get: (n: NodeRecord) => Buffer, want: (q: CatSearchQuery) => readonly [Buffer, Buffer] | undefined): Criterion {
  return {
    bit,
    name,
    size,
    bounded: true,
    parse(s1, s2) {
      const value = Buffer.from(s1.bytes(size));
      const mask = Buffer.from(s2.bytes(size));
      return (n) => {
        const have = get(n);
        for (let i = 0; i < size; i++) if ((have[i]! & mask[i]!) !== (value[i]! & mask[i]!)) return false;
        return true;
      };
    },
    build: (w, q, side) => w.bytes(Buffer.concat([want(q)?.[side] ?? Buffer.alloc(0), Buffer.alloc(size)]).subarray(0, size)),
    present: (q) => want(q) !== undefined,
  };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** LongName: a pstring; AFP 3 clients send UTF-8 there too, old ones Mac Roman (as for paths). */
function readLongName(r: Reader): string {
  const b = r.pstring();
  try {
    return strictUtf8.decode(b);
  } catch {
    return decodeMacRoman(b);
  }
}

function readUtf8Name(r: Reader): string {
  r.u32(); // text-encoding hint
  try {
    return strictUtf8.decode(r.bytes(r.u16()));
  } catch {
    throw new AfpError(kFPParamErr, 'UTF8Name criterion is not valid UTF-8');
  }
}

function name(bit: number, label: string, key: 'longName' | 'utf8Name'): Criterion {
  const utf8 = key === 'utf8Name';
  return {
    bit,
    name: label,
    size: utf8 ? 6 : 2,
    bounded: false,
    parse(s1, _s2, c) {
      const at = new Reader(c.spec1, s1.u16());
      if (utf8) s1.skip(4);
      const want = c.fold(utf8 ? readUtf8Name(at) : readLongName(at));
      return c.partial ? (n) => c.fold(n.name).includes(want) : (n) => c.fold(n.name) === want;
    },
    build(w, q, side, tail) {
      w.u16(0);
      if (utf8) w.u32(0);
      // Spec2 carries an empty name, as afptest sends it.
      const text = side === 0 ? (q[key] ?? '') : '';
      tail((t) => {
        if (utf8) {
          const b = Buffer.from(text.normalize('NFD'), 'utf8');
          t.u32(UTF8_HINT).u16(b.length).bytes(b);
        } else t.pstring(encodeMacRomanLossy(text));
      });
    },
    present: (q) => q[key] !== undefined,
  };
}

const word = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const clamp32 = (n: number): number => Math.min(n, 0xffffffff);

/** Every criterion in bit order; 0x200 means one thing for files and another for directories. */
export const catSearchCriteria: readonly Criterion[] = [
  masked(0x0001, 'Attributes', 2, (n) => word(n.attributes), (q) => q.attributes && [word(q.attributes.bits), word(q.attributes.mask)]),
  range(0x0002, 'ParentDirID', u32, 'parentId', (n) => n.parent),
  date(0x0004, 'CreateDate', 'createdAt'),
  date(0x0008, 'ModDate', 'modifiedAt'),
  date(0x0010, 'BackupDate', 'backupAt'),
  masked(0x0020, 'FinderInfo', 32, (n) => n.finderInfo, (q) => q.finderInfo && [q.finderInfo.bytes, q.finderInfo.mask]),
  name(0x0040, 'LongName', 'longName'),
  range(0x0200, 'OffspringCount', u16, 'offspringCount', (n) => Math.min(n.childCount, 0xffff), 'dir'),
  range(0x0200, 'DataForkLen', u32, 'dataLength', (n) => clamp32(n.dataLength), 'file'),
  range(0x0400, 'RsrcForkLen', u32, 'rsrcLength', (n) => clamp32(n.rsrcLength), 'file'),
  range(0x0800, 'ExtDataForkLen', u64, 'extDataLength', (n) => n.dataLength, 'file'),
  name(0x2000, 'UTF8Name', 'utf8Name'),
  range(0x4000, 'ExtRsrcForkLen', u64, 'extRsrcLength', (n) => n.rsrcLength, 'file'),
];

/** The criteria a search may use: a kind-specific bit needs a search of that kind alone. */
export function criteriaFor(files: boolean, dirs: boolean): Criterion[] {
  return catSearchCriteria.filter((c) => c.kind === undefined || (c.kind === 'file' ? !dirs : !files));
}

/** Reads both Specs into one test; kFPBitmapErr for bits this search cannot use. */
function parseCriteria(reqBitmap: number, files: boolean, dirs: boolean, spec1: Buffer, spec2: Buffer, fold: (name: string) => string): Test {
  const usable = criteriaFor(files, dirs);
  let known = PARTIAL_NAMES;
  for (const c of usable) known |= c.bit;
  if ((reqBitmap & ~known) !== 0) throw new AfpError(kFPBitmapErr, `ReqBitmap 0x${(reqBitmap >>> 0).toString(16)} has bits this search cannot use`);
  const s1 = new Reader(spec1);
  const s2 = new Reader(spec2);
  const ctx: SpecContext = { spec1, fold, partial: (reqBitmap & PARTIAL_NAMES) !== 0 };
  const tests: Test[] = [];
  // Spec2 need only reach its last range or mask: a client may leave the names out of it.
  let unread2 = 0;
  for (const c of usable) {
    if (!(reqBitmap & c.bit)) continue;
    if (c.bounded) {
      s2.skip(unread2);
      unread2 = 0;
    } else unread2 += c.size;
    tests.push(c.parse(s1, s2, ctx));
  }
  return (n) => tests.every((t) => t(n));
}

const IS_DIR = 0x80;
/** FPCatSearch answers with these at most (netatalk: "only name and parent id are allowed"). */
const LEGACY_RESULT_BITS = 0x0002 | 0x0040;
/** CatalogPosition(16) FileRsltBitmap(2) DirRsltBitmap(2) ActualCount(4). */
const HEADER = 24;
/**
 * Netatalk stops at 448 bytes, an ASP-era limit; DSI clients take far more, and this stays
 * well under the 32000-byte DSI floor every client accepts.
 */
const REPLY_CAP = 16 * 1024;
const PAGE = 256;
/** Work per call, so a search of a huge volume answers (perhaps with nothing) and resumes. Tests lower them. */
export const catSearchLimits = { examined: 2048, storeCalls: 256 };

/** Where the walk stands: listing `dir`, just after the child `after` (at its start when null). */
interface Cursor {
  dir: NodeRecord;
  after: NodeRecord | null;
}

/** Catches garbage and positions from another volume; the objects themselves are checked on resume. */
function positionTag(v: Volume, dirId: number, afterId: number): Buffer {
  return createHash('sha256').update(`catsearch\0${v.wireId}\0${v.name}\0${dirId}\0${afterId}`).digest().subarray(0, 8);
}

/** DirID(4) AfterID(4) tag(8); all zeros once the search is over, as a new search starts. */
function encodePosition(v: Volume, c: Cursor | null): Buffer {
  const out = Buffer.alloc(16);
  if (!c) return out;
  const after = c.after?.id ?? 0;
  out.writeUInt32BE(c.dir.id, 0);
  out.writeUInt32BE(after, 4);
  positionTag(v, c.dir.id, after).copy(out, 8);
  return out;
}

/** FsErrors (ENOENT: an object is gone) are restated as kFPCatalogChanged by the caller. */
async function decodePosition(v: Volume, who: Principal, pos: Buffer): Promise<Cursor> {
  if (pos.every((b) => b === 0)) return { dir: await v.node(ROOT_ID), after: null };
  const dirId = pos.readUInt32BE(0);
  const afterId = pos.readUInt32BE(4);
  if (!positionTag(v, dirId, afterId).equals(pos.subarray(8))) throw new AfpError(kFPCatalogChanged, 'not a CatalogPosition of this volume');
  const dir = await v.nodeFor(who, dirId);
  if (dir.kind !== 'dir') throw new AfpError(kFPCatalogChanged, `${dirId} is no longer a directory`);
  if (afterId === 0) return { dir, after: null };
  const after = await v.node(afterId);
  if (after.parent !== dir.id) throw new AfpError(kFPCatalogChanged, `${afterId} moved out of ${dirId}`);
  return { dir, after };
}

/** Listing needs read, and reading the children's parameters needs search, as on a Unix server. */
function canEnter(who: Principal, dir: NodeRecord): boolean {
  const r = rightsOf(who, dir);
  return r.read && r.search;
}

interface Search {
  v: Volume;
  ext: boolean;
  reqMatches: number;
  files: boolean;
  dirs: boolean;
  fileBitmap: number;
  dirBitmap: number;
  match: Test;
}

async function encodeEntry(s: AfpSession, q: Search, node: NodeRecord): Promise<Buffer> {
  const head = q.ext ? 4 : 2;
  const isDir = node.kind === 'dir';
  const w = new Writer(96).zeros(head);
  encodeBlock(isDir ? dirFields : fileFields, isDir ? q.dirBitmap : q.fileBitmap, await nodeContext(s, q.v, node, isDir ? q.dirBitmap : q.fileBitmap), w);
  w.alignEven();
  const out = w.finish();
  // Length counts the parameters only. FPCatSearch's fit in a byte: ParentDirID and LongName at most.
  if (q.ext) out.writeUInt16BE(out.length - head, 0);
  else out[0] = out.length - head;
  out[q.ext ? 2 : 1] = isDir ? IS_DIR : 0;
  return out;
}

/** Walks depth-first from `cur` until the search ends (next: null) or this call has done enough. */
async function walk(s: AfpSession, q: Search, start: Cursor): Promise<{ found: Buffer[]; next: Cursor | null }> {
  const who = s.user!;
  const found: Buffer[] = [];
  let bytes = HEADER;
  let examined = 0;
  let calls = 0;
  let cur = start;
  const enough = (): boolean => found.length >= q.reqMatches || examined >= catSearchLimits.examined || calls >= catSearchLimits.storeCalls;
  while (!enough()) {
    calls++;
    const page = canEnter(who, cur.dir)
      ? await q.v.list(who, cur.dir, cur.after ? { after: q.v.foldName(cur.after.name), limit: PAGE } : { offset: 0, limit: PAGE })
      : { entries: [] };
    let used = 0;
    let descended = false;
    for (const node of page.entries) {
      if ((node.kind === 'dir' ? q.dirs : q.files) && q.match(node)) {
        const entry = await encodeEntry(s, q, node);
        if (bytes + entry.length > REPLY_CAP) return { found, next: cur };
        found.push(entry);
        bytes += entry.length;
      }
      examined++;
      used++;
      descended = node.kind === 'dir' && canEnter(who, node);
      cur = descended ? { dir: node, after: null } : { dir: cur.dir, after: node };
      if (descended || enough()) break;
    }
    if (descended || used < page.entries.length || page.entries.length === PAGE) continue;
    // This directory is done: go on in its parent, after it.
    if (cur.dir.id === ROOT_ID) return { found, next: null };
    calls++;
    cur = { dir: await q.v.node(cur.dir.parent), after: cur.dir };
  }
  return { found, next: cur };
}

function readSpec(r: Reader, ext: boolean): Buffer {
  const len = ext ? r.u16() : r.u8();
  if (!ext) r.skip(1);
  return r.bytes(len);
}

async function catSearch(s: AfpSession, r: Reader, ext: boolean): Promise<AfpReply> {
  r.skip(1);
  const v = s.volume(r.u16());
  const reqMatches = r.u32();
  r.skip(4); // reserved
  const position = r.bytes(16);
  const fileRequested = r.u16();
  const dirRequested = r.u16();
  const reqBitmap = r.u32();
  const spec1 = readSpec(r, ext);
  const spec2 = readSpec(r, ext);
  if (fileRequested === 0 && dirRequested === 0) throw new AfpError(kFPBitmapErr, 'both result bitmaps are empty');
  checkBitmap(fileFields, fileRequested);
  checkBitmap(dirFields, dirRequested);
  const files = fileRequested !== 0;
  const dirs = dirRequested !== 0;
  // Case folds even on a case-sensitive volume: a Finder search ignores case (netatalk: strcasestr).
  const match = parseCriteria(reqBitmap, files, dirs, spec1, spec2, (n) => v.foldName(n.toLowerCase()));
  if (reqMatches === 0) throw new AfpError(kFPParamErr, 'ReqMatches is 0');
  const q: Search = {
    v,
    ext,
    reqMatches,
    files,
    dirs,
    match,
    fileBitmap: ext ? fileRequested : fileRequested & LEGACY_RESULT_BITS,
    dirBitmap: ext ? dirRequested : dirRequested & LEGACY_RESULT_BITS,
  };
  const stale = { ENOENT: kFPCatalogChanged, ENOTDIR: kFPCatalogChanged };
  const { found, next } = await withCodes(stale, async () => walk(s, q, await decodePosition(v, s.user!, position)));
  const head = new Writer(HEADER).bytes(encodePosition(v, next)).u16(q.fileBitmap).u16(q.dirBitmap).u32(found.length).finish();
  return { ...(next === null ? { code: kFPEOFErr } : {}), payload: [head, ...found] };
}

export const catSearchCommands: CommandSpec[] = [
  { code: AfpCommand.FPCatSearch, handle: (s, r) => catSearch(s, r, false) },
  { code: AfpCommand.FPCatSearchExt, handle: (s, r) => catSearch(s, r, true) },
];
