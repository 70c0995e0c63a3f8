/**
 * Fork commands: FPOpenFork and everything that names an OForkRefNum (read, write, byte-range
 * locks, fork parameters, flush, sync, close), plus the volume-wide FPFlush.
 *
 * The volume layer (OpenedFork) does the work in file-system terms; this file owns the wire:
 * field widths of the legacy (32-bit) and Ext (64-bit) forms, end-relative offsets, the
 * request quantum, and the AFP codes some commands want where the default mapping would say
 * something else (a fork not opened for reading is kFPAccessDenied here, not kFPParamErr).
 *
 * Offsets and lengths are read as bigint and checked before they become numbers: AFP allows
 * signed 64-bit values, JavaScript numbers carry 2^53 exactly, and a silently rounded offset
 * would read or write the wrong bytes.
 */
import type { DsiRequest } from '../../dsi/connection.js';
import { Access, LOCK_TO_END, type ForkKind, type OpenedFork } from '../../volume/open-fork.js';
import type { NodeRecord } from '../../volume/node.js';
import type { Volume } from '../../volume/volume.js';
import type { Reader } from '../../wire/reader.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { FsError } from '../../volume/errors.js';
import { withCodes } from '../fs-errors.js';
import { checkBitmap, encodeBlock, fileFields } from '../params.js';
import type { AfpReply } from '../reply.js';
import {
  kFPAccessDenied,
  kFPBitmapErr,
  kFPDenyConflict,
  kFPDiskFull,
  kFPEOFErr,
  kFPObjectTypeErr,
  kFPParamErr,
} from '../result-codes.js';
import type { AfpSession, SessionFork } from '../session.js';
import { nodeContext, readPath } from './common.js';

/** FPOpenFork's fork byte. */
const RESOURCE_FORK = 0x80;
/** FPWrite(Ext) and FPByteRangeLock(Ext) flag: the offset counts from the end of the fork. */
const FROM_END = 0x80;
/** FPByteRangeLock(Ext) flag: unlock instead of lock. */
const UNLOCK = 0x01;
/** The access-mode bits FPOpenFork defines; others are ignored, as netatalk does. */
const ACCESS_MODE_BITS = Access.Read | Access.Write | Access.DenyRead | Access.DenyWrite;

/** File-parameter bits naming a fork length. */
const Len = { Data: 0x0200, Rsrc: 0x0400, ExtData: 0x0800, ExtRsrc: 0x4000 } as const;
const LENGTH_BITS: Record<ForkKind, { own: number; other: number }> = {
  data: { own: Len.Data | Len.ExtData, other: Len.Rsrc | Len.ExtRsrc },
  rsrc: { own: Len.Rsrc | Len.ExtRsrc, other: Len.Data | Len.ExtData },
};

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The two generations of offset/count fields. Legacy fields are 32-bit and, as in netatalk,
 * sign-extended (a client that means 3 GiB through FPRead gets kFPParamErr, not a wrapped
 * offset). `limit` is where the legacy forms stop being able to express a result.
 */
interface Width {
  name: 'legacy' | 'ext';
  read(r: Reader): bigint;
  put(w: Writer, v: number): Writer;
  /** The largest offset past a write or a lock start the reply can carry. */
  limit: bigint;
}

const LEGACY: Width = { name: 'legacy', read: (r) => BigInt(r.i32()), put: (w, v) => w.u32(v), limit: 0x7fffffffn };
const EXT: Width = { name: 'ext', read: (r) => r.i64(), put: (w, v) => w.u64(BigInt(v)), limit: MAX_SAFE };

/** Reads and writes of a fork not opened for them: AFP says kFPAccessDenied (the volume says EBADF). */
const accessCodes = { EBADF: kFPAccessDenied } as const;

function forkOf(s: AfpSession, r: Reader): SessionFork {
  return s.fork(r.u16());
}

/** FileParams of an open fork may carry only that fork's length (netatalk `getforkparams`). */
function checkForkBitmap(bitmap: number, fork: ForkKind): void {
  checkBitmap(fileFields, bitmap);
  if (bitmap & LENGTH_BITS[fork].other) throw new AfpError(kFPBitmapErr, `a ${fork} fork cannot report the other fork's length`);
}

async function fileParams(s: AfpSession, v: Volume, node: NodeRecord, bitmap: number, w: Writer): Promise<Buffer> {
  return encodeBlock(fileFields, bitmap, await nodeContext(s, v, node, bitmap), w).finish();
}

async function openFork(s: AfpSession, r: Reader): Promise<AfpReply> {
  const which = r.u8();
  const fork: ForkKind = which & RESOURCE_FORK ? 'rsrc' : 'data';
  const v = s.volume(r.u16());
  const dirId = r.u32();
  const bitmap = r.u16();
  const mode = r.u16() & ACCESS_MODE_BITS;
  const path = readPath(r);
  checkForkBitmap(bitmap, fork);
  const node = await v.resolve(s.user!, dirId, path.steps);
  if (node.kind !== 'file') throw new AfpError(kFPObjectTypeErr, `${node.name} is a directory`);
  const refnum = s.nextRefnum();
  let opened: OpenedFork;
  try {
    opened = await v.openFork(s.user!, node, fork, mode, { session: s.id, openId: s.openId(refnum), log: s.log });
  } catch (e) {
    // A share-mode conflict still answers with the reply block, its OForkRefNum 0
    // (AFP-FACTS 3.6; netatalk `afp_openfork`): clients read the parameters either way.
    if (e instanceof FsError && e.reason === 'EDENY') {
      const w = new Writer(96).u16(bitmap).u16(0);
      return { code: kFPDenyConflict, payload: await fileParams(s, v, node, bitmap, w) };
    }
    throw e;
  }
  await s.addFork({ refnum, volume: v, fork: opened });
  s.log.debug({ refnum, file: node.id, fork, mode }, 'fork opened');
  // Parameters after the open: the lengths are the live ones and DAlreadyOpen includes this open.
  const w = new Writer(96).u16(bitmap).u16(refnum);
  return { payload: await fileParams(s, v, await opened.node(), bitmap, w) };
}

/**
 * FPRead / FPReadExt. At most one request quantum per reply (the Mac never asks for more;
 * anything else would let one request pin a huge buffer). A read reaching past the end
 * returns the bytes there are and kFPEOFErr in the same reply.
 */
async function read(s: AfpSession, r: Reader, width: Width): Promise<AfpReply> {
  r.skip(1);
  const { fork } = forkOf(s, r);
  const offset = width.read(r);
  const count = width.read(r);
  // FPRead's NewLineMask/NewLineChar: the read stops after the first byte b with (b & mask) === char.
  const newline = width === LEGACY ? { mask: r.u8(), char: r.u8() } : null;
  if (!(fork.mode & Access.Read)) throw new AfpError(kFPAccessDenied, 'the fork is not open for reading');
  if (offset < 0n || count < 0n) throw new AfpError(kFPParamErr, `offset ${offset} or count ${count} is negative`);
  if (count === 0n) return {};
  const length = BigInt(await fork.length());
  if (offset >= length) return { code: kFPEOFErr };
  const want = Number(count < BigInt(s.conn.requestQuantum) ? count : BigInt(s.conn.requestQuantum));
  let data = await withCodes(accessCodes, () => fork.read(Number(offset), want));
  let eof = offset + count > length || data.length < want;
  if (newline && newline.mask !== 0) {
    const at = data.findIndex((b) => (b & newline.mask) === newline.char);
    if (at >= 0) {
      data = data.subarray(0, at + 1);
      eof = false;
    }
  }
  return eof ? { code: kFPEOFErr, payload: data } : { payload: data };
}

/**
 * FPWrite / FPWriteExt, normally through DSIWrite: the AFP header is the first `writeOffset`
 * payload bytes (the Reader stops there), the data follows. A header sent as a plain
 * DSICommand carries its data right after the header.
 *
 * The bytes DSI carried are the data, as in netatalk: ReqCount larger than what arrived
 * writes what arrived, and the reply (the offset just past the last byte written) tells the
 * client exactly how much that was. Bytes beyond ReqCount are not written: the client did
 * not ask for them.
 */
async function write(s: AfpSession, r: Reader, req: DsiRequest, width: Width): Promise<AfpReply> {
  const flags = r.u8();
  const { fork } = forkOf(s, r);
  let offset = width.read(r);
  const count = width.read(r);
  const sent = req.writeOffset > 0 ? req.payload.subarray(req.writeOffset) : req.payload.subarray(r.offset);
  if (!(fork.mode & Access.Write)) throw new AfpError(kFPAccessDenied, 'the fork is not open for writing');
  if (flags & FROM_END) offset += BigInt(await fork.length());
  if (offset < 0n || count < 0n) throw new AfpError(kFPParamErr, `offset ${offset} or count ${count} is negative`);
  const data = count < BigInt(sent.length) ? sent.subarray(0, Number(count)) : sent;
  const end = offset + BigInt(data.length);
  // Past what the reply (or a JavaScript number) can express: netatalk says disk full too.
  if (end > width.limit) throw new AfpError(kFPDiskFull, `a write to ${end} is beyond what FP${width.name === 'ext' ? 'WriteExt' : 'Write'} can address`);
  if (data.length > 0) await withCodes(accessCodes, () => fork.write(Number(offset), data));
  return { payload: width.put(new Writer(8), Number(end)).finish() };
}

/**
 * FPByteRangeLock(Ext). Length −1 locks to the end of any possible fork; a range reaching
 * past 2^53 does the same (no fork can hold a byte there), so lock and unlock of the same
 * request always name the same range. The reply is the absolute start of the range.
 */
async function byteRangeLock(s: AfpSession, r: Reader, width: Width): Promise<AfpReply> {
  const flags = r.u8();
  const { fork } = forkOf(s, r);
  let start = width.read(r);
  const length = width.read(r);
  if (length === 0n || length < -1n) throw new AfpError(kFPParamErr, `lock length ${length}`);
  if (flags & FROM_END) start += BigInt(await fork.length());
  if (start < 0n || start > width.limit) throw new AfpError(kFPParamErr, `lock start ${start} is out of range`);
  const len = length === -1n || start + length > MAX_SAFE ? LOCK_TO_END : Number(length);
  if (flags & UNLOCK) await fork.unlock(Number(start), len);
  else await fork.lock(Number(start), len);
  return { payload: width.put(new Writer(8), Number(start)).finish() };
}

async function getForkParms(s: AfpSession, r: Reader): Promise<AfpReply> {
  r.skip(1);
  const { volume, fork } = forkOf(s, r);
  const bitmap = r.u16();
  checkForkBitmap(bitmap, fork.fork);
  return { payload: await fileParams(s, volume, await fork.node(), bitmap, new Writer(96).u16(bitmap)) };
}

/** The one length field FPSetForkParms may carry for each fork, and its width. */
const SETTABLE_LENGTH: Record<ForkKind, Record<number, 4 | 8>> = {
  data: { [Len.Data]: 4, [Len.ExtData]: 8 },
  rsrc: { [Len.Rsrc]: 4, [Len.ExtRsrc]: 8 },
};

/** FPSetForkParms: truncate or extend (with zeros). Checks in netatalk's order: access, bitmap, value. */
async function setForkParms(s: AfpSession, r: Reader): Promise<AfpReply> {
  r.skip(1);
  const { fork } = forkOf(s, r);
  const bitmap = r.u16();
  if (!(fork.mode & Access.Write)) throw new AfpError(kFPAccessDenied, 'the fork is not open for writing');
  const size = SETTABLE_LENGTH[fork.fork][bitmap];
  if (size === undefined) throw new AfpError(kFPBitmapErr, `bitmap 0x${bitmap.toString(16)} is not exactly this ${fork.fork} fork's length`);
  if (size === 8 && s.versionNumber < 30) throw new AfpError(kFPBitmapErr, '64-bit fork lengths need AFP 3');
  const length = size === 8 ? r.i64() : BigInt(r.i32());
  if (length < 0n) throw new AfpError(kFPParamErr, `fork length ${length}`);
  if (length > MAX_SAFE) throw new AfpError(kFPDiskFull, `fork length ${length}`);
  await withCodes(accessCodes, () => fork.setLength(Number(length)));
  return {};
}

/** Commands whose request is `cmd pad OForkRefNum(2)` and whose reply is empty. */
function onFork(code: number, run: (f: SessionFork, s: AfpSession) => Promise<void>): CommandSpec {
  return {
    code,
    async handle(s, r) {
      r.skip(1);
      await run(forkOf(s, r), s);
      return {};
    },
  };
}

export const forkCommands: CommandSpec[] = [
  { code: AfpCommand.FPOpenFork, handle: openFork },
  { code: AfpCommand.FPRead, handle: (s, r) => read(s, r, LEGACY) },
  { code: AfpCommand.FPReadExt, handle: (s, r) => read(s, r, EXT) },
  { code: AfpCommand.FPWrite, handle: (s, r, req) => write(s, r, req, LEGACY) },
  { code: AfpCommand.FPWriteExt, handle: (s, r, req) => write(s, r, req, EXT) },
  { code: AfpCommand.FPByteRangeLock, handle: (s, r) => byteRangeLock(s, r, LEGACY) },
  { code: AfpCommand.FPByteRangeLockExt, handle: (s, r) => byteRangeLock(s, r, EXT) },
  { code: AfpCommand.FPGetForkParms, handle: getForkParms },
  { code: AfpCommand.FPSetForkParms, handle: setForkParms },
  onFork(AfpCommand.FPCloseFork, (f, s) => s.closeFork(f.refnum)),
  // FlushFork: cached bytes to this node's disk. SyncFork: to the object store and committed
  // (the volume fails with EIO, kFPMiscErr, rather than pretend).
  onFork(AfpCommand.FPFlushFork, (f) => f.fork.flush()),
  onFork(AfpCommand.FPSyncFork, (f) => f.fork.sync()),
  {
    // Per volume: every fork of it this node caches (not only this session's) reaches disk.
    code: AfpCommand.FPFlush,
    async handle(s, r) {
      r.skip(1);
      await s.volume(r.u16()).flush();
      return {};
    },
  },
];
