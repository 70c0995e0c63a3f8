import { ROOT_ID } from '../../volume/node.js';
import { mayUnlink, rightsOf } from '../../volume/permissions.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { kFPAccessDenied, kFPBitmapErr, kFPParamErr } from '../result-codes.js';
import { readPath, volAndDir } from './common.js';

/** KAUTH_VNODE_* rights as FPAccess carries them (xnu's sys/kauth.h). */
const Kauth = {
  ReadData: 1 << 1,
  WriteData: 1 << 2,
  Execute: 1 << 3,
  Delete: 1 << 4,
  AppendData: 1 << 5,
  DeleteChild: 1 << 6,
  ReadAttributes: 1 << 7,
  WriteAttributes: 1 << 8,
  ReadExtAttributes: 1 << 9,
  WriteExtAttributes: 1 << 10,
  ReadSecurity: 1 << 11,
  WriteSecurity: 1 << 12,
  TakeOwnership: 1 << 13,
  Synchronize: 1 << 20,
  GenericAll: 1 << 21,
  GenericExecute: 1 << 22,
  GenericWrite: 1 << 23,
  GenericRead: 1 << 24,
} as const;

const NEEDS_READ = Kauth.ReadData | Kauth.ReadExtAttributes | Kauth.GenericRead | Kauth.GenericAll;
const NEEDS_WRITE = Kauth.WriteData | Kauth.AppendData | Kauth.DeleteChild | Kauth.WriteAttributes | Kauth.WriteExtAttributes | Kauth.GenericWrite | Kauth.GenericAll;
const NEEDS_SEARCH = Kauth.Execute | Kauth.GenericExecute | Kauth.GenericAll;
const NEEDS_OWNER = Kauth.WriteSecurity | Kauth.GenericAll;

/** FPGetACL/FPSetACL bitmap. */
const FileSec = { UUID: 0x01, GroupUUID: 0x02, ACL: 0x04, RemoveACL: 0x08, Inherit: 0x10 } as const;

export const accessCommands: CommandSpec[] = [
  {
    // Answered from Unix permissions: the rights a real ACL server would compute for a
    // node with no ACL entries. The UUID names the asker; we only know the session's user.
    code: AfpCommand.FPAccess,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      r.u16(); // bitmap: reserved
      r.bytes(16); // UUID
      const want = r.u32();
      const node = await v.resolve(s.user!, dirId, readPath(r).steps);
      const rights = rightsOf(s.user!, node);
      const denied = (need: number, ok: boolean): boolean => (want & need) !== 0 && !ok;
      if (denied(NEEDS_READ, rights.read) || denied(NEEDS_WRITE, rights.write) || denied(NEEDS_SEARCH, rights.search) || denied(NEEDS_OWNER, rights.owner)) {
        throw new AfpError(kFPAccessDenied, `${node.name}: rights 0x${want.toString(16)} not granted`);
      }
      if (want & Kauth.TakeOwnership) throw new AfpError(kFPAccessDenied, 'ownership cannot be taken');
      if (want & Kauth.Delete) {
        if (node.id === ROOT_ID || !mayUnlink(s.user!, await v.node(node.parent), node)) throw new AfpError(kFPAccessDenied, `${node.name} may not be deleted`);
      }
      return {};
    },
  },
  {
    // No ACLs here (kSupportsACLs is not advertised): every node has an empty ACL, and
    // there are no UUIDs to report, so those bits are cleared in the echoed bitmap.
    code: AfpCommand.FPGetACL,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const bitmap = r.u16();
      const maxReply = r.u32();
      if (bitmap & ~0x1f) throw new AfpError(kFPBitmapErr);
      await v.resolve(s.user!, dirId, readPath(r).steps);
      const w = new Writer(12).u16(bitmap & FileSec.ACL);
      if (bitmap & FileSec.ACL) w.u32(0).u32(0); // ACE count, ACL flags
      if (maxReply !== 0 && w.length > maxReply) throw new AfpError(kFPParamErr, 'MaxReplySize too small');
      return { payload: w.finish() };
    },
  },
  {
    // Removing the (empty) ACL succeeds; storing entries or UUIDs is refused, as a server
    // without ACL support must.
    code: AfpCommand.FPSetACL,
    async handle(s, r) {
      const { v, dirId } = volAndDir(s, r);
      const bitmap = r.u16();
      if (bitmap & ~0x1f) throw new AfpError(kFPBitmapErr);
      const node = await v.resolve(s.user!, dirId, readPath(r).steps);
      if (!rightsOf(s.user!, node).owner) throw new AfpError(kFPAccessDenied, `only the owner may change the ACL of ${node.name}`);
      if (bitmap & (FileSec.UUID | FileSec.GroupUUID)) throw new AfpError(kFPAccessDenied, 'owner UUIDs cannot be set');
      if (bitmap & FileSec.ACL) {
        r.alignEven();
        if (r.u32() !== 0) throw new AfpError(kFPAccessDenied, 'ACL entries cannot be stored');
      }
      return {};
    },
  },
];
