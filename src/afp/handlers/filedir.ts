import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { checkBitmap, decodePatch, dirFields, encodeBlock, fileFields, settableFields } from '../params.js';
import { kFPAccessDenied, kFPObjectTypeErr, kFPParamErr } from '../result-codes.js';
import type { AfpSession } from '../session.js';
import type { Reader } from '../../wire/reader.js';
import { nodeContext, readPath, volAndDir } from './common.js';

const IS_DIR = 0x80;

async function setParams(s: AfpSession, r: Reader, want: 'file' | 'dir' | 'either'): Promise<void> {
  const { v, dirId } = volAndDir(s, r);
  const bitmap = r.u16();
  const path = readPath(r);
  r.alignEven();
  const node = await v.resolve(s.user!, dirId, path.steps);
  if (want !== 'either' && node.kind !== want) throw new AfpError(kFPObjectTypeErr, `${node.name} is a ${node.kind}`);
  const patch = decodePatch(settableFields(node.kind, want === 'either'), bitmap, r, node);
  await v.setParams(s.user!, node, patch);
}

export const fileDirCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPGetFileDirParms,
    async handle(s, r) {
      r.skip(1);
      // An unknown volume ID gets kFPAccessDenied here, as netatalk answers: Mac OS X 10.3
      // recovers better from it after a volume goes away.
      const v = s.openVolumes.get(r.u16());
      if (!v) throw new AfpError(kFPAccessDenied, 'volume not open');
      const dirId = r.u32();
      const fileBitmap = r.u16();
      const dirBitmap = r.u16();
      const path = readPath(r);
      checkBitmap(fileFields, fileBitmap);
      checkBitmap(dirFields, dirBitmap);
      const node = await v.resolve(s.user!, dirId, path.steps);
      const isDir = node.kind === 'dir';
      const w = new Writer(160).u16(fileBitmap).u16(dirBitmap).u8(isDir ? IS_DIR : 0).u8(0);
      encodeBlock(isDir ? dirFields : fileFields, isDir ? dirBitmap : fileBitmap, await nodeContext(s, v, node, isDir ? dirBitmap : fileBitmap), w);
      return { payload: w.finish() };
    },
  },
  { code: AfpCommand.FPSetFileParms, handle: async (s, r) => (await setParams(s, r, 'file'), {}) },
  { code: AfpCommand.FPSetDirParms, handle: async (s, r) => (await setParams(s, r, 'dir'), {}) },
  { code: AfpCommand.FPSetFileDirParms, handle: async (s, r) => (await setParams(s, r, 'either'), {}) },
  {
    // Fixed-DirID volumes need no open/close of directories; answer as netatalk does.
    code: AfpCommand.FPOpenDir,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const node = await v.resolve(s.user!, dirId, readPath(r).steps);
      if (node.kind !== 'dir') throw new AfpError(kFPObjectTypeErr, `${node.name} is a file`);
      return { payload: new Writer(4).u32(node.id).finish() };
    },
  },
  {
    code: AfpCommand.FPCloseDir,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const node = await v.nodeFor(s.user!, dirId);
      if (node.kind !== 'dir') throw new AfpError(kFPParamErr, `${node.name} is a file`);
      return {};
    },
  },
];
