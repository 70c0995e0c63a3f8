import { MetaUnavailableError } from '../../meta/meta-store.js';
import type { Reader } from '../../wire/reader.js';
import { Writer } from '../../wire/writer.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { kFPCallNotSupported, kFPMiscErr, kFPParamErr } from '../result-codes.js';
import type { AfpSession } from '../session.js';
import { restoreSession } from '../session-restore.js';

/** FPGetSessionToken types (APG; AFP-FACTS §3.8, §7.1). */
export const TokenType = {
  LoginWithoutID: 0,
  LoginWithID: 1,
  ReconnWithID: 2,
  LoginWithTimeAndID: 3,
  ReconnWithTimeAndID: 4,
  Recon1Login: 5,
  Recon1ReconnectLogin: 6,
  Recon1Refresh: 7,
  GetKerberosSessionKey: 8,
} as const;

/** netatalk refuses longer client IDs; a Mac's is a few dozen bytes. */
const MAX_CLIENT_ID = 80;
/** Our tokens are 16 bytes; anything else cannot be one of ours. */
const TOKEN_BYTES = 16;

/** Types whose client identity asks for Time Machine lock stealing (AFP-FACTS §7.5). */
const STEALING_TYPES: ReadonlySet<number> = new Set([
  TokenType.LoginWithTimeAndID,
  TokenType.ReconnWithTimeAndID,
  TokenType.Recon1Login,
  TokenType.Recon1ReconnectLogin,
]);

interface TokenRequest {
  type: number;
  clientId: Buffer | null;
  timestamp: number | null;
}

/** The layout after Type depends on it: nothing, IDLength+ID, or IDLength+TimeStamp+ID. */
function parseTokenRequest(r: Reader): TokenRequest {
  r.skip(1);
  const type = r.u16();
  switch (type) {
    case TokenType.LoginWithoutID:
      return { type, clientId: null, timestamp: null };
    case TokenType.LoginWithTimeAndID:
    case TokenType.ReconnWithTimeAndID: {
      const len = r.u32();
      const timestamp = r.u32();
      return { type, clientId: clientId(r, len), timestamp };
    }
    case TokenType.LoginWithID:
    case TokenType.ReconnWithID:
    case TokenType.Recon1Login:
    case TokenType.Recon1ReconnectLogin:
    case TokenType.Recon1Refresh:
      return { type, clientId: clientId(r, r.u32()), timestamp: null };
    case TokenType.GetKerberosSessionKey:
      throw new AfpError(kFPCallNotSupported, 'no Kerberos: there is no session key to hand out');
    default:
      throw new AfpError(kFPCallNotSupported, `FPGetSessionToken type ${type}`);
  }
}

function clientId(r: Reader, len: number): Buffer {
  if (len > MAX_CLIENT_ID) throw new AfpError(kFPParamErr, `client ID of ${len} bytes`);
  return r.bytes(len);
}

/**
 * FPGetSessionToken: hands out the session's token (one per session, the same on every
 * call) and records the client's identity with it in the metadata store, so the Mac can
 * reclaim the session after losing its connection. Types 3–6 also steal: earlier sessions
 * of the same user that hold a Time Machine volume, or came from this Mac before it
 * restarted, are ended and their deny modes and locks released.
 */
async function getSessionToken(s: AfpSession, r: Reader): Promise<{ payload: Buffer }> {
  const req = parseTokenRequest(r);
  if (req.clientId !== null && req.type !== TokenType.Recon1Refresh) {
    s.clientId = req.clientId.toString('hex');
    s.clientTimestamp = req.timestamp;
  }
  s.token ||= s.ctx.sessions.newToken();
  await s.persist();
  if (STEALING_TYPES.has(req.type)) {
    const ended = await s.ctx.sessions.stealFor(s);
    if (ended > 0) s.log.info({ ended, type: req.type }, 'lock steal: earlier sessions ended');
  }
  const token = Buffer.from(s.token, 'hex');
  return { payload: new Writer(4 + token.length).u32(token.length).bytes(token).finish() };
}

/**
 * FPDisconnectOldSession: the Mac logged in on a new connection and names the session it
 * lost. When this node still holds that session (connected through a dead socket, or
 * disconnected and waiting), the old connection is cut, the request it was running is let
 * finish (its reply lands in the replay cache), and the old session continues on this
 * connection with its forks, locks, volumes and replay cache; the fresh login is dropped.
 * Anything else is kFPMiscErr, and the Mac falls back to reopening volumes and forks itself.
 */
async function disconnectOldSession(s: AfpSession, r: Reader): Promise<Record<string, never>> {
  r.skip(1);
  r.u16(); // type: 0 is the only one defined
  const len = r.u32();
  if (len > r.remaining) throw new AfpError(kFPParamErr, `token of ${len} bytes, ${r.remaining} sent`);
  const raw = r.bytes(len);
  if (len !== TOKEN_BYTES) throw new AfpError(kFPMiscErr, `a ${len}-byte token is not one of ours`);
  const token = raw.toString('hex');
  if (token === s.token) throw new AfpError(kFPParamErr, 'the session named is this one');
  let rec;
  try {
    rec = await s.ctx.sessions.store.sessionByToken(token);
  } catch (err) {
    if (err instanceof MetaUnavailableError) throw new AfpError(kFPMiscErr, `session store unavailable: ${err.message}`);
    throw err;
  }
  if (!rec) throw new AfpError(kFPMiscErr, 'unknown or expired session token');
  if (rec.uid !== s.user!.uid) {
    s.log.warn({ claimed: rec.id }, 'FPDisconnectOldSession with another user\'s token refused');
    throw new AfpError(kFPMiscErr, 'the token belongs to another user');
  }
  const old = s.ctx.sessions.local(token);
  if (!old) {
    // Held by another node (or an earlier process of this one): restorable once that node has
    // let go of it (asked to, when alive) or is dead.
    if (rec.node === s.ctx.nodeId) throw new AfpError(kFPMiscErr, `session ${rec.id} is gone`);
    const mine = await s.ctx.sessions.acquire(rec, s.resumeWaitMs);
    if (!mine) throw new AfpError(kFPMiscErr, `session ${rec.id} is held by live node ${rec.node}, which did not let go of it`);
    await restoreSession(s, mine);
    return {};
  }
  if (old.state === 'ended') throw new AfpError(kFPMiscErr, `session ${rec.id} has ended`);
  if (old.resuming) throw new AfpError(kFPMiscErr, `session ${old.id} is being resumed already`);
  old.resuming = true;
  try {
    if (old.state === 'connected') {
      s.log.info({ old: old.id }, 'primary reconnect: cutting the old connection');
      old.conn.destroy('handed-over');
      old.state = 'disconnected';
    }
    if (!(await old.idle(old.resumeWaitMs))) {
      // Resuming now would answer replays of a request that has not finished: let the Mac
      // reopen instead. The old session waits for another attempt if sessions may wait at all.
      if (!s.ctx.sessions.disconnected(old)) void old.end('busy at a reconnect, and disconnected sessions are not kept');
      throw new AfpError(kFPMiscErr, `session ${old.id} is still busy with a request`);
    }
    if (old.state !== 'disconnected') throw new AfpError(kFPMiscErr, `session ${old.id} ended meanwhile`);
    await old.takeOver(s.conn, s);
  } finally {
    old.resuming = false;
  }
  return {};
}

export const reconnectCommands: CommandSpec[] = [
  { code: AfpCommand.FPGetSessionToken, handle: getSessionToken },
  { code: AfpCommand.FPDisconnectOldSession, handle: disconnectOldSession },
];
