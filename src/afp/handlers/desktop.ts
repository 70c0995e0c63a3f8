/**
 * The desktop database: icons, APPL mappings and comments, per volume in the metadata store.
 *
 * Requests (after `Cmd(1) Pad(1)`) and replies, from Wireshark's packet-afp.c
 * (dissect_query_afp_add_icon, _get_icon, _get_icon_info, _add_appl, _rmv_appl, _get_appl,
 * _add_cmt, _get_cmt and their replies) and netatalk's etc/afpd/desktop.c and appl.c:
 *
 *   FPOpenDT (48)         VolID(2)                                          → DTRefNum(2)
 *   FPCloseDT (49)        DTRefNum(2)
 *   FPAddIcon (192)       DTRefNum(2) Creator(4) Type(4) IconType(1) Pad(1) IconTag(4) BitmapSize(2),
 *                         the bitmap follows as DSIWrite data
 *   FPGetIcon (51)        DTRefNum(2) Creator(4) Type(4) IconType(1) Pad(1) Length(2) → the first Length bytes
 *   FPGetIconInfo (52)    DTRefNum(2) Creator(4) IconIndex(2)  → IconTag(4) Type(4) IconType(1) Pad(1) Size(2)
 *   FPAddAPPL (53)        DTRefNum(2) DirID(4) Creator(4) ApplTag(4) Path
 *   FPRemoveAPPL (54)     DTRefNum(2) DirID(4) Creator(4) Path
 *   FPGetAPPL (55)        DTRefNum(2) Creator(4) APPLIndex(2) Bitmap(2) → Bitmap(2) ApplTag(4) file parameters
 *   FPAddComment (56)     DTRefNum(2) DirID(4) Path [Pad to even] CommentLen(1) Comment
 *   FPRemoveComment (57)  DTRefNum(2) DirID(4) Path
 *   FPGetComment (58)     DTRefNum(2) DirID(4) Path                         → CommentLen(1) Comment
 *
 * Wireshark decodes only ApplTag in the FPGetAPPL reply; netatalk (afp_getappl) and Apple's
 * reference send the echoed bitmap first and the file parameters after, as here.
 *
 * The DTRefNum is the volume ID, as in netatalk: a reference is valid exactly while its
 * volume is open, and anything else is kFPParamErr. Icons belong to the volume, not to an
 * object: whoever opened it may add them, as netatalk's world-writable .AppleDesktop allows.
 * Comments and mappings are keyed by CNID; those of a deleted object linger in the store,
 * unreachable since CNIDs are never reused (FPGetAPPL skips such mappings).
 */
import { PARENT_OF_ROOT, ROOT_ID, type NodeRecord } from '../../volume/node.js';
import { FsError } from '../../volume/errors.js';
import { mayUnlink, rightsOf, type Principal } from '../../volume/permissions.js';
import type { Volume } from '../../volume/volume.js';
import type { Reader } from '../../wire/reader.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import { DesktopDb } from '../desktop-db.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { checkBitmap, encodeBlock, fileFields } from '../params.js';
import { kFPAccessDenied, kFPDiskFull,
  kFPIconTypeError, kFPItemNotFound, kFPObjectTypeErr, kFPParamErr } from '../result-codes.js';
import type { AfpSession } from '../session.js';
import { nodeContext, readPath } from './common.js';

/** Longer comments are cut, as netatalk cuts them. */
export const MAX_COMMENT_BYTES = 199;
/**
 * Bounds on what one client can make the store keep and a request load: classic desktop
 * icons are at most 1 KiB (32×32, 8 bits), and one application has a few dozen at most.
 * FPGetIconInfo reads a creator's icons, so these caps bound that read (≤ 1 MiB).
 */
export const MAX_ICON_BYTES = 16 * 1024;
export const MAX_ICONS_PER_CREATOR = 64;
export const MAX_APPLS_PER_CREATOR = 64;

/** `Pad(1) DTRefNum(2)`, the start of every desktop request. */
function desktop(s: AfpSession, r: Reader): { v: Volume; db: DesktopDb } {
  r.skip(1);
  const v = s.volume(r.u16());
  return { v, db: new DesktopDb(v.kv) };
}

/**
 * The DirID is checked before the rest is read, so a stale one answers kFPObjectNotFound
 * even when the request stops right after it, as netatalk answers.
 */
async function startDir(v: Volume, who: Principal, r: Reader): Promise<number> {
  const dirId = r.u32();
  if (dirId !== PARENT_OF_ROOT) await v.resolveDir(who, dirId, []);
  return dirId;
}

/**
 * Changing an object's comment or APPL mapping takes write permission on the object (or
 * owning it, as for its xattrs), or the right to rename it in its directory: desktop data
 * describes the entry. The sticky volume root thus keeps users off each other's backups.
 */
async function requireAnnotate(s: AfpSession, v: Volume, node: NodeRecord): Promise<void> {
  const r = rightsOf(s.user!, node);
  // The shared root is writable by all for adding entries, not for annotating the volume.
  if (node.id === ROOT_ID) {
    if (r.owner) return;
    throw new AfpError(kFPAccessDenied, 'the volume root belongs to the volume');
  }
  if (r.write || r.owner) return;
  if (node.id !== ROOT_ID && mayUnlink(s.user!, await v.node(node.parent), node)) return;
  throw new AfpError(kFPAccessDenied, `no write permission on ${node.name} or its directory`);
}

/** Creators, types and icon types are raw bytes: any value is legal. */
function readIconKey(r: Reader): { creator: Buffer; type: Buffer; iconType: number } {
  const creator = r.bytes(4);
  const type = r.bytes(4);
  const iconType = r.u8();
  r.skip(1);
  return { creator, type, iconType };
}

const isLiveFile = (n: NodeRecord | undefined): n is NodeRecord => n !== undefined && n.kind === 'file';

export const desktopCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPOpenDT,
    async handle(s, r) {
      r.skip(1);
      const id = r.u16();
      s.volume(id);
      return { payload: new Writer(2).u16(id).finish() };
    },
  },
  {
    code: AfpCommand.FPCloseDT,
    async handle(s, r) {
      desktop(s, r);
      return {};
    },
  },
  {
    code: AfpCommand.FPAddIcon,
    async handle(s, r, req) {
      const { db } = desktop(s, r);
      const { creator, type, iconType } = readIconKey(r);
      const tag = r.u32();
      const size = r.u16();
      // The bitmap travels as DSIWrite data; a client that sends it inline in a DSICommand is served too.
      const data = req.writeOffset > 0 ? req.payload.subarray(req.writeOffset) : r.rest();
      if (size === 0 || data.length !== size) throw new AfpError(kFPParamErr, `BitmapSize ${size} with ${data.length} bytes of bitmap`);
      if (size > MAX_ICON_BYTES) throw new AfpError(kFPParamErr, `icons are at most ${MAX_ICON_BYTES} bytes`);
      // An icon replaces one of its kind only at the same size (Apple's and netatalk's rule).
      const old = await db.icon(creator, type, iconType);
      if (old && old.data.length !== size) throw new AfpError(kFPIconTypeError, `the stored icon has ${old.data.length} bytes, not ${size}`);
      if (!old && (await db.icons(creator)).length >= MAX_ICONS_PER_CREATOR) throw new AfpError(kFPDiskFull, `at most ${MAX_ICONS_PER_CREATOR} icons per creator`);
      await db.putIcon(creator, { type, iconType, tag, data });
      return {};
    },
  },
  {
    code: AfpCommand.FPGetIcon,
    async handle(s, r) {
      const { db } = desktop(s, r);
      const { creator, type, iconType } = readIconKey(r);
      const length = r.u16();
      const icon = await db.icon(creator, type, iconType);
      if (!icon) throw new AfpError(kFPItemNotFound, 'no such icon');
      // Length 0 asks only whether the icon exists.
      return { payload: icon.data.subarray(0, length) };
    },
  },
  {
    code: AfpCommand.FPGetIconInfo,
    async handle(s, r) {
      const { db } = desktop(s, r);
      const creator = r.bytes(4);
      const index = r.u16();
      const icon = index >= 1 ? (await db.icons(creator))[index - 1] : undefined;
      if (!icon) throw new AfpError(kFPItemNotFound, `no icon ${index} for this creator`);
      const w = new Writer(12).u32(icon.tag).bytes(icon.type).u8(icon.iconType).u8(0).u16(icon.data.length);
      return { payload: w.finish() };
    },
  },
  {
    code: AfpCommand.FPAddAPPL,
    async handle(s, r) {
      const { v, db } = desktop(s, r);
      const dirId = await startDir(v, s.user!, r);
      const creator = r.bytes(4);
      const tag = r.u32();
      const app = await v.resolve(s.user!, dirId, readPath(r).steps);
      if (app.kind !== 'file') throw new AfpError(kFPObjectTypeErr, 'an application is a file');
      await requireAnnotate(s, v, app);
      const appls = await db.appls(creator);
      if (appls.length >= MAX_APPLS_PER_CREATOR && !appls.some((a) => a.cnid === app.id)) throw new AfpError(kFPDiskFull, `at most ${MAX_APPLS_PER_CREATOR} applications per creator`);
      await db.putAppl(creator, app.id, tag);
      return {};
    },
  },
  {
    code: AfpCommand.FPRemoveAPPL,
    async handle(s, r) {
      const { v, db } = desktop(s, r);
      const dirId = await startDir(v, s.user!, r);
      const creator = r.bytes(4);
      const steps = readPath(r).steps;
      let app: NodeRecord;
      try {
        app = await v.resolve(s.user!, dirId, steps);
      } catch (e) {
        if (!(e instanceof FsError && e.reason === 'ENOENT')) throw e;
        // A deleted application can only be named by a path that no longer resolves; its
        // mapping is then one of the creator's dead ones, which go (netatalk answers OK here).
        let dropped = 0;
        for (const a of await db.appls(creator)) {
          if (!isLiveFile(await v.find(a.cnid)) && (await db.deleteAppl(creator, a.cnid))) dropped++;
        }
        if (dropped === 0) throw new AfpError(kFPItemNotFound, 'no such application mapping');
        return {};
      }
      if (app.kind !== 'file') throw new AfpError(kFPObjectTypeErr, 'an application is a file');
      await requireAnnotate(s, v, app);
      if (!(await db.deleteAppl(creator, app.id))) throw new AfpError(kFPItemNotFound, `${app.name} is not mapped to this creator`);
      return {};
    },
  },
  {
    code: AfpCommand.FPGetAPPL,
    async handle(s, r) {
      const { v, db } = desktop(s, r);
      const creator = r.bytes(4);
      // Index 0 asks for the newest mapping, which is also index 1.
      const index = Math.max(1, r.u16());
      const bitmap = r.u16();
      checkBitmap(fileFields, bitmap);
      // Mappings whose application was deleted, or that this user cannot reach, are skipped.
      let seen = 0;
      for (const a of await db.appls(creator)) {
        const app = await v.nodeFor(s.user!, a.cnid).catch((e: unknown) => {
          if (e instanceof FsError) return undefined;
          throw e;
        });
        if (!isLiveFile(app) || ++seen < index) continue;
        const w = new Writer(128).u16(bitmap).u32(a.tag);
        return { payload: encodeBlock(fileFields, bitmap, await nodeContext(s, v, app, bitmap), w).finish() };
      }
      throw new AfpError(kFPItemNotFound, `no application ${index} for this creator`);
    },
  },
  {
    code: AfpCommand.FPAddComment,
    async handle(s, r) {
      const { v, db } = desktop(s, r);
      const dirId = await startDir(v, s.user!, r);
      const steps = readPath(r).steps;
      r.alignEven();
      const text = r.bytes(r.u8());
      const node = await v.resolve(s.user!, dirId, steps);
      await requireAnnotate(s, v, node);
      // An empty comment is no comment (netatalk stores it empty and then reports none).
      if (text.length === 0) await db.deleteComment(node.id);
      else await db.putComment(node.id, text.subarray(0, MAX_COMMENT_BYTES));
      return {};
    },
  },
  {
    code: AfpCommand.FPRemoveComment,
    async handle(s, r) {
      const { v, db } = desktop(s, r);
      const dirId = await startDir(v, s.user!, r);
      const node = await v.resolve(s.user!, dirId, readPath(r).steps);
      await requireAnnotate(s, v, node);
      if (!(await db.deleteComment(node.id))) throw new AfpError(kFPItemNotFound, `${node.name} has no comment`);
      return {};
    },
  },
  {
    code: AfpCommand.FPGetComment,
    async handle(s, r) {
      const { v, db } = desktop(s, r);
      const dirId = await startDir(v, s.user!, r);
      const node = await v.resolve(s.user!, dirId, readPath(r).steps);
      const text = await db.comment(node.id);
      if (!text) throw new AfpError(kFPItemNotFound, `${node.name} has no comment`);
      return { payload: new Writer(1 + text.length).u8(text.length).bytes(text).finish() };
    },
  },
];
