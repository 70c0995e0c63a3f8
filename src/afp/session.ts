import { randomBytes } from 'node:crypto';
import type { AuthenticatedUser, UamStep } from '../auth/uam.js';
import type { DsiCloseReason, DsiConnection, DsiEndpoint, DsiReply, DsiRequest } from '../dsi/connection.js';
import type { Logger } from '../ops/log.js';
import { Reader, WireUnderflow } from '../wire/reader.js';
import { AfpCommand, commandName } from './commands.js';
import type { AfpServerContext } from './context.js';
import type { CommandTable } from './dispatch.js';
import { AfpError } from './errors.js';
import { kFPCallNotSupported, kFPMiscErr, kFPNoErr, kFPParamErr, kFPTooManyFilesOpen, resultName } from './result-codes.js';
import { versionNumber, type AfpVersion } from './versions.js';
import { FsError } from '../volume/errors.js';
import type { Volume } from '../volume/volume.js';
import type { OpenedFork } from '../volume/open-fork.js';
import { fsErrorCode } from './fs-errors.js';

/**
 * Forks one session may hold open. A Mac opens a sparsebundle's bands a few at a time, far
 * below this; the bound keeps one client from pinning unbounded fork state (cache
 * attachments, open records in the metadata store) on a node. AfpServerContext.maxOpenForks
 * overrides it.
 */
export const MAX_OPEN_FORKS = 1024;
/** OForkRefNums are u16 and never 0. */
const MAX_REFNUM = 0xffff;

/** An open fork as the session knows it: the wire's reference number maps to this. */
export interface SessionFork {
  refnum: number;
  volume: Volume;
  fork: OpenedFork;
}

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
  /** Open forks by OForkRefNum (1..65535). */
  readonly forks = new Map<number, SessionFork>();
  /** The last refnum handed out: numbers are reused only after a wrap, and only once closed. */
  private lastRefnum = 0;
  /** Set when the connection ends: a fork opened by a request still under way is closed at once. */
  private ended = false;
  /** Volumes this session ever opened a fork on: only these can hold opens of it in their store. */
  private readonly forkVolumes = new Set<Volume>();

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

  /** The open fork a request names; kFPParamErr for an unknown or closed OForkRefNum. */
  fork(refnum: number): SessionFork {
    const f = this.forks.get(refnum);
    if (!f) throw new AfpError(kFPParamErr, `fork ${refnum} is not open`);
    return f;
  }

  /**
   * The refnum the next open will get (not yet taken: requests of a session run one at a
   * time, so nothing can claim it before `addFork`). kFPTooManyFilesOpen at the limit.
   */
  nextRefnum(): number {
    if (this.forks.size >= (this.ctx.maxOpenForks ?? MAX_OPEN_FORKS) || this.forks.size >= MAX_REFNUM) {
      throw new AfpError(kFPTooManyFilesOpen, `${this.forks.size} forks are open`);
    }
    let n = this.lastRefnum;
    do n = n >= MAX_REFNUM ? 1 : n + 1;
    while (this.forks.has(n));
    return n;
  }

  /** The ID the metadata store records for an open: unique across the nodes of a pair. */
  openId(refnum: number): string {
    return `${this.ctx.nodeId ?? 'local'}:${this.id}:${refnum}`;
  }

  /** Registers a fork the volume opened; when the connection ended meanwhile, closes it instead. */
  async addFork(f: SessionFork): Promise<void> {
    if (this.ended) {
      await f.fork.close();
      throw new AfpError(kFPParamErr, 'the session ended while the fork was being opened');
    }
    this.forks.set(f.refnum, f);
    this.lastRefnum = f.refnum;
    this.forkVolumes.add(f.volume);
  }

  /** FPCloseFork: the refnum is free at once, whatever the close itself reports. */
  async closeFork(refnum: number): Promise<void> {
    const f = this.fork(refnum);
    this.forks.delete(refnum);
    await f.fork.close();
  }

  /** FPCloseVol: closes the forks this session holds on one volume. */
  async closeVolumeForks(v: Volume): Promise<void> {
    const mine = [...this.forks.values()].filter((f) => f.volume === v);
    for (const f of mine) this.forks.delete(f.refnum);
    await this.settle('closing forks of a closed volume', mine.map((f) => f.fork.close()));
  }

  /**
   * FPLogout and the end of the connection: closes every fork, then asks each volume to drop
   * whatever opens and locks the store still records for this session (a close that failed
   * against the store leaves one behind). Failures are logged, never thrown: the session is
   * going away either way, and the node lease covers what cannot be released now.
   */
  async releaseForks(): Promise<void> {
    const all = [...this.forks.values()];
    this.forks.clear();
    await this.settle('closing forks at session end', all.map((f) => f.fork.close()));
    const volumes = [...this.forkVolumes];
    this.forkVolumes.clear();
    await this.settle('releasing the session on its volumes', volumes.map((v) => v.releaseSession(this.id)));
  }

  private async settle(what: string, work: Promise<unknown>[]): Promise<void> {
    const failed = (await Promise.allSettled(work)).filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) this.log.warn({ err: failed[0]!.reason, failures: failed.length }, `${what} failed`);
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
    this.ended = true;
    this.log.info({ reason, user: this.user?.name, loggedOut: this.loggedOut, openForks: this.forks.size }, 'session closed');
    // DSI calls this synchronously; the release runs on and reports its own failures.
    this.releaseForks().catch((err: unknown) => this.log.error({ err }, 'releasing the session failed'));
  }
}
