import { setTimeout as sleep } from 'node:timers/promises';
import { findUam } from '../../auth/uams.js';
import { AuthError, type PasswordChecker, type UamStep } from '../../auth/uam.js';
import { LoginBusyError } from '../../auth/password-gate.js';
import type { Reader } from '../../wire/reader.js';
import { AfpCommand } from '../commands.js';
import type { CommandSpec } from '../dispatch.js';
import { AfpError } from '../errors.js';
import { decodeMacRoman } from '../mac-roman.js';
import type { AfpReply } from '../reply.js';
import {
  kFPAuthContinue,
  kFPBadUAM,
  kFPBadVersNum,
  kFPMiscErr,
  kFPParamErr,
  kFPServerGoingDown,
  kFPUserNotAuth,
} from '../result-codes.js';
import type { AfpSession } from '../session.js';
import { parseVersion } from '../versions.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** FPLogin's pstr user name: UTF-8 from AFP 3 clients, Mac Roman from older ones. */
function pstrName(b: Buffer): string {
  try {
    return strictUtf8.decode(b);
  } catch {
    return decodeMacRoman(b);
  }
}

interface LoginRequest {
  version: string;
  uam: string;
  userName: string;
  authInfo: Buffer;
}

async function beginLogin(s: AfpSession, req: LoginRequest): Promise<AfpReply> {
  if (s.ctx.shuttingDown) throw new AfpError(kFPServerGoingDown);
  if (s.user) throw new AfpError(kFPMiscErr, 'already logged in');
  const version = parseVersion(req.version);
  if (!version) throw new AfpError(kFPBadVersNum, `unknown AFP version ${JSON.stringify(req.version)}`);
  const uam = findUam(s.ctx.uams, req.uam);
  if (!uam) throw new AfpError(kFPBadUAM, `UAM ${JSON.stringify(req.uam)} not enabled`);
  s.version = version;
  s.pendingLogin = null;
  s.loginName = req.userName;
  // The throttle's delay comes before anything is checked, right or wrong, so a client
  // learns nothing from a slow answer and gains nothing by hanging up on one.
  const delay = s.ctx.throttle.delayFor(s.remoteAddress, req.userName);
  if (delay > 0) await sleep(delay);
  return step(s, () => uam.start(req.userName, req.authInfo, gatedChecker(s)), uam.name);
}

/** Password checks go through the gate: bounded in number, one per address, none for a closed connection. */
function gatedChecker(s: AfpSession): PasswordChecker {
  return { check: (name, password) => s.ctx.gate.run(s.remoteAddress, () => s.conn.isOpen, () => s.ctx.checker.check(name, password)) };
}

async function step(s: AfpSession, run: () => Promise<UamStep>, uam: string | null): Promise<AfpReply> {
  let out: UamStep;
  try {
    out = await run();
  } catch (err) {
    s.pendingLogin = null;
    if (err instanceof LoginBusyError) {
      s.log.warn({ user: s.loginName, reason: err.message }, 'login refused: server busy checking passwords');
      throw new AfpError(kFPUserNotAuth, err.message);
    }
    if (!(err instanceof AuthError)) throw err;
    s.ctx.throttle.failed(s.remoteAddress, s.loginName);
    s.log.warn({ user: s.loginName, uam, reason: err.message }, 'login failed');
    throw new AfpError(err.reason === 'bad-params' ? kFPParamErr : kFPUserNotAuth, err.message);
  }
  if (out.kind === 'continue') {
    s.pendingLogin = out.next;
    return { code: kFPAuthContinue, payload: out.reply };
  }
  s.pendingLogin = null;
  s.user = out.user;
  if (!out.user.guest) s.ctx.throttle.succeeded(out.user.name);
  s.log.info({ user: out.user.name, uid: out.user.uid, guest: out.user.guest, version: s.version }, 'login');
  return {};
}

/** Reads the UTF-8 user name of FPLoginExt's own field and the directory-service path after it. */
function loginExtUserAndAuth(r: Reader): { userName: string; authInfo: Buffer } {
  const nameType = r.u8();
  if (nameType !== 3) throw new AfpError(kFPParamErr, `FPLoginExt user name type ${nameType}`);
  const userName = r.bytes(r.u16()).toString('utf8');
  const pathType = r.u8();
  if (pathType === 3) r.skip(r.u16());
  else if (pathType === 1 || pathType === 2) r.skip(r.u8());
  else throw new AfpError(kFPParamErr, `FPLoginExt path type ${pathType}`);
  r.alignEven();
  return { userName, authInfo: r.rest() };
}

export const loginCommands: CommandSpec[] = [
  {
    code: AfpCommand.FPLogin,
    preAuth: true,
    async handle(s, r) {
      const version = r.pstring().toString('latin1');
      const uamName = r.pstring().toString('latin1');
      const uam = findUam(s.ctx.uams, uamName);
      let userName = '';
      if (uam?.needsUserName) {
        userName = pstrName(r.pstring());
        r.alignEven();
      }
      return beginLogin(s, { version, uam: uamName, userName, authInfo: r.rest() });
    },
  },
  {
    code: AfpCommand.FPLoginExt,
    preAuth: true,
    async handle(s, r) {
      r.skip(1); // pad
      r.u16(); // flags: none defined
      const version = r.pstring().toString('latin1');
      const uam = r.pstring().toString('latin1');
      const { userName, authInfo } = loginExtUserAndAuth(r);
      return beginLogin(s, { version, uam, userName, authInfo });
    },
  },
  {
    code: AfpCommand.FPLoginCont,
    preAuth: true,
    async handle(s, r) {
      r.skip(1);
      const next = s.pendingLogin;
      if (!next) throw new AfpError(kFPParamErr, 'FPLoginCont without a login in progress');
      return step(s, () => next(r.rest()), null);
    },
  },
  {
    code: AfpCommand.FPLogout,
    preAuth: true,
    async handle(s) {
      s.log.info({ user: s.user?.name }, 'logout');
      // As netatalk: logging out closes the session's forks and volumes.
      await s.releaseForks();
      s.openVolumes.clear();
      s.enumCursor = null;
      s.user = null;
      s.pendingLogin = null;
      s.loggedOut = true;
      return {};
    },
  },
];
