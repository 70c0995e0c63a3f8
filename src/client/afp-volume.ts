import { AfpCommand } from '../afp/commands.js';
import { AfpError } from '../afp/errors.js';
import { UTF8_HINT } from '../afp/names.js';
import { buildBlock, dirFields, fileFields, parseBlock, volumeFields, type Params } from '../afp/params.js';
import { kFPNoErr, kFPObjectNotFound } from '../afp/result-codes.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import type { AfpClient } from './afp-client.js';
import { AfpFork, openForkRequest, parseOpenForkReply, type OpenForkOptions, type OpenForkReply } from './afp-fork.js';

/**
 * A path relative to a directory ID: a string is split on '/', an array is taken element
 * by element; '..' steps up one level. (Mac names may contain '/', so pass an array then.)
 */
export type ClientPath = string | readonly string[];

export interface Entry {
  isDir: boolean;
  params: Params;
}

export const ROOT = 2;

/** The standard bitmaps tests and tools ask for. */
export const FILE_BITMAP_ALL = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0100 | 0x0200 | 0x0400 | 0x0800 | 0x2000 | 0x4000 | 0x8000;
export const DIR_BITMAP_ALL = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0100 | 0x0200 | 0x0400 | 0x0800 | 0x1000 | 0x2000 | 0x8000;
export const VOL_BITMAP_ALL = 0x0fff;

export function encodePath(path: ClientPath): Buffer {
  const elements = typeof path === 'string' ? path.split('/').filter((e) => e.length > 0) : [...path];
  const parts = elements.map((e) => (e === '..' ? '' : e));
  // A leading NUL is ignored and a trailing one dropped, so up-steps at either end need one more.
  if (parts.length > 0 && parts[0] === '') parts.unshift('');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.push('');
  // Names go as given: a Mac sends its own (HFS+) decomposition, and tests send both forms.
  const b = Buffer.from(parts.join('\0'), 'utf8');
  return new Writer(7 + b.length).u8(3).u32(UTF8_HINT).u16(b.length).bytes(b).finish();
}

/** A volume opened through FPOpenVol. */
export class AfpVolume {
  constructor(readonly client: AfpClient, readonly id: number, readonly params: Params) {}

  private head(cmd: number, dirId: number, flag = 0): Writer {
    return new Writer(64).u8(cmd).u8(flag).u16(this.id).u32(dirId);
  }

  private call(w: Writer): Promise<Buffer> {
    return this.client.call(w.finish());
  }

  async getParms(bitmap = VOL_BITMAP_ALL): Promise<Params> {
    const b = await this.client.call(new Writer(6).u8(AfpCommand.FPGetVolParms).u8(0).u16(this.id).u16(bitmap).finish());
    const r = new Reader(b);
    return parseBlock(volumeFields, r.u16(), r, b);
  }

  async setBackupDate(ms: number | null): Promise<void> {
    const w = new Writer(12).u8(AfpCommand.FPSetVolParms).u8(0).u16(this.id).u16(0x0010);
    w.i32(ms === null ? -0x80000000 : Math.floor(ms / 1000) - 946_684_800);
    await this.client.call(w.finish());
  }

  async getFileDirParms(dirId: number, path: ClientPath, fileBitmap = FILE_BITMAP_ALL, dirBitmap = DIR_BITMAP_ALL): Promise<Entry> {
    const b = await this.call(this.head(AfpCommand.FPGetFileDirParms, dirId).u16(fileBitmap).u16(dirBitmap).bytes(encodePath(path)));
    const r = new Reader(b);
    const fb = r.u16();
    const db = r.u16();
    const isDir = (r.u8() & 0x80) !== 0;
    r.u8();
    return { isDir, params: parseBlock(isDir ? dirFields : fileFields, isDir ? db : fb, r, b) };
  }

  /** FPSetFileDirParms (kind 'either'), FPSetFileParms ('file') or FPSetDirParms ('dir'). */
  async setParms(kind: 'file' | 'dir' | 'either', dirId: number, path: ClientPath, bitmap: number, p: Params): Promise<void> {
    const cmd = kind === 'file' ? AfpCommand.FPSetFileParms : kind === 'dir' ? AfpCommand.FPSetDirParms : AfpCommand.FPSetFileDirParms;
    const w = this.head(cmd, dirId).u16(bitmap).bytes(encodePath(path)).alignEven();
    await this.call(buildBlock(kind === 'dir' ? dirFields : fileFields, bitmap, p, w));
  }

  async createDir(dirId: number, path: ClientPath): Promise<number> {
    return new Reader(await this.call(this.head(AfpCommand.FPCreateDir, dirId).bytes(encodePath(path)))).u32();
  }

  async createFile(dirId: number, path: ClientPath, hard = false): Promise<void> {
    await this.call(this.head(AfpCommand.FPCreateFile, dirId, hard ? 0x80 : 0).bytes(encodePath(path)));
  }

  async delete(dirId: number, path: ClientPath): Promise<void> {
    await this.call(this.head(AfpCommand.FPDelete, dirId).bytes(encodePath(path)));
  }

  async rename(dirId: number, path: ClientPath, newName: string): Promise<void> {
    await this.call(this.head(AfpCommand.FPRename, dirId).bytes(encodePath(path)).bytes(encodePath([newName])));
  }

  async moveAndRename(srcDir: number, srcPath: ClientPath, dstDir: number, dstPath: ClientPath, newName?: string): Promise<void> {
    const w = this.head(AfpCommand.FPMoveAndRename, srcDir).u32(dstDir).bytes(encodePath(srcPath)).bytes(encodePath(dstPath));
    w.bytes(encodePath(newName === undefined ? [] : [newName]));
    await this.call(w);
  }

  async exchangeFiles(srcDir: number, srcPath: ClientPath, dstDir: number, dstPath: ClientPath): Promise<void> {
    await this.call(this.head(AfpCommand.FPExchangeFiles, srcDir).u32(dstDir).bytes(encodePath(srcPath)).bytes(encodePath(dstPath)));
  }

  async copyFile(srcDir: number, srcPath: ClientPath, dstDir: number, dstPath: ClientPath, newName?: string): Promise<void> {
    const w = new Writer(64).u8(AfpCommand.FPCopyFile).u8(0).u16(this.id).u32(srcDir).u16(this.id).u32(dstDir);
    w.bytes(encodePath(srcPath)).bytes(encodePath(dstPath)).bytes(encodePath(newName === undefined ? [] : [newName]));
    await this.call(w);
  }

  /** FPCreateID: the file's ID (servers answer kFPIDExists with it when it already has one). */
  async createId(dirId: number, path: ClientPath): Promise<{ code: number; id: number }> {
    const r = await this.client.raw(this.head(AfpCommand.FPCreateID, dirId).bytes(encodePath(path)).finish());
    if (r.payload.length < 4) throw new AfpError(r.code);
    return { code: r.code, id: r.payload.readUInt32BE(0) };
  }

  async deleteId(fileId: number): Promise<void> {
    await this.client.call(new Writer(8).u8(AfpCommand.FPDeleteID).u8(0).u16(this.id).u32(fileId).finish());
  }

  async resolveId(fileId: number, bitmap = FILE_BITMAP_ALL): Promise<Params> {
    const b = await this.client.call(new Writer(10).u8(AfpCommand.FPResolveID).u8(0).u16(this.id).u32(fileId).u16(bitmap).finish());
    const r = new Reader(b);
    return parseBlock(fileFields, r.u16(), r, b);
  }

  /** One FPEnumerateExt2 (or the older forms); throws AfpError(kFPObjectNotFound) past the end. */
  async enumerate(
    dirId: number,
    path: ClientPath,
    o: { fileBitmap?: number; dirBitmap?: number; reqCount?: number; startIndex?: number; maxReply?: number; variant?: 'ext2' | 'ext' | 'legacy' } = {},
  ): Promise<Entry[]> {
    const variant = o.variant ?? 'ext2';
    const fb = o.fileBitmap ?? FILE_BITMAP_ALL;
    const db = o.dirBitmap ?? DIR_BITMAP_ALL;
    const cmd = variant === 'ext2' ? AfpCommand.FPEnumerateExt2 : variant === 'ext' ? AfpCommand.FPEnumerateExt : AfpCommand.FPEnumerate;
    const w = this.head(cmd, dirId).u16(fb).u16(db).u16(o.reqCount ?? 200);
    if (variant === 'ext2') w.u32(o.startIndex ?? 1).u32(o.maxReply ?? 65535);
    else w.u16(o.startIndex ?? 1).u16(o.maxReply ?? 65535);
    const b = await this.call(w.bytes(encodePath(path)));
    const r = new Reader(b);
    const rfb = r.u16();
    const rdb = r.u16();
    const n = r.u16();
    const out: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const start = r.offset;
      const len = variant === 'legacy' ? r.u8() : r.u16();
      const isDir = (r.u8() & 0x80) !== 0;
      if (variant !== 'legacy') r.u8();
      const params = parseBlock(isDir ? dirFields : fileFields, isDir ? rdb : rfb, r, b);
      out.push({ isDir, params });
      r.skip(start + len - r.offset);
    }
    return out;
  }

  /** Pages through a whole directory the way the Finder does. */
  async enumerateAll(dirId: number, path: ClientPath, o: { fileBitmap?: number; dirBitmap?: number; reqCount?: number; variant?: 'ext2' | 'ext' | 'legacy' } = {}): Promise<Entry[]> {
    const all: Entry[] = [];
    for (;;) {
      try {
        const page = await this.enumerate(dirId, path, { ...o, startIndex: all.length + 1 });
        all.push(...page);
      } catch (e) {
        if (e instanceof AfpError && e.code === kFPObjectNotFound) return all;
        throw e;
      }
    }
  }

  private xattrHead(cmd: number, dirId: number, bitmap: number): Writer {
    return this.head(cmd, dirId).u16(bitmap);
  }

  /** FPGetExtAttr; maxReply 0 asks for the size only (returned as a zero-filled buffer of that size). */
  async getXattr(dirId: number, path: ClientPath, name: string, o: { offset?: number; reqCount?: number; maxReply?: number } = {}): Promise<Buffer> {
    const n = Buffer.from(name, 'utf8');
    const w = this.xattrHead(AfpCommand.FPGetExtAttr, dirId, 0).i64(BigInt(o.offset ?? 0)).i64(BigInt(o.reqCount ?? 0x7fffffff)).u32(o.maxReply ?? 65536);
    w.bytes(encodePath(path)).alignEven().u16(n.length).bytes(n);
    const r = new Reader(await this.call(w));
    r.u16();
    const len = r.u32();
    return o.maxReply === 0 ? Buffer.alloc(len) : Buffer.from(r.bytes(len));
  }

  async setXattr(dirId: number, path: ClientPath, name: string, value: Buffer, mode: 'create' | 'replace' | 'any' = 'any'): Promise<void> {
    const n = Buffer.from(name, 'utf8');
    const bitmap = mode === 'create' ? 0x2 : mode === 'replace' ? 0x4 : 0;
    const w = this.xattrHead(AfpCommand.FPSetExtAttr, dirId, bitmap).i64(0n).bytes(encodePath(path)).alignEven();
    await this.call(w.u16(n.length).bytes(n).u32(value.length).bytes(value));
  }

  async removeXattr(dirId: number, path: ClientPath, name: string): Promise<void> {
    const n = Buffer.from(name, 'utf8');
    await this.call(this.xattrHead(AfpCommand.FPRemoveExtAttr, dirId, 0).bytes(encodePath(path)).alignEven().u16(n.length).bytes(n));
  }

  async listXattrs(dirId: number, path: ClientPath): Promise<string[]> {
    const w = this.xattrHead(AfpCommand.FPListExtAttrs, dirId, 0).u16(0).u32(0).u32(65536).bytes(encodePath(path));
    const r = new Reader(await this.call(w));
    r.u16();
    const data = r.bytes(r.u32()).toString('utf8');
    return data.split('\0').filter((s) => s.length > 0);
  }

  /**
   * FPOpenFork as answered: the code and the reply block, which a server also sends with
   * kFPDenyConflict (its refnum then 0). Codes without a block throw AfpError.
   */
  async openForkReply(dirId: number, path: ClientPath, o: OpenForkOptions = {}): Promise<OpenForkReply> {
    const r = await this.client.raw(openForkRequest(this.id, dirId, encodePath(path), o));
    if (r.payload.length < 4) throw new AfpError(r.code);
    return parseOpenForkReply(r.code, r.payload);
  }

  /** FPOpenFork; throws AfpError unless the fork opened. */
  async openFork(dirId: number, path: ClientPath, o: OpenForkOptions = {}): Promise<AfpFork> {
    const reply = await this.openForkReply(dirId, path, o);
    if (reply.code !== kFPNoErr) throw new AfpError(reply.code);
    return new AfpFork(this.client, reply.refnum, o.rsrc ?? false, reply.params);
  }

  /** FPFlush: every fork of the volume reaches the server's disk. */
  async flush(): Promise<void> {
    await this.client.call(new Writer(4).u8(AfpCommand.FPFlush).u8(0).u16(this.id).finish());
  }

  async syncDir(dirId: number): Promise<void> {
    await this.client.call(new Writer(8).u8(AfpCommand.FPSyncDir).u8(0).u16(this.id).u32(dirId).finish());
  }

  /** FPAccess: resolves when the KAUTH rights in `rights` would be granted. */
  async access(dirId: number, path: ClientPath, rights: number): Promise<void> {
    await this.call(this.head(AfpCommand.FPAccess, dirId).u16(0).zeros(16).u32(rights).bytes(encodePath(path)));
  }

  /** FPGetACL: the echoed bitmap and the number of ACL entries (when the ACL bit was asked). */
  async getAcl(dirId: number, path: ClientPath, bitmap = 0x07): Promise<{ bitmap: number; entries?: number }> {
    const r = new Reader(await this.call(this.head(AfpCommand.FPGetACL, dirId).u16(bitmap).u32(1024).bytes(encodePath(path))));
    const got = r.u16();
    if (got & 0x01) r.skip(16);
    if (got & 0x02) r.skip(16);
    return got & 0x04 ? { bitmap: got, entries: r.u32() } : { bitmap: got };
  }

  /** FPSetACL with only an ACL of `aces` zero-filled entries (or the given bitmap bits). */
  async setAcl(dirId: number, path: ClientPath, bitmap: number, aces = 0): Promise<void> {
    const w = this.head(AfpCommand.FPSetACL, dirId).u16(bitmap).bytes(encodePath(path));
    if (bitmap & 0x01) w.alignEven().zeros(16);
    if (bitmap & 0x04) w.alignEven().u32(aces).u32(0).zeros(24 * aces);
    await this.call(w);
  }

  async close(): Promise<void> {
    await this.client.call(new Writer(4).u8(AfpCommand.FPCloseVol).u8(0).u16(this.id).finish());
  }
}
