import type { NodeRecord } from '../../volume/node.js';
import type { Volume } from '../../volume/volume.js';
import type { Reader } from '../../wire/reader.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { withCodes } from '../fs-errors.js';
import { checkBitmap, dirFields, encodeBlock, fileFields } from '../params.js';
import { kFPBitmapErr, kFPDirNotFound, kFPObjectNotFound, kFPObjectTypeErr, kFPParamErr } from '../result-codes.js';
import type { AfpSession } from '../session.js';
import { nodeContext, readPath, volAndDir } from './common.js';

/** The three generations of enumeration differ only in field widths. */
interface Variant {
  wide: boolean; // 4-byte StartIndex and MaxReplySize (FPEnumerateExt2)
  entryHeader: 2 | 4; // FPEnumerate: Length(1) IsDir(1); the Ext forms: Length(2) IsDir(1) pad(1)
}

const IS_DIR = 0x80;
/** Netatalk's reply buffer is 64 KiB; Macs never ask for more. */
const REPLY_CAP = 65535;
const PAGE = 256;

async function enumerate(s: AfpSession, r: Reader, variant: Variant): Promise<Buffer> {
  const { v, dirId } = volAndDir(s, r);
  const fileBitmap = r.u16();
  const dirBitmap = r.u16();
  const reqCount = r.u16();
  const startIndex = variant.wide ? r.u32() : r.u16();
  const maxReply = variant.wide ? r.u32() : r.u16();
  const path = readPath(r);
  if (fileBitmap === 0 && dirBitmap === 0) throw new AfpError(kFPBitmapErr, 'both bitmaps are empty');
  checkBitmap(fileFields, fileBitmap);
  checkBitmap(dirFields, dirBitmap);
  if (startIndex === 0) throw new AfpError(kFPParamErr, 'StartIndex is 1-based');
  if (reqCount === 0) throw new AfpError(kFPParamErr, 'ReqCount is 0');
  const dir = await withCodes({ ENOENT: kFPDirNotFound, ENOTDIR: kFPDirNotFound }, () => v.resolve(s.user!, dirId, path.steps));
  if (dir.kind !== 'dir') throw new AfpError(kFPObjectTypeErr, `${dir.name} is a file`);

  const cap = Math.min(maxReply, REPLY_CAP);
  const w = new Writer(Math.min(cap, 8192)).u16(fileBitmap).u16(dirBitmap).u16(0);
  const wanted = (n: NodeRecord): boolean => (n.kind === 'dir' ? dirBitmap : fileBitmap) !== 0;
  const filtered = fileBitmap === 0 || dirBitmap === 0;
  const kinds = (fileBitmap !== 0 ? 1 : 0) | (dirBitmap !== 0 ? 2 : 0);

  // Resume where this session's previous page ended; otherwise skip to StartIndex.
  const c = s.enumCursor;
  const resume = c && c.volume === v.wireId && c.dir === dir.id && c.kinds === kinds && c.nextIndex === startIndex ? c.last : undefined;
  let after = resume;
  let offset = resume !== undefined || filtered ? 0 : startIndex - 1;
  let toSkip = resume !== undefined || !filtered ? 0 : startIndex - 1;
  let count = 0;
  let last = '';
  let full = false;
  while (!full && count < reqCount) {
    const page = await v.list(s.user!, dir, after !== undefined ? { after, limit: PAGE } : { offset, limit: PAGE });
    for (const child of page.entries) {
      if (!wanted(child)) continue;
      if (toSkip > 0) {
        toSkip--;
        continue;
      }
      const entry = await encodeEntry(s, v, child, child.kind === 'dir' ? dirBitmap : fileBitmap, variant);
      if (w.length + entry.length > cap) {
        full = true;
        break;
      }
      w.bytes(entry);
      count++;
      last = v.foldName(child.name);
      if (count === reqCount) break;
    }
    if (page.entries.length < PAGE || page.last === undefined) break;
    after = page.last;
    offset = 0;
  }
  if (count === 0) {
    if (full) throw new AfpError(kFPParamErr, 'not even one entry fits MaxReplySize');
    s.enumCursor = null;
    throw new AfpError(kFPObjectNotFound, 'no more entries');
  }
  s.enumCursor = { volume: v.wireId, dir: dir.id, kinds, nextIndex: startIndex + count, last };
  const out = w.finish();
  out.writeUInt16BE(count, 4);
  return out;
}

async function encodeEntry(s: AfpSession, v: Volume, node: NodeRecord, bitmap: number, variant: Variant): Promise<Buffer> {
  const w = new Writer(96);
  if (variant.entryHeader === 4) w.u16(0).u8(node.kind === 'dir' ? IS_DIR : 0).u8(0);
  else w.u8(0).u8(node.kind === 'dir' ? IS_DIR : 0);
  encodeBlock(node.kind === 'dir' ? dirFields : fileFields, bitmap, await nodeContext(s, v, node, bitmap), w);
  w.alignEven();
  const out = w.finish();
  if (variant.entryHeader === 4) out.writeUInt16BE(out.length, 0);
  else {
    if (out.length > 255) throw new AfpError(kFPParamErr, 'entry too long for FPEnumerate; use FPEnumerateExt');
    out[0] = out.length;
  }
  return out;
}

export const enumerateCommands: CommandSpec[] = [
  { code: AfpCommand.FPEnumerate, handle: async (s, r) => ({ payload: await enumerate(s, r, { wide: false, entryHeader: 2 }) }) },
  { code: AfpCommand.FPEnumerateExt, handle: async (s, r) => ({ payload: await enumerate(s, r, { wide: false, entryHeader: 4 }) }) },
  { code: AfpCommand.FPEnumerateExt2, handle: async (s, r) => ({ payload: await enumerate(s, r, { wide: true, entryHeader: 4 }) }) },
];
