import { AfpCommand } from '../afp/commands.js';
import { AfpError } from '../afp/errors.js';
import { fileFields, parseBlock, type Params } from '../afp/params.js';
import { kFPItemNotFound, kFPNoErr } from '../afp/result-codes.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { encodePath, FILE_BITMAP_ALL, type AfpVolume, type ClientPath } from './afp-volume.js';

/**
 * A creator or file type: four characters ('ttxt', taken as Latin-1 so every byte value is
 * reachable) or four raw bytes. Replies give them back as Latin-1 strings.
 */
export type OSType = string | Uint8Array;

export interface IconInfo {
  tag: number;
  type: string;
  iconType: number;
  size: number;
}

export interface ApplInfo {
  tag: number;
  params: Params;
}

function osType(t: OSType): Buffer {
  const b = typeof t === 'string' ? Buffer.from(t, 'latin1') : Buffer.from(t);
  if (b.length !== 4) throw new RangeError(`an OSType is 4 bytes, not ${b.length}`);
  return b;
}

/** The desktop database of a volume, opened with FPOpenDT. Non-zero result codes throw AfpError. */
export class AfpDesktop {
  private constructor(readonly volume: AfpVolume, readonly ref: number) {}

  static async open(volume: AfpVolume, volumeId = volume.id): Promise<AfpDesktop> {
    const b = await volume.client.call(new Writer(4).u8(AfpCommand.FPOpenDT).u8(0).u16(volumeId).finish());
    return new AfpDesktop(volume, new Reader(b).u16());
  }

  /** The same database under another reference number, to see how the server takes a bad one. */
  withRef(ref: number): AfpDesktop {
    return new AfpDesktop(this.volume, ref);
  }

  private head(cmd: number): Writer {
    return new Writer(64).u8(cmd).u8(0).u16(this.ref);
  }

  private call(w: Writer): Promise<Buffer> {
    return this.volume.client.call(w.finish());
  }

  async close(): Promise<void> {
    await this.call(this.head(AfpCommand.FPCloseDT));
  }

  /** FPAddIcon: the header as a DSIWrite command header, the bitmap as its data. */
  async addIcon(creator: OSType, type: OSType, iconType: number, tag: number, bitmap: Uint8Array, size = bitmap.length): Promise<void> {
    const header = this.head(AfpCommand.FPAddIcon).bytes(osType(creator)).bytes(osType(type)).u8(iconType).u8(0).u32(tag).u16(size).finish();
    const r = await this.volume.client.dsi.write(header, Buffer.from(bitmap));
    if (r.code !== kFPNoErr) throw new AfpError(r.code);
  }

  /** FPGetIcon: at most `length` bytes of the bitmap; length 0 only checks that the icon exists. */
  async getIcon(creator: OSType, type: OSType, iconType: number, length = 0xffff): Promise<Buffer> {
    return this.call(this.head(AfpCommand.FPGetIcon).bytes(osType(creator)).bytes(osType(type)).u8(iconType).u8(0).u16(length));
  }

  /** FPGetIconInfo: the creator's icon number `index` (1-based). */
  async getIconInfo(creator: OSType, index: number): Promise<IconInfo> {
    const r = new Reader(await this.call(this.head(AfpCommand.FPGetIconInfo).bytes(osType(creator)).u16(index)));
    const tag = r.u32();
    const type = r.bytes(4).toString('latin1');
    const iconType = r.u8();
    r.skip(1);
    return { tag, type, iconType, size: r.u16() };
  }

  /** Every icon of a creator, by FPGetIconInfo from index 1 until kFPItemNotFound. */
  async listIcons(creator: OSType): Promise<IconInfo[]> {
    const out: IconInfo[] = [];
    for (;;) {
      try {
        out.push(await this.getIconInfo(creator, out.length + 1));
      } catch (e) {
        if (e instanceof AfpError && e.code === kFPItemNotFound) return out;
        throw e;
      }
    }
  }

  async addAppl(dirId: number, path: ClientPath, creator: OSType, tag: number): Promise<void> {
    await this.call(this.head(AfpCommand.FPAddAPPL).u32(dirId).bytes(osType(creator)).u32(tag).bytes(encodePath(path)));
  }

  async removeAppl(dirId: number, path: ClientPath, creator: OSType): Promise<void> {
    await this.call(this.head(AfpCommand.FPRemoveAPPL).u32(dirId).bytes(osType(creator)).bytes(encodePath(path)));
  }

  /** FPGetAPPL: the creator's application number `index` (1-based; 0 is the newest). */
  async getAppl(creator: OSType, index: number, bitmap = FILE_BITMAP_ALL): Promise<ApplInfo> {
    const b = await this.call(this.head(AfpCommand.FPGetAPPL).bytes(osType(creator)).u16(index).u16(bitmap));
    const r = new Reader(b);
    const echoed = r.u16();
    const tag = r.u32();
    return { tag, params: parseBlock(fileFields, echoed, r, b) };
  }

  /** A string comment goes as UTF-8; the comment byte is a length, so at most 255 bytes travel. */
  async addComment(dirId: number, path: ClientPath, comment: string | Uint8Array): Promise<void> {
    const text = typeof comment === 'string' ? Buffer.from(comment, 'utf8') : Buffer.from(comment);
    await this.call(this.head(AfpCommand.FPAddComment).u32(dirId).bytes(encodePath(path)).alignEven().pstring(text));
  }

  async removeComment(dirId: number, path: ClientPath): Promise<void> {
    await this.call(this.head(AfpCommand.FPRemoveComment).u32(dirId).bytes(encodePath(path)));
  }

  async getComment(dirId: number, path: ClientPath): Promise<Buffer> {
    const r = new Reader(await this.call(this.head(AfpCommand.FPGetComment).u32(dirId).bytes(encodePath(path))));
    return Buffer.from(r.pstring());
  }
}
