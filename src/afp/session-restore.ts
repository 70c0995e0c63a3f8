import type { SessionRecord } from '../meta/sessions.js';
import type { AfpSession } from './session.js';

/** The refnum at the end of an open ID (`<node>:<session>:<refnum>`, session.ts `openId`). */
function refnumOf(openId: string): number | null {
  const n = Number(openId.slice(openId.lastIndexOf(':') + 1));
  return Number.isInteger(n) && n > 0 && n <= 0xffff ? n : null;
}

/**
 * Brings back, on this node, a session whose node died: the primary reconnect of a Mac that
 * lost its gateway (AFP-FACTS §7.2 across the pair). Everything comes from the metadata
 * store: the record names its volumes, the fork store holds its opens (each moved to this
 * node with its deny modes and locks, under the same refnum), and its replay cache answers
 * the requests the Mac sends again. The fresh login session `fresh`, which asked for this,
 * is replaced on its connection. What the dead node had acknowledged but not synced is gone,
 * as the durability contract allows.
 */
export async function restoreSession(fresh: AfpSession, rec: SessionRecord): Promise<AfpSession> {
  const { ctx } = fresh;
  const s = fresh.sibling(rec.id);
  s.user = fresh.user;
  s.version = fresh.version;
  s.token = rec.token;
  s.clientId = rec.clientId;
  s.clientTimestamp = rec.timestamp;
  s.resuming = true;
  for (const key of rec.volumes) {
    const v = ctx.volumes.byKey(key);
    if (v) s.openVolumes.set(v.wireId, v);
  }
  let forks = 0;
  for (const key of rec.forkVolumes) {
    const v = ctx.volumes.byKey(key);
    if (!v) continue;
    for (const open of await v.opensOfSession(rec.id)) {
      const refnum = refnumOf(open.openId);
      try {
        if (refnum === null) throw new Error(`open ID ${open.openId} names no refnum`);
        await s.addFork({ refnum, volume: v, fork: await v.adoptFork(open, s.log) });
        forks++;
      } catch (err) {
        // The Mac learns of this fork's loss at its next use (kFPParamErr) and reopens it.
        s.log.warn({ err, openId: open.openId }, 'restoring a session: an open fork could not be taken over; released');
        await v.forkStore.close(open.openId).catch(() => undefined);
      }
    }
  }
  s.replay.load(await ctx.sessions.store.replies(rec.id, s.replay.window));
  await s.persist();
  s.log.info({ from: rec.node, forks, volumes: s.openVolumes.size, replayEntries: s.replay.size }, 'session restored from the metadata store');
  await s.takeOver(fresh.conn, fresh);
  return s;
}
