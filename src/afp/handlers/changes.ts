import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { withCodes } from '../fs-errors.js';
import { checkBitmap, encodeBlock, fileFields } from '../params.js';
import { readSingleName } from '../paths.js';
import {
  kFPBadIDErr,
  kFPCantMove,
  kFPCantRename,
  kFPDiffVolErr,
  kFPIDExists,
  kFPIDNotFound,
  kFPObjectNotFound,
  kFPObjectTypeErr,
} from '../result-codes.js';
import { nodeContext, readPath, volAndDir } from './common.js';

const HARD_CREATE = 0x80;

export const changeCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPCreateDir,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const dir = await v.createDir(s.user!, dirId, readPath(r).steps);
      return { payload: new Writer(4).u32(dir.id).finish() };
    },
  },
  {
    code: AfpCommand.FPCreateFile,
    async handle(s, r) {
      const flag = r.u8();
      const v = s.volume(r.u16());
      const dirId = r.u32();
      await v.createFile(s.user!, dirId, readPath(r).steps, (flag & HARD_CREATE) !== 0);
      return {};
    },
  },
  {
    code: AfpCommand.FPDelete,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      await v.remove(s.user!, dirId, readPath(r).steps);
      return {};
    },
  },
  {
    code: AfpCommand.FPRename,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const path = readPath(r);
      const newName = readSingleName(r);
      if (newName === null) throw new AfpError(kFPObjectNotFound, 'FPRename without a new name');
      await withCodes({ EROOT: kFPCantRename }, () => v.rename(s.user!, dirId, path.steps, newName));
      return {};
    },
  },
  {
    code: AfpCommand.FPMoveAndRename,
    async handle(s, r) {
      const { v, dirId: srcDir } = volAndDir(s, r);
      const dstDir = r.u32();
      const srcPath = readPath(r);
      const dstPath = readPath(r);
      const newName = r.remaining > 0 ? readSingleName(r) : null;
      const node = await v.resolve(s.user!, srcDir, srcPath.steps);
      const dst = await v.resolveDir(s.user!, dstDir, dstPath.steps);
      await withCodes({ EROOT: kFPCantMove }, () => v.move(s.user!, node, dst, newName));
      return {};
    },
  },
  {
    code: AfpCommand.FPExchangeFiles,
    async handle(s, r) {
      const { v, dirId: srcDir } = volAndDir(s, r);
      const dstDir = r.u32();
      const a = await v.resolve(s.user!, srcDir, readPath(r).steps);
      const b = await v.resolve(s.user!, dstDir, readPath(r).steps);
      await v.exchange(s.user!, a, b);
      return {};
    },
  },
  {
    code: AfpCommand.FPCopyFile,
    async handle(s, r) {
      r.skip(1);
      const src = s.volume(r.u16());
      const srcDir = r.u32();
      const dstVol = s.volume(r.u16());
      const dstDir = r.u32();
      // Copies stay within a volume: file data lives in per-volume objects.
      if (dstVol !== src) throw new AfpError(kFPDiffVolErr, 'FPCopyFile across volumes');
      const node = await src.resolve(s.user!, srcDir, readPath(r).steps);
      const dst = await src.resolveDir(s.user!, dstDir, readPath(r).steps);
      const newName = r.remaining > 0 ? readSingleName(r) : null;
      await src.copyFile(s.user!, node, dst, newName);
      return {};
    },
  },
  {
    // File IDs are permanent here: every file has one from birth, so creating one reports
    // that it exists, with its value, as Apple's servers do for a file that already has one.
    code: AfpCommand.FPCreateID,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const node = await v.resolve(s.user!, dirId, readPath(r).steps);
      if (node.kind !== 'file') throw new AfpError(kFPObjectTypeErr, 'directories have no file ID');
      return { code: kFPIDExists, payload: new Writer(4).u32(node.id).finish() };
    },
  },
  {
    // IDs cannot be detached from living files here; deleting one of an existing file is a no-op.
    code: AfpCommand.FPDeleteID,
    async handle(s, r) {
      r.skip(1);
      const v = s.volume(r.u16());
      const node = await withCodes({ ENOENT: kFPIDNotFound }, () => v.nodeFor(s.user!, r.u32()));
      if (node.kind !== 'file') throw new AfpError(kFPObjectTypeErr, 'directories have no file ID');
      return {};
    },
  },
  {
    code: AfpCommand.FPResolveID,
    async handle(s, r) {
      r.skip(1);
      const v = s.volume(r.u16());
      const id = r.u32();
      const bitmap = r.u16();
      checkBitmap(fileFields, bitmap);
      if (id === 0) throw new AfpError(kFPBadIDErr, 'file ID 0');
      const node = await withCodes({ ENOENT: kFPIDNotFound }, () => v.nodeFor(s.user!, id));
      if (node.kind !== 'file') throw new AfpError(kFPObjectTypeErr, `ID ${id} is a directory`);
      const w = new Writer(96).u16(bitmap);
      return { payload: encodeBlock(fileFields, bitmap, await nodeContext(s, v, node, bitmap), w).finish() };
    },
  },
];
