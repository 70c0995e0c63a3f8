import { randomBytes } from 'node:crypto';
import type { AuthenticatedUser, UamStep } from '../auth/uam.js';
import type { DsiCloseReason, DsiConnection, DsiEndpoint, DsiReply, DsiRequest } from '../dsi/connection.js';
import type { Logger } from '../ops/log.js';
import { Reader, WireUnderflow } from '../wire/reader.js';
import { AfpCommand, commandName } from './commands.js';
import type { AfpServerContext } from './context.js';
import type { CommandTable } from './dispatch.js';
import { AfpError } from './errors.js';
import { kFPCallNotSupported, kFPMiscErr, kFPNoErr, kFPParamErr, resultName } from './result-codes.js';
import { versionNumber, type AfpVersion } from './versions.js';
import { FsError } from '../volume/errors.js';
import type { Volume } from '../volume/volume.js';
import { fsErrorCode } from './fs-errors.js';


/** One AFP session: login state and (in later layers) open volumes and forks. */
export class AfpSession implements DsiEndpoint {
  readonly id = randomBytes(4).toString('hex');
  readonly log: Logger;
  user: AuthenticatedUser | null = null;
  version: AfpVersion | null = null;
  /** The UAM exchange awaiting FPLoginCont, if a login is under way. */
  pendingLogin: ((authInfo: Buffer) => Promise<UamStep>) | null = null;
  /** The user name of the login under way (for the throttle and the log). */
  loginName = '';
  loggedOut = false;
  /** Volumes this session opened, by wire volume ID. */
  readonly openVolumes = new Map<number, Volume>();
  /**
   * Where the last enumeration stopped, so the next page resumes instead of re-skipping.
   * `kinds` records the filter (1 files, 2 directories): indices mean different things under another.
   */
  enumCursor: { volume: number; dir: number; kinds: number; nextIndex: number; last: string } | null = null;

  constructor(readonly conn: DsiConnection, readonly ctx: AfpServerContext, private readonly table: CommandTable) {
    this.log = ctx.log.child({ session: this.id });
  }

  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }

  async request(req: DsiRequest): Promise<DsiReply> {
    const p = req.payload;
    if (p.length === 0) return { code: kFPParamErr };
    const code = p[0]!;
    if (code !== AfpCommand.FPZzzzz) this.conn.setSleeping(false);
    const spec = this.table.get(code);
    if (!spec || (!spec.preAuth && this.user === null)) {
      if (!spec) this.log.debug({ cmd: code }, 'unsupported command');
      return { code: kFPCallNotSupported };
    }
    const started = process.hrtime.bigint();
    let reply: DsiReply;
    try {
      const r = new Reader(p, 1, req.writeOffset > 0 ? req.writeOffset : p.length);
      const out = await spec.handle(this, r, req);
      reply = { code: out.code ?? kFPNoErr, ...(out.payload !== undefined ? { payload: out.payload } : {}) };
    } catch (err) {
      reply = { code: this.errorCode(err, code) };
    }
    if (this.log.isLevelEnabled('debug')) {
      const us = Number(process.hrtime.bigint() - started) / 1000;
      this.log.debug({ cmd: commandName(code), result: resultName(reply.code), us }, 'afp');
    }
    return reply;
  }

  /** The open volume a request names; kFPParamErr for an unknown or closed volume ID. */
  volume(id: number): Volume {
    const v = this.openVolumes.get(id);
    if (!v) throw new AfpError(kFPParamErr, `volume ${id} is not open`);
    return v;
  }

  get versionNumber(): number {
    return this.version ? versionNumber(this.version) : 34;
  }

  private errorCode(err: unknown, cmd: number): number {
    if (err instanceof AfpError) return err.code;
    if (err instanceof FsError) {
      this.log.debug({ cmd: commandName(cmd), err: err.message }, 'file-system error');
      return fsErrorCode(err, this.versionNumber);
    }
    if (err instanceof WireUnderflow) {
      this.log.debug({ cmd: commandName(cmd), err: err.message }, 'malformed request');
      return kFPParamErr;
    }
    // A bug or an unavailable backend: answer, log, and keep the session alive.
    this.log.error({ cmd: commandName(cmd), err }, 'command failed');
    return kFPMiscErr;
  }

  closed(reason: DsiCloseReason): void {
    this.pendingLogin = null;
    this.log.info({ reason, user: this.user?.name, loggedOut: this.loggedOut }, 'session closed');
  }
}
