import { AfpCommand } from '../afp/commands.js';
import { AfpError } from '../afp/errors.js';
import { fileFields, parseBlock, type Params } from '../afp/params.js';
import { kFPEOFErr, kFPNoErr } from '../afp/result-codes.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import type { AfpClient } from './afp-client.js';
import { FILE_BITMAP_ALL } from './afp-volume.js';

/** FPOpenFork access-mode bits. */
export const ForkMode = { Read: 0x0001, Write: 0x0002, DenyRead: 0x0010, DenyWrite: 0x0020 } as const;

const RESOURCE_FORK = 0x80;
const FROM_END = 0x80;
const UNLOCK = 0x01;
const RSRC_LENGTH_BITS = 0x0400 | 0x4000;
const DATA_LENGTH_BITS = 0x0200 | 0x0800;
/** The length fields FPSetForkParms takes, by fork and width. */
const LENGTH_BIT = { data: { legacy: 0x0200, ext: 0x0800 }, rsrc: { legacy: 0x0400, ext: 0x4000 } } as const;
/** Used when a server advertises no quantum; the DSI floor every server accepts. */
const FALLBACK_QUANTUM = 32000;
/** Requests a bulk transfer keeps in flight: enough to hide the round trip on a LAN. */
export const DEFAULT_PIPELINE = 4;

/** Every file parameter a fork may report: all of FILE_BITMAP_ALL but the other fork's lengths. */
export function forkBitmapAll(rsrc: boolean): number {
  return FILE_BITMAP_ALL & ~(rsrc ? DATA_LENGTH_BITS : RSRC_LENGTH_BITS);
}

export interface OpenForkOptions {
  /** The resource fork instead of the data fork. */
  rsrc?: boolean;
  /** ForkMode bits; default Read. */
  mode?: number;
  /** File parameters wanted in the reply; default all this fork may report. */
  bitmap?: number;
}

/** FPOpenFork's reply as sent, also when the code is an error with a block (kFPDenyConflict). */
export interface OpenForkReply {
  code: number;
  bitmap: number;
  refnum: number;
  params: Params;
}

export interface ReadResult {
  data: Buffer;
  /** The server answered kFPEOFErr: the read reached the end of the fork. */
  eof: boolean;
}

export interface LockOptions {
  /** The offset counts from the end of the fork. */
  fromEnd?: boolean;
  /** FPByteRangeLock (32-bit) instead of FPByteRangeLockExt. */
  legacy?: boolean;
}

/**
 * Runs `run(0..count-1)` with at most `parallel` calls outstanding. DSI lets a client have
 * several requests in flight; the server still runs them in order, so a pipeline only hides
 * the round trip. The first failure stops new calls and is rethrown once the others settle.
 */
export async function pipelined(count: number, parallel: number, run: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < count && !failure) {
      const i = next++;
      try {
        await run(i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, count)) }, worker));
  if (failure) throw (failure as { err: unknown }).err;
}

/** An open fork (FPOpenFork's OForkRefNum) and the commands that act on it. */
export class AfpFork {
  constructor(
    readonly client: AfpClient,
    readonly refnum: number,
    readonly rsrc: boolean,
    /** The parameters FPOpenFork returned. */
    readonly params: Params,
  ) {}

  /** The most data one request may carry (the server request quantum). */
  get quantum(): number {
    return this.client.session.requestQuantum || FALLBACK_QUANTUM;
  }

  private head(cmd: number, flag = 0): Writer {
    return new Writer(32).u8(cmd).u8(flag).u16(this.refnum);
  }

  private async call(w: Writer): Promise<Buffer> {
    return this.client.call(w.finish());
  }

  /** A read reply: the bytes, also when the code is kFPEOFErr; other codes throw. */
  private async readReply(w: Writer): Promise<ReadResult> {
    const r = await this.client.raw(w.finish());
    if (r.code !== kFPNoErr && r.code !== kFPEOFErr) throw new AfpError(r.code);
    return { data: r.payload, eof: r.code === kFPEOFErr };
  }

  /** One FPReadExt. */
  readExt(offset: number, count: number): Promise<ReadResult> {
    return this.readReply(this.head(AfpCommand.FPReadExt).i64(BigInt(offset)).i64(BigInt(count)));
  }

  /** One FPRead (32-bit); the newline mask/char stop the read after a matching byte. */
  readLegacy(offset: number, count: number, newline: { mask: number; char: number } = { mask: 0, char: 0 }): Promise<ReadResult> {
    return this.readReply(this.head(AfpCommand.FPRead).i32(offset).i32(count).u8(newline.mask).u8(newline.char));
  }

  /** Up to `count` bytes from `offset`, in quantum-sized FPReadExt requests; stops at the end of the fork. */
  async read(offset: number, count: number): Promise<ReadResult> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < count) {
      const r = await this.readExt(offset + got, Math.min(this.quantum, count - got));
      parts.push(r.data);
      got += r.data.length;
      if (r.eof) return { data: Buffer.concat(parts), eof: true };
      if (r.data.length === 0) break;
    }
    return { data: Buffer.concat(parts), eof: false };
  }

  /** One FPWriteExt through DSIWrite; returns the offset just past the last byte written. */
  async writeExt(offset: number, data: Buffer, fromEnd = false): Promise<number> {
    const header = this.head(AfpCommand.FPWriteExt, fromEnd ? FROM_END : 0).i64(BigInt(offset)).i64(BigInt(data.length)).finish();
    const r = await this.client.dsi.write(header, data);
    if (r.code !== kFPNoErr) throw new AfpError(r.code);
    return Number(new Reader(r.payload).u64());
  }

  /** One FPWrite (32-bit) through DSIWrite. */
  async writeLegacy(offset: number, data: Buffer, fromEnd = false): Promise<number> {
    const header = this.head(AfpCommand.FPWrite, fromEnd ? FROM_END : 0).i32(offset).i32(data.length).finish();
    const r = await this.client.dsi.write(header, data);
    if (r.code !== kFPNoErr) throw new AfpError(r.code);
    return new Reader(r.payload).u32();
  }

  /** Writes all of `data` at `offset` in quantum-sized FPWriteExt requests, `parallel` in flight. */
  async write(offset: number, data: Buffer, parallel = DEFAULT_PIPELINE): Promise<number> {
    const q = this.quantum;
    const pieces = Math.ceil(data.length / q);
    await pipelined(pieces, parallel, async (i) => {
      const at = i * q;
      const piece = data.subarray(at, Math.min(at + q, data.length));
      const end = await this.writeExt(offset + at, piece);
      if (end !== offset + at + piece.length) throw new Error(`short write at ${offset + at}: the server wrote up to ${end}`);
    });
    return offset + data.length;
  }

  private async byteRange(offset: number, length: number, unlock: boolean, o: LockOptions): Promise<number> {
    const flags = (unlock ? UNLOCK : 0) | (o.fromEnd ? FROM_END : 0);
    if (o.legacy) return new Reader(await this.call(this.head(AfpCommand.FPByteRangeLock, flags).i32(offset).i32(length))).u32();
    return Number(new Reader(await this.call(this.head(AfpCommand.FPByteRangeLockExt, flags).i64(BigInt(offset)).i64(BigInt(length)))).u64());
  }

  /** Locks a range (length −1: to the end of any fork); returns the absolute start. */
  lock(offset: number, length: number, o: LockOptions = {}): Promise<number> {
    return this.byteRange(offset, length, false, o);
  }

  unlock(offset: number, length: number, o: LockOptions = {}): Promise<number> {
    return this.byteRange(offset, length, true, o);
  }

  async getParms(bitmap = forkBitmapAll(this.rsrc)): Promise<Params> {
    const b = await this.call(new Writer(8).u8(AfpCommand.FPGetForkParms).u8(0).u16(this.refnum).u16(bitmap));
    const r = new Reader(b);
    return parseBlock(fileFields, r.u16(), r, b);
  }

  /** The fork's current length (ExtDataForkLen / ExtRsrcForkLen). */
  async length(): Promise<number> {
    const p = await this.getParms(this.rsrc ? LENGTH_BIT.rsrc.ext : LENGTH_BIT.data.ext);
    return (this.rsrc ? p.rsrcLength : p.dataLength) ?? 0;
  }

  /** FPSetForkParms with the fork's 64-bit length field (or the 32-bit one). */
  async setLength(length: number, o: { legacy?: boolean } = {}): Promise<void> {
    const bit = LENGTH_BIT[this.rsrc ? 'rsrc' : 'data'][o.legacy ? 'legacy' : 'ext'];
    const w = new Writer(16).u8(AfpCommand.FPSetForkParms).u8(0).u16(this.refnum).u16(bit);
    await this.call(o.legacy ? w.i32(length) : w.i64(BigInt(length)));
  }

  async flush(): Promise<void> {
    await this.call(this.head(AfpCommand.FPFlushFork));
  }

  /** FPSyncFork: returns once the server has the fork's bytes durable. */
  async sync(): Promise<void> {
    await this.call(this.head(AfpCommand.FPSyncFork));
  }

  async close(): Promise<void> {
    await this.call(this.head(AfpCommand.FPCloseFork));
  }
}

/** Parses FPOpenFork's reply block (also sent with kFPDenyConflict). */
export function parseOpenForkReply(code: number, payload: Buffer): OpenForkReply {
  const r = new Reader(payload);
  const bitmap = r.u16();
  const refnum = r.u16();
  return { code, bitmap, refnum, params: parseBlock(fileFields, bitmap, r, payload) };
}

export function openForkRequest(volumeId: number, dirId: number, path: Buffer, o: OpenForkOptions): Buffer {
  const w = new Writer(64).u8(AfpCommand.FPOpenFork).u8(o.rsrc ? RESOURCE_FORK : 0).u16(volumeId).u32(dirId);
  return w.u16(o.bitmap ?? forkBitmapAll(o.rsrc ?? false)).u16(o.mode ?? ForkMode.Read).bytes(path).finish();
}
