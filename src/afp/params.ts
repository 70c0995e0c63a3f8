import type { NodePatch, NodeRecord } from '../volume/node.js';
import { PARENT_OF_ROOT, ROOT_ID } from '../volume/node.js';
import { accessRights, type Principal } from '../volume/permissions.js';
import type { Volume } from '../volume/volume.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { AFP_DATE_NEVER, fromAfpDate, toAfpDate } from './dates.js';
import { AfpError } from './errors.js';
import { decodeMacRoman, encodeMacRomanLossy } from './mac-roman.js';
import { longName, UTF8_HINT, wireName } from './names.js';
import { kFPBitmapErr } from './result-codes.js';

/**
 * File, directory and volume parameter blocks as tables of fields, in bit order, the way
 * Wireshark's AFP dissector describes them. One table serves both directions and both
 * ends: the server encodes replies and decodes set requests, the client parses replies and
 * builds set requests. Name fields hold a 16-bit offset from the start of the block; the
 * names follow the fixed part, in bit order, as netatalk writes them.
 */
export interface Field<C> {
  bit: number;
  name: string;
  size: number;
  /** Server: the field's fixed part, with variable data (names) deferred through `tail`. */
  encode(w: Writer, c: C, tail: Tail): void;
  /** Server: a settable field reads its value from a set request into a patch. */
  decode?(r: Reader, patch: NodePatch, node: NodeRecord): void;
  /** Client: reads the field from a reply; `block` and `base` locate name offsets. */
  parse(r: Reader, out: Params, block: Buffer, base: number): void;
  /** Client: writes the field of a set request. */
  build?(w: Writer, p: Params): void;
}

export type Tail = (bytes: (w: Writer) => void) => void;

/** Parameters as the client sees them; each field fills its own key. */
export interface Params {
  attributes?: number;
  parentId?: number;
  createdAt?: number;
  modifiedAt?: number;
  backupAt?: number | null;
  finderInfo?: Buffer;
  longName?: string;
  nodeId?: number;
  dataLength?: number;
  rsrcLength?: number;
  offspringCount?: number;
  ownerId?: number;
  groupId?: number;
  accessRights?: number;
  utf8Name?: string;
  unixPrivs?: { uid: number; gid: number; mode: number; accessRights: number };
  // volume fields
  signature?: number;
  volumeId?: number;
  bytesFree?: number;
  bytesTotal?: number;
  volumeName?: string;
  blockSize?: number;
}

export interface NodeContext {
  node: NodeRecord;
  volume: Volume;
  who: Principal;
  /** AFP attribute bits computed from open forks (DAlreadyOpen / RAlreadyOpen). */
  openBits: number;
}

export function encodeBlock<C>(fields: readonly Field<C>[], bitmap: number, c: C, w: Writer = new Writer(128)): Writer {
  const base = w.length;
  const tails: { at: number; write: (w: Writer) => void }[] = [];
  for (const f of fields) {
    if (!(bitmap & f.bit)) continue;
    const at = w.length;
    f.encode(w, c, (write) => tails.push({ at, write }));
  }
  for (const t of tails) {
    w.patchU16(t.at, w.length - base);
    t.write(w);
  }
  return w;
}

/** Client: parses a block that starts at the reader's position. */
export function parseBlock<C>(fields: readonly Field<C>[], bitmap: number, r: Reader, block: Buffer): Params {
  const base = r.offset;
  const out: Params = {};
  for (const f of fields) if (bitmap & f.bit) f.parse(r, out, block, base);
  return out;
}

/**
 * Client: builds the fixed part of a set request. A field the server will refuse is still
 * sent (as zeros of its size), so that tests can see the server's answer to it.
 */
export function buildBlock<C>(fields: readonly Field<C>[], bitmap: number, p: Params, w: Writer): Writer {
  for (const f of fields) {
    if (!(bitmap & f.bit)) continue;
    if (f.build) f.build(w, p);
    else w.zeros(f.size);
  }
  return w;
}

/** Refuses bits that the table does not define (kFPBitmapErr). */
export function checkBitmap<C>(fields: readonly Field<C>[], bitmap: number): void {
  let known = 0;
  for (const f of fields) known |= f.bit;
  if (bitmap & ~known) throw new AfpError(kFPBitmapErr, `bitmap 0x${bitmap.toString(16)} asks for undefined fields`);
}

/** Server: reads the settable fields of `bitmap` into a patch; a bit that cannot be set is kFPBitmapErr. */
export function decodePatch<C>(fields: readonly Field<C>[], bitmap: number, r: Reader, node: NodeRecord): NodePatch {
  checkBitmap(fields, bitmap);
  const patch: NodePatch = {};
  for (const f of fields) {
    if (!(bitmap & f.bit)) continue;
    if (!f.decode) throw new AfpError(kFPBitmapErr, `${f.name} cannot be set`);
    f.decode(r, patch, node);
  }
  return patch;
}

const u32clamp = (n: number): number => Math.min(n, 0xffffffff);
const afpDate = (ms: number | null | undefined): number => (ms === null || ms === undefined ? AFP_DATE_NEVER : toAfpDate(ms));
const readDate = (r: Reader): number | null => {
  const d = r.i32();
  return d === AFP_DATE_NEVER ? null : fromAfpDate(d);
};
const at = (block: Buffer, base: number, off: number): Reader => new Reader(block, base + off);

/** The attribute bits a client may set or clear; the "fork open" bits are computed. */
const SETTABLE_ATTRIBUTES = 0x0001 | 0x0002 | 0x0004 | 0x0020 | 0x0040 | 0x0080 | 0x0100 | 0x0400;
export const SET_CLEAR = 0x8000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

// The root shows the configured volume name, which comes from a text file and is sent decomposed.
const displayName = (c: NodeContext): string => (c.node.id === ROOT_ID ? c.volume.name.normalize('NFD') : c.node.name);

function attributes(): Field<NodeContext> {
  return {
    bit: 0x0001,
    name: 'Attributes',
    size: 2,
    encode: (w, c) => w.u16(c.node.attributes | c.openBits),
    decode(r, p, node) {
      const v = r.u16();
      const bits = v & SETTABLE_ATTRIBUTES;
      const current = p.attributes ?? node.attributes;
      p.attributes = v & SET_CLEAR ? current | bits : current & ~bits;
    },
    parse: (r, o) => void (o.attributes = r.u16()),
    build: (w, p) => w.u16(p.attributes ?? 0),
  };
}

function date(bit: number, name: string, key: 'createdAt' | 'modifiedAt' | 'backupAt'): Field<NodeContext> {
  return {
    bit,
    name,
    size: 4,
    encode: (w, c) => w.i32(afpDate(c.node[key])),
    decode(r, p) {
      const d = readDate(r);
      if (key === 'backupAt') p.backupAt = d;
      else p[key] = d ?? fromAfpDate(AFP_DATE_NEVER);
    },
    parse(r, o) {
      const d = readDate(r);
      if (key === 'backupAt') o.backupAt = d;
      else o[key] = d ?? fromAfpDate(AFP_DATE_NEVER);
    },
    build: (w, p) => w.i32(afpDate(p[key])),
  };
}

function unixPrivs(): Field<NodeContext> {
  return {
    bit: 0x8000,
    name: 'UnixPrivs',
    size: 16,
    encode: (w, c) =>
      w.u32(c.node.uid).u32(c.node.gid).u32((c.node.kind === 'dir' ? S_IFDIR : S_IFREG) | c.node.mode).u32(accessRights(c.who, c.node)),
    decode(r, p) {
      p.uid = r.u32();
      p.gid = r.u32();
      p.mode = r.u32() & 0o7777;
      r.u32(); // the access-rights summary is derived, never stored
    },
    parse: (r, o) => void (o.unixPrivs = { uid: r.u32(), gid: r.u32(), mode: r.u32(), accessRights: r.u32() }),
    build: (w, p) => w.u32(p.unixPrivs?.uid ?? 0).u32(p.unixPrivs?.gid ?? 0).u32(p.unixPrivs?.mode ?? 0).u32(0),
  };
}

function utf8Name(): Field<NodeContext> {
  return {
    bit: 0x2000,
    name: 'UTF8Name',
    size: 6,
    encode: (w, c, tail) => {
      w.u16(0).u32(0);
      tail((t) => {
        const b = wireName(displayName(c));
        t.u32(UTF8_HINT).u16(b.length).bytes(b);
      });
    },
    parse(r, o, block, base) {
      const off = r.u16();
      r.u32();
      const nr = at(block, base, off);
      nr.u32();
      o.utf8Name = nr.bytes(nr.u16()).toString('utf8');
    },
  };
}

function u32Field(bit: number, name: string, get: (c: NodeContext) => number, key: keyof Params): Field<NodeContext> {
  return { bit, name, size: 4, encode: (w, c) => w.u32(get(c)), parse: (r, o) => void ((o as Record<string, unknown>)[key] = r.u32()) };
}

function u64Field(bit: number, name: string, get: (c: NodeContext) => number, key: keyof Params): Field<NodeContext> {
  return { bit, name, size: 8, encode: (w, c) => w.u64(BigInt(get(c))), parse: (r, o) => void ((o as Record<string, unknown>)[key] = Number(r.u64())) };
}

const common = (): Field<NodeContext>[] => [
  attributes(),
  u32Field(0x0002, 'ParentDirID', (c) => (c.node.id === ROOT_ID ? PARENT_OF_ROOT : c.node.parent), 'parentId'),
  date(0x0004, 'CreateDate', 'createdAt'),
  date(0x0008, 'ModDate', 'modifiedAt'),
  date(0x0010, 'BackupDate', 'backupAt'),
  {
    bit: 0x0020,
    name: 'FinderInfo',
    size: 32,
    encode: (w, c) => w.bytes(c.node.finderInfo),
    decode(r, p) {
      p.finderInfo = Buffer.from(r.bytes(32));
    },
    parse: (r, o) => void (o.finderInfo = Buffer.from(r.bytes(32))),
    build: (w, p) => w.bytes(p.finderInfo ?? Buffer.alloc(32)),
  },
  {
    bit: 0x0040,
    name: 'LongName',
    size: 2,
    encode: (w, c, tail) => {
      w.u16(0);
      tail((t) => t.pstring(longName(displayName(c), c.node.id)));
    },
    parse: (r, o, block, base) => void (o.longName = decodeMacRoman(at(block, base, r.u16()).pstring())),
  },
  // Short (8.3) names are long gone; netatalk answers with a zero offset too.
  { bit: 0x0080, name: 'ShortName', size: 2, encode: (w) => w.u16(0), parse: (r) => void r.u16() },
  u32Field(0x0100, 'NodeID', (c) => c.node.id, 'nodeId'),
];

export const fileFields: readonly Field<NodeContext>[] = [
  ...common(),
  u32Field(0x0200, 'DataForkLen', (c) => u32clamp(c.node.dataLength), 'dataLength'),
  u32Field(0x0400, 'RsrcForkLen', (c) => u32clamp(c.node.rsrcLength), 'rsrcLength'),
  u64Field(0x0800, 'ExtDataForkLen', (c) => c.node.dataLength, 'dataLength'),
  utf8Name(),
  u64Field(0x4000, 'ExtRsrcForkLen', (c) => c.node.rsrcLength, 'rsrcLength'),
  unixPrivs(),
];

export const dirFields: readonly Field<NodeContext>[] = [
  ...common(),
  { bit: 0x0200, name: 'OffspringCount', size: 2, encode: (w, c) => w.u16(Math.min(c.node.childCount, 0xffff)), parse: (r, o) => void (o.offspringCount = r.u16()) },
  {
    ...u32Field(0x0400, 'OwnerID', (c) => c.node.uid, 'ownerId'),
    decode(r, p) {
      p.uid = r.u32();
    },
    build: (w, p) => w.u32(p.ownerId ?? 0),
  },
  {
    ...u32Field(0x0800, 'GroupID', (c) => c.node.gid, 'groupId'),
    decode(r, p) {
      p.gid = r.u32();
    },
    build: (w, p) => w.u32(p.groupId ?? 0),
  },
  {
    ...u32Field(0x1000, 'AccessRights', (c) => accessRights(c.who, c.node), 'accessRights'),
    decode(r, p, node) {
      // Owner/group/world search, read, write → x, r, w; the rest of the word is derived.
      const ar = r.u32();
      const rwx = (b: number): number => ((b & 0x02) ? 4 : 0) | ((b & 0x04) ? 2 : 0) | ((b & 0x01) ? 1 : 0);
      p.mode = (node.mode & 0o7000) | (rwx(ar & 0xff) << 6) | (rwx((ar >> 8) & 0xff) << 3) | rwx((ar >> 16) & 0xff);
    },
    build: (w, p) => w.u32(p.accessRights ?? 0),
  },
  utf8Name(),
  unixPrivs(),
];

/** FPSetFileDirParms: the bits valid for both kinds. */
const COMMON_SETTABLE = 0x0001 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x8000;

export function settableFields(kind: 'file' | 'dir', both: boolean): readonly Field<NodeContext>[] {
  const fields = kind === 'dir' ? dirFields : fileFields;
  return fields.map((f) => (f.decode && (!both || (f.bit & COMMON_SETTABLE)) ? f : { ...f, decode: undefined }));
}

/** The fields of a volume parameter block (FPGetVolParms, FPOpenVol). */
export interface VolumeContext {
  volume: Volume;
  attributes: number;
  modifiedAt: number;
  backupAt: number | null;
  totalBytes: number;
  freeBytes: number;
}

/** Fixed directory IDs (volume type 2): IDs never change for the life of the volume. */
const FIXED_DIRID_SIGNATURE = 2;
/** Allocation block size reported to clients; any sane value works, 4 KiB matches most disks. */
const REPORTED_BLOCK_SIZE = 4096;

function vol(bit: number, name: string, size: 2 | 4 | 8, get: (c: VolumeContext) => number, key: keyof Params, signed = false): Field<VolumeContext> {
  return {
    bit,
    name,
    size,
    encode: (w, c) => (size === 2 ? w.u16(get(c)) : size === 4 ? (signed ? w.i32(get(c)) : w.u32(get(c))) : w.u64(BigInt(get(c)))),
    parse: (r, o) => void ((o as Record<string, unknown>)[key] = size === 2 ? r.u16() : size === 4 ? (signed ? r.i32() : r.u32()) : Number(r.u64())),
  };
}

export const volumeFields: readonly Field<VolumeContext>[] = [
  vol(0x0001, 'Attributes', 2, (c) => c.attributes, 'attributes'),
  vol(0x0002, 'Signature', 2, () => FIXED_DIRID_SIGNATURE, 'signature'),
  { ...vol(0x0004, 'CreationDate', 4, (c) => toAfpDate(c.volume.createdAt), 'createdAt', true), parse: (r, o) => void (o.createdAt = fromAfpDate(r.i32())) },
  { ...vol(0x0008, 'ModificationDate', 4, (c) => toAfpDate(c.modifiedAt), 'modifiedAt', true), parse: (r, o) => void (o.modifiedAt = fromAfpDate(r.i32())) },
  { ...vol(0x0010, 'BackupDate', 4, (c) => afpDate(c.backupAt), 'backupAt', true), parse: (r, o) => void (o.backupAt = readDate(r)) },
  vol(0x0020, 'VolumeID', 2, (c) => c.volume.wireId, 'volumeId'),
  vol(0x0040, 'BytesFree', 4, (c) => u32clamp(c.freeBytes), 'bytesFree'),
  vol(0x0080, 'BytesTotal', 4, (c) => u32clamp(c.totalBytes), 'bytesTotal'),
  {
    bit: 0x0100,
    name: 'VolumeName',
    size: 2,
    // A Mac Roman pstr of at most 27 bytes, even for AFP 3 clients.
    encode: (w, c, tail) => {
      w.u16(0);
      tail((t) => t.pstring(encodeMacRomanLossy(c.volume.name).subarray(0, 27)));
    },
    parse: (r, o, block, base) => void (o.volumeName = decodeMacRoman(at(block, base, r.u16()).pstring())),
  },
  vol(0x0200, 'ExtBytesFree', 8, (c) => c.freeBytes, 'bytesFree'),
  vol(0x0400, 'ExtBytesTotal', 8, (c) => c.totalBytes, 'bytesTotal'),
  vol(0x0800, 'BlockSize', 4, () => REPORTED_BLOCK_SIZE, 'blockSize'),
];
