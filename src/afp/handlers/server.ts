import { utf8Truncated } from '../../wire/utf8.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import { toAfpDate } from '../dates.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { kFPBitmapErr, kFPParamErr } from '../result-codes.js';
import { statusBlock } from '../status.js';

/** Netatalk stops at about this size: the 10.8 client chokes on larger FPGetSrvrParms replies. */
const SRVR_PARMS_MAX = 4600;
const VOL_HAS_PASSWORD = 0x80;

export const serverCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPGetSrvrInfo,
    preAuth: true,
    async handle(s) {
      return { payload: statusBlock(s.ctx, s.conn.localAddress, s.conn.localPort) };
    },
  },
  {
    code: AfpCommand.FPGetSrvrParms,
    async handle(s) {
      const w = new Writer(256);
      w.i32(toAfpDate(Date.now()));
      const countAt = w.length;
      w.u8(0);
      let count = 0;
      for (const v of s.ctx.volumes.catalog.visibleTo(s.user!)) {
        const name = utf8Truncated(v.name.normalize('NFD'), 255);
        if (w.length + 2 + name.length > SRVR_PARMS_MAX || count === 255) break;
        w.u8(v.password ? VOL_HAS_PASSWORD : 0).pstring(name);
        count++;
      }
      const out = w.finish();
      out[countAt] = count;
      return { payload: out };
    },
  },
  {
    // No server messages are configured yet; answering empty tells the Mac there is none.
    code: AfpCommand.FPGetSrvrMsg,
    async handle(_s, r) {
      r.skip(1);
      const type = r.u16();
      const bitmap = r.u16();
      if (type > 1) throw new AfpError(kFPParamErr, `message type ${type}`);
      if (bitmap & ~0x3) throw new AfpError(kFPBitmapErr);
      const utf8 = (bitmap & 0x2) !== 0;
      const w = new Writer(8).u16(type).u16(bitmap);
      if (utf8) w.u16(0);
      else w.u8(0);
      return { payload: w.finish() };
    },
  },
  {
    code: AfpCommand.FPZzzzz,
    async handle(s, r) {
      r.skip(1);
      const flags = r.remaining >= 4 ? r.u32() : 0;
      // 0: going to sleep; 1: extended sleep; 2: waking from extended sleep.
      s.conn.setSleeping(flags !== 2);
      s.log.info({ flags }, flags === 2 ? 'client woke' : 'client sleeping');
      return { payload: new Writer(4).u32(s.ctx.sleepHours).finish() };
    },
  },
];
