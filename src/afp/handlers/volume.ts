import { ROOT_ID } from '../../volume/node.js';
import type { Volume } from '../../volume/volume.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import { fromAfpDate, AFP_DATE_NEVER } from '../dates.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { checkBitmap, encodeBlock, volumeFields, type VolumeContext } from '../params.js';
import { kFPAccessDenied, kFPBitmapErr, kFPObjectNotFound, kFPObjectTypeErr } from '../result-codes.js';
import { withCodes } from '../fs-errors.js';
import type { AfpSession } from '../session.js';

/** Volume attribute bits (FPGetVolParms). */
export const VolAttr = {
  ReadOnly: 0x0001,
  HasVolumePassword: 0x0002,
  SupportsFileIDs: 0x0004,
  SupportsCatSearch: 0x0008,
  SupportsBlankAccessPrivs: 0x0010,
  SupportsUnixPrivs: 0x0020,
  SupportsUTF8Names: 0x0040,
  NoNetworkUserIDs: 0x0080,
  DefaultPrivsFromParent: 0x0100,
  NoExchangeFiles: 0x0200,
  SupportsExtAttrs: 0x0400,
  SupportsACLs: 0x0800,
  CaseSensitive: 0x1000,
  SupportsTMLockSteal: 0x2000,
} as const;

const VOLUME_ID_BIT = 0x0020;
const BACKUP_DATE_BIT = 0x0010;
const VOLUME_PASSWORD_BYTES = 8;

/**
 * What a volume promises the Mac. Our user IDs are this gateway's own, not network-wide,
 * hence NoNetworkUserIDs (the client then maps ownership to its local user, as with
 * netatalk). Time Machine volumes must advertise lock stealing.
 */
export function volumeAttributes(v: Volume): number {
  let a = VolAttr.SupportsFileIDs | VolAttr.SupportsCatSearch | VolAttr.SupportsUnixPrivs | VolAttr.SupportsUTF8Names | VolAttr.NoNetworkUserIDs | VolAttr.SupportsExtAttrs;
  if (v.def.password) a |= VolAttr.HasVolumePassword;
  if (v.def.caseSensitive) a |= VolAttr.CaseSensitive;
  if (v.def.timeMachine) a |= VolAttr.SupportsTMLockSteal;
  return a;
}

/** Capacity shown when a volume has no size limit; Time Machine sizes its bands from it. */
export const DEFAULT_CAPACITY = 8 * 2 ** 40;

async function volumeContext(v: Volume): Promise<VolumeContext> {
  const root = await v.node(ROOT_ID);
  const total = v.def.sizeLimit ?? DEFAULT_CAPACITY;
  const used = await v.usedBytes();
  return { volume: v, attributes: volumeAttributes(v), modifiedAt: root.modifiedAt, backupAt: root.backupAt, totalBytes: total, freeBytes: Math.max(0, total - used) };
}

export async function volumeParams(v: Volume, bitmap: number): Promise<Buffer> {
  checkBitmap(volumeFields, bitmap);
  const w = new Writer(64).u16(bitmap);
  return encodeBlock(volumeFields, bitmap, await volumeContext(v), w).finish();
}

function parseVolId(s: AfpSession, r: { u16(): number }): Volume {
  return s.volume(r.u16());
}

export const volumeCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPOpenVol,
    async handle(s, r) {
      r.skip(1);
      const bitmap = r.u16();
      const raw = r.pstring();
      if (!(bitmap & VOLUME_ID_BIT)) throw new AfpError(kFPBitmapErr, 'FPOpenVol must ask for the volume ID');
      checkBitmap(volumeFields, bitmap);
      const name = raw.toString('utf8');
      const v = s.ctx.volumes.byName(name);
      if (!v) throw new AfpError(kFPObjectNotFound, `no volume named ${JSON.stringify(name)}`);
      if (!s.ctx.volumes.catalog.mayOpen(v.def, s.user!)) throw new AfpError(kFPAccessDenied, `${s.user!.name} may not open ${v.name}`);
      if (v.def.password) {
        // The password field is 8 bytes, NUL-padded, after a pad to an even offset.
        let given = '';
        if (r.remaining > 0) {
          r.alignEven();
          const field = r.bytes(Math.min(VOLUME_PASSWORD_BYTES, r.remaining));
          const end = field.indexOf(0);
          given = field.subarray(0, end < 0 ? field.length : end).toString('utf8');
        }
        if (given !== v.def.password) throw new AfpError(kFPAccessDenied, `wrong password for volume ${v.name}`);
      }
      s.openVolumes.set(v.wireId, v);
      s.log.info({ volume: v.name }, 'volume opened');
      // Lock stealing finds sessions holding a Time Machine volume through their records (this
      // node's own sessions also in memory, so a store failure only costs the crash case).
      if (v.def.timeMachine || s.recorded) await s.persist().catch((err: unknown) => s.log.warn({ err }, 'could not record the session'));
      return { payload: await volumeParams(v, bitmap) };
    },
  },
  {
    code: AfpCommand.FPCloseVol,
    async handle(s, r) {
      r.skip(1);
      const v = parseVolId(s, r);
      await s.closeVolumeForks(v);
      s.openVolumes.delete(v.wireId);
      if (s.enumCursor?.volume === v.wireId) s.enumCursor = null;
      if (s.recorded) await s.persist().catch((err: unknown) => s.log.warn({ err }, 'could not update the session record'));
      return {};
    },
  },
  {
    code: AfpCommand.FPGetVolParms,
    async handle(s, r) {
      r.skip(1);
      const v = parseVolId(s, r);
      return { payload: await volumeParams(v, r.u16()) };
    },
  },
  {
    code: AfpCommand.FPSetVolParms,
    async handle(s, r) {
      r.skip(1);
      const v = parseVolId(s, r);
      const bitmap = r.u16();
      if (bitmap !== BACKUP_DATE_BIT) throw new AfpError(kFPBitmapErr, 'only the backup date of a volume can be set');
      const d = r.i32();
      const root = await v.node(ROOT_ID);
      await v.setParams(s.user!, root, { backupAt: d === AFP_DATE_NEVER ? null : fromAfpDate(d) });
      return {};
    },
  },
  {
    code: AfpCommand.FPSyncDir,
    async handle(s, r) {
      r.skip(1);
      const v = parseVolId(s, r);
      const dir = await withCodes({ ENOTDIR: kFPObjectTypeErr }, () => v.nodeFor(s.user!, r.u32()));
      await withCodes({ ENOTDIR: kFPObjectTypeErr }, () => v.syncDir(dir));
      return {};
    },
  },
  // FPFlush lives with the fork commands (handlers/forks.ts): it flushes the volume's forks.
];
