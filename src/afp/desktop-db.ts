import type { KeyValueArea } from '../volume/node.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';

/**
 * The desktop database of one volume, kept in the namespace store's key/value area:
 *
 *   dt:icon:<creator>:<type>:<iconType>  IconTag(4) bitmap
 *   dt:appl:<creator>:<cnid>             ApplTag(4) Seq(4)
 *   dt:comment:<cnid>                    comment bytes
 *
 * Creators and types are their 4 bytes in hex (OSTypes may hold any byte), CNIDs and icon
 * types fixed-width hex, so key order is byte order and a creator's entries share a prefix.
 * APPL mappings and comments name objects by CNID, so they follow renames and moves, and
 * since CNIDs are never reused, one left behind by a deleted object never attaches to another.
 */

export interface Icon {
  /** The 4-byte file type. */
  type: Buffer;
  iconType: number;
  tag: number;
  data: Buffer;
}

export interface Appl {
  cnid: number;
  tag: number;
  /** Order of addition: higher is newer. */
  seq: number;
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
const osType = (b: Buffer): string => b.toString('hex');

const key = {
  icons: (creator: Buffer) => `dt:icon:${osType(creator)}:`,
  icon: (creator: Buffer, type: Buffer, iconType: number) => `${key.icons(creator)}${osType(type)}:${iconType.toString(16).padStart(2, '0')}`,
  appls: (creator: Buffer) => `dt:appl:${osType(creator)}:`,
  appl: (creator: Buffer, cnid: number) => `${key.appls(creator)}${hex8(cnid)}`,
  comment: (cnid: number) => `dt:comment:${hex8(cnid)}`,
};

/** The last `:`-separated field of a key, as a number. */
const tailHex = (k: string): number => parseInt(k.slice(k.lastIndexOf(':') + 1), 16);

function decodeIcon(k: string, v: Buffer): Icon {
  const [, , , type, iconType] = k.split(':');
  const r = new Reader(v);
  return { type: Buffer.from(type!, 'hex'), iconType: parseInt(iconType!, 16), tag: r.u32(), data: r.rest() };
}

function decodeAppl(k: string, v: Buffer): Appl {
  const r = new Reader(v);
  return { cnid: tailHex(k), tag: r.u32(), seq: r.u32() };
}

export class DesktopDb {
  constructor(private readonly kv: KeyValueArea) {}

  async icon(creator: Buffer, type: Buffer, iconType: number): Promise<Icon | undefined> {
    const k = key.icon(creator, type, iconType);
    const v = await this.kv.kvGet(k);
    return v && decodeIcon(k, v);
  }

  /** A creator's icons in a stable order (by type, then icon type): FPGetIconInfo's index runs over it. */
  async icons(creator: Buffer): Promise<Icon[]> {
    return (await this.kv.kvList(key.icons(creator))).map(([k, v]) => decodeIcon(k, v));
  }

  async putIcon(creator: Buffer, icon: Icon): Promise<void> {
    const v = new Writer(4 + icon.data.length).u32(icon.tag).bytes(icon.data).finish();
    await this.kv.kvSet(key.icon(creator, icon.type, icon.iconType), v);
  }

  /** A creator's mappings, newest first (as netatalk lists them), including ones whose file is gone. */
  async appls(creator: Buffer): Promise<Appl[]> {
    const all = (await this.kv.kvList(key.appls(creator))).map(([k, v]) => decodeAppl(k, v));
    return all.sort((a, b) => b.seq - a.seq || b.cnid - a.cnid);
  }

  /** Adds or replaces a mapping; either way it becomes the newest. */
  async putAppl(creator: Buffer, cnid: number, tag: number): Promise<void> {
    const newest = (await this.appls(creator))[0];
    const seq = newest ? newest.seq + 1 : 1;
    await this.kv.kvSet(key.appl(creator, cnid), new Writer(8).u32(tag).u32(seq).finish());
  }

  deleteAppl(creator: Buffer, cnid: number): Promise<boolean> {
    return this.kv.kvDelete(key.appl(creator, cnid));
  }

  comment(cnid: number): Promise<Buffer | undefined> {
    return this.kv.kvGet(key.comment(cnid));
  }

  async putComment(cnid: number, text: Buffer): Promise<void> {
    await this.kv.kvSet(key.comment(cnid), Buffer.from(text));
  }

  deleteComment(cnid: number): Promise<boolean> {
    return this.kv.kvDelete(key.comment(cnid));
  }
}
