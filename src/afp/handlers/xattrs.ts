import type { XattrMode } from '../../volume/node.js';
import type { Reader } from '../../wire/reader.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { kFPParamErr } from '../result-codes.js';
import { readPath, volAndDir } from './common.js';

const XAttr = { NoFollow: 0x0001, Create: 0x0002, Replace: 0x0004 } as const;
/** Bitmap(2) + DataLen(4) ahead of the data in replies; MaxReplySize counts them. */
const REPLY_HEADER = 6;

/** `[pad] NameLen(2) Name`: the pad aligns NameLen to an even offset. */
function readAttrName(r: Reader): string {
  r.alignEven();
  const len = r.u16();
  if (len === 0 || len > 255) throw new AfpError(kFPParamErr, `attribute name of ${len} bytes`);
  return r.bytes(len).toString('utf8');
}

function modeOf(bitmap: number): XattrMode {
  const create = (bitmap & XAttr.Create) !== 0;
  const replace = (bitmap & XAttr.Replace) !== 0;
  if (create && replace) throw new AfpError(kFPParamErr, 'create and replace together');
  return create ? 'create' : replace ? 'replace' : 'any';
}

export const xattrCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPGetExtAttr,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const bitmap = r.u16();
      const offset = r.i64();
      const reqCount = r.i64();
      const maxReply = r.u32();
      const path = readPath(r);
      const name = readAttrName(r);
      if (offset < 0n || reqCount < 0n) throw new AfpError(kFPParamErr, 'negative offset or count');
      if (maxReply !== 0 && maxReply <= REPLY_HEADER) throw new AfpError(kFPParamErr, `MaxReplySize ${maxReply} leaves no room for data`);
      const node = await v.resolve(s.user!, dirId, path.steps);
      const value = await v.getXattr(s.user!, node, name);
      // MaxReplySize 0 asks for the size only.
      if (maxReply === 0) return { payload: new Writer(6).u16(bitmap).u32(value.length).finish() };
      const start = Number(offset < BigInt(value.length) ? offset : BigInt(value.length));
      const room = Math.min(maxReply - REPLY_HEADER, Number(reqCount < 0x7fffffffn ? reqCount : 0x7fffffffn));
      const data = value.subarray(start, start + room);
      return { payload: new Writer(6 + data.length).u16(bitmap).u32(data.length).bytes(data).finish() };
    },
  },
  {
    code: AfpCommand.FPSetExtAttr,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const bitmap = r.u16();
      const offset = r.i64();
      const path = readPath(r);
      const name = readAttrName(r);
      const value = Buffer.from(r.bytes(r.u32()));
      if (offset !== 0n) throw new AfpError(kFPParamErr, 'attribute values are written whole (offset must be 0)');
      const node = await v.resolve(s.user!, dirId, path.steps);
      await v.setXattr(s.user!, node, name, value, modeOf(bitmap));
      return {};
    },
  },
  {
    code: AfpCommand.FPRemoveExtAttr,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      r.u16(); // bitmap: only NoFollow applies, and there are no symlinks to follow
      const path = readPath(r);
      const name = readAttrName(r);
      const node = await v.resolve(s.user!, dirId, path.steps);
      await v.removeXattr(s.user!, node, name);
      return {};
    },
  },
  {
    code: AfpCommand.FPListExtAttrs,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const bitmap = r.u16();
      r.u16(); // ReqCount and StartIndex: ignored by every server, all names come at once
      r.u32();
      const maxReply = r.u32();
      const node = await v.resolve(s.user!, dirId, readPath(r).steps);
      const names = await v.listXattrs(s.user!, node);
      const data = Buffer.concat(names.map((n) => Buffer.from(n + '\0', 'utf8')));
      if (maxReply === 0) return { payload: new Writer(6).u16(bitmap).u32(data.length).finish() };
      if (data.length + REPLY_HEADER > maxReply) throw new AfpError(kFPParamErr, `the names need ${data.length + REPLY_HEADER} bytes, MaxReplySize is ${maxReply}`);
      return { payload: new Writer(6 + data.length).u16(bitmap).u32(data.length).bytes(data).finish() };
    },
  },
];
