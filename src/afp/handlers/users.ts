import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { decodeMacRoman, encodeMacRomanLossy } from '../mac-roman.js';
import { kFPBitmapErr, kFPItemNotFound, kFPParamErr } from '../result-codes.js';

const THIS_USER = 0x01;
const UserInfoBit = { UserID: 0x01, PrimaryGroupID: 0x02, UUID: 0x04 } as const;

/** FPMapID / FPMapName sub-functions. */
const MapId = { UserMacRoman: 1, GroupMacRoman: 2, UserUtf8: 3, GroupUtf8: 4, UserUuid: 5, GroupUuid: 6 } as const;
const MapName = { UserUtf8: 1, GroupUtf8: 2, UserMacRoman: 3, GroupMacRoman: 4, UserUuid: 5, GroupUuid: 6 } as const;

export const userCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPGetUserInfo,
    async handle(s, r) {
      const flags = r.u8();
      r.u32(); // user id: only ThisUser is supported, as on Apple's servers
      const bitmap = r.u16();
      if (!(flags & THIS_USER)) throw new AfpError(kFPParamErr, 'FPGetUserInfo for another user');
      if (bitmap & ~0x7) throw new AfpError(kFPBitmapErr);
      // We advertise no UUID support, so the UUID bit is cleared in the echoed bitmap.
      const echoed = bitmap & (UserInfoBit.UserID | UserInfoBit.PrimaryGroupID);
      const w = new Writer(12).u16(echoed);
      if (echoed & UserInfoBit.UserID) w.u32(s.user!.uid);
      if (echoed & UserInfoBit.PrimaryGroupID) w.u32(s.user!.gid);
      return { payload: w.finish() };
    },
  },
  {
    code: AfpCommand.FPMapID,
    async handle(s, r) {
      const fn = r.u8();
      if (fn === MapId.UserUuid || fn === MapId.GroupUuid) {
        r.bytes(16);
        throw new AfpError(kFPItemNotFound, 'UUIDs are not supported');
      }
      if (fn < MapId.UserMacRoman || fn > MapId.GroupUtf8) throw new AfpError(kFPParamErr, `FPMapID subfunction ${fn}`);
      const id = r.u32();
      const isUser = fn === MapId.UserMacRoman || fn === MapId.UserUtf8;
      // A guest may learn its own names but must not walk the user database.
      if (s.user!.guest && id !== 0 && id !== (isUser ? s.user!.uid : s.user!.gid)) throw new AfpError(kFPItemNotFound, 'guests map only their own IDs');
      // ID 0 maps to the empty name (the Mac asks for it and expects success).
      const name = id === 0 ? '' : isUser ? await s.ctx.users.userName(id) : await s.ctx.users.groupName(id);
      if (name === undefined) throw new AfpError(kFPItemNotFound, `no ${isUser ? 'user' : 'group'} ${id}`);
      const w = new Writer(64);
      if (fn === MapId.UserUtf8 || fn === MapId.GroupUtf8) {
        const b = Buffer.from(name.normalize('NFD'), 'utf8');
        w.u16(b.length).bytes(b);
      } else {
        w.pstring(encodeMacRomanLossy(name).subarray(0, 255));
      }
      return { payload: w.finish() };
    },
  },
  {
    code: AfpCommand.FPMapName,
    async handle(s, r) {
      const fn = r.u8();
      let name: string;
      if (fn === MapName.UserUtf8 || fn === MapName.GroupUtf8 || fn === MapName.UserUuid || fn === MapName.GroupUuid) {
        name = r.bytes(r.u16()).toString('utf8');
      } else if (fn === MapName.UserMacRoman || fn === MapName.GroupMacRoman) {
        name = decodeMacRoman(r.pstring());
      } else {
        throw new AfpError(kFPParamErr, `FPMapName subfunction ${fn}`);
      }
      if (name.length === 0) throw new AfpError(kFPParamErr, 'empty name');
      if (fn === MapName.UserUuid || fn === MapName.GroupUuid) throw new AfpError(kFPItemNotFound, 'UUIDs are not supported');
      const isUser = fn === MapName.UserUtf8 || fn === MapName.UserMacRoman;
      if (s.user!.guest && name !== (isUser ? s.user!.name : 'nogroup')) throw new AfpError(kFPItemNotFound, 'guests map only their own names');
      const id = isUser ? await s.ctx.users.uidOf(name) : await s.ctx.users.gidOf(name);
      if (id === undefined) throw new AfpError(kFPItemNotFound, `no ${isUser ? 'user' : 'group'} named ${JSON.stringify(name)}`);
      return { payload: new Writer(4).u32(id).finish() };
    },
  },
];
