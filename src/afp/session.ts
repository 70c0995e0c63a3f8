import { randomBytes } from 'node:crypto';
import type { AuthenticatedUser, UamStep } from '../auth/uam.js';
import type { DsiCloseReason, DsiConnection, DsiEndpoint, DsiReply, DsiRequest } from '../dsi/connection.js';
import type { Logger } from '../ops/log.js';
import { Reader, WireUnderflow } from '../wire/reader.js';
import { AfpCommand, commandName } from './commands.js';
import type { AfpServerContext } from './context.js';
import type { CommandTable } from './dispatch.js';
import { AfpError } from './errors.js';
import { kFPCallNotSupported, kFPMiscErr, kFPNoErr, kFPParamErr, kFPTooManyFilesOpen, resultLabel, resultName } from './result-codes.js';
import { versionNumber, type AfpVersion } from './versions.js';
import { FsError } from '../volume/errors.js';
import type { Volume } from '../volume/volume.js';
import type { OpenedFork } from '../volume/open-fork.js';
import { fsErrorCode } from './fs-errors.js';
import { needsReplayEntry, ReplayCache } from './replay-cache.js';

/** How often a session may warn that the stores failed its requests. */
const STORE_FAILURE_LOG_MS = 60_000;
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

export type SessionState = 'connected' | 'disconnected' | 'ended';

/** Replay-cache depth when the context names none (netatalk's). */
const DEFAULT_REPLAY_WINDOW = 128;
/** How long FPDisconnectOldSession waits for the old session's request under way, by default. */
const DEFAULT_RESUME_WAIT_MS = 70_000;

/**
 * One AFP session: login state, open volumes and forks, the session token and the replay
 * cache. A session outlives its connection when its Mac may come back for it (primary
 * reconnect, AFP-FACTS §7.2): the connection is swapped under it and everything carries on.
 */
export class AfpSession implements DsiEndpoint {
  readonly log: Logger;
  readonly createdAt = Date.now();
  state: SessionState = 'connected';
  /** The opaque session token (hex) once FPGetSessionToken handed one out. */
  token = '';
  /** The Mac's identity from FPGetSessionToken (hex ID, boot timestamp). */
  clientId = '';
  clientTimestamp: number | null = null;
  /** True once the session's record went to the store (token or Time Machine volume). */
  recorded = false;
  /** Set while an FPDisconnectOldSession is taking this session over: lock stealing spares it. */
  resuming = false;
  readonly replay: ReplayCache;
  /** The request being executed, so a takeover can wait for it (its reply goes to the cache). */
  private running: Promise<void> | null = null;
  private connection: DsiConnection;
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
  /** Store failures answered since the last warning about them, and when that was. */
  private storeFailures = 0;
  private storeFailureLoggedAt = -Infinity;
  /** The last refnum handed out: numbers are reused only after a wrap, and only once closed. */
  private lastRefnum = 0;
  /** Volumes this session ever opened a fork on: only these can hold opens of it in their store. */
  private readonly forkVolumes = new Set<Volume>();

  /**
   * `id`: 8 random bytes, unique across the nodes of a pair (open IDs and store records carry
   * it); a session restored from the store keeps the one it had.
   */
  constructor(
    conn: DsiConnection,
    readonly ctx: AfpServerContext,
    private readonly table: CommandTable,
    readonly id: string = randomBytes(8).toString('hex'),
  ) {
    this.connection = conn;
    this.log = ctx.log.child({ session: this.id });
    this.replay = new ReplayCache(ctx.replayCacheSize ?? DEFAULT_REPLAY_WINDOW);
  }

  /** What the connection adds to its log lines while it serves this session. */
  get logBindings(): { session: string } {
    return { session: this.id };
  }

  /** The connection the session currently speaks over (a primary reconnect replaces it). */
  get conn(): DsiConnection {
    return this.connection;
  }

  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }

  async request(req: DsiRequest): Promise<DsiReply> {
    const p = req.payload;
    if (p.length === 0) return { code: kFPParamErr };
    const code = p[0]!;
    if (code !== AfpCommand.FPZzzzz) this.conn.setSleeping(false);
    const cached = this.replay.arrive(req.requestId, code);
    if (cached) {
      this.log.info({ cmd: commandName(code), requestId: req.requestId, result: resultName(cached.code) }, 'replayed request answered from the replay cache');
      return cached;
    }
    const run = this.execute(code, req);
    this.running = run.then(() => undefined);
    try {
      return await run;
    } finally {
      this.running = null;
    }
  }

  private async execute(code: number, req: DsiRequest): Promise<DsiReply> {
    const p = req.payload;
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
    const us = Number(process.hrtime.bigint() - started) / 1000;
    this.ctx.observeCommand?.(commandName(code), resultLabel(reply.code), us / 1e6, p.length, payloadBytes(reply.payload));
    if (this.log.isLevelEnabled('debug')) this.log.debug({ cmd: commandName(code), result: resultName(reply.code), us }, 'afp');
    // Cached before the reply leaves: a Mac that never sees it sends the request again.
    if (this.user !== null && needsReplayEntry(p)) {
      await this.replay.remember(req.requestId, code, reply).catch((err: unknown) => this.log.warn({ err, cmd: commandName(code) }, 'could not store the replay-cache entry'));
    }
    return reply;
  }

  /** Resolves true once no request is under way, false if one is still running after `ms`. */
  async idle(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.running) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.running.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), left))),
      ]);
      clearTimeout(timer);
      if (timedOut) return false;
    }
    return true;
  }

  /** How long a takeover waits for this session's request under way. */
  get resumeWaitMs(): number {
    return this.ctx.resumeWaitMs ?? DEFAULT_RESUME_WAIT_MS;
  }

  /**
   * Primary reconnect: this session continues on `conn`, whose own fresh session (`fresh`, the
   * one that just logged in and sent FPDisconnectOldSession) is dropped. The caller has already
   * cut the old connection and waited for the request under way.
   */
  async takeOver(conn: DsiConnection, fresh: AfpSession): Promise<void> {
    this.connection = conn;
    conn.setEndpoint(this);
    this.state = 'connected';
    this.resuming = false;
    this.ctx.sessions.reconnected(this);
    this.log.info({ remote: conn.remoteAddress, via: fresh.id }, 'primary reconnect: session resumed on a new connection');
    await fresh.end('replaced by the session it reconnected to');
  }

  /** A new session object on this session's connection, named `id` (a session being restored from the store). */
  sibling(id: string): AfpSession {
    return new AfpSession(this.connection, this.ctx, this.table, id);
  }

  /** Volume keys on which this session opened forks (its opens in the stores). */
  forkVolumeKeys(): string[] {
    return [...this.forkVolumes].map((v) => v.key);
  }

  /**
   * Ends the session for good: forks closed, opens and locks released, the record and its
   * token dropped. `cutConnection` also closes a connection still attached (lock stealing).
   */
  async end(why: string, cutConnection = false): Promise<void> {
    if (this.state === 'ended') return;
    const wasConnected = this.state === 'connected';
    this.state = 'ended';
    this.pendingLogin = null;
    if (cutConnection && wasConnected && this.connection.isOpen) this.connection.close('server-close');
    this.log.info({ why, user: this.user?.name, openForks: this.forks.size }, 'session ended');
    await this.releaseForks();
    await this.ctx.sessions.ended(this).catch((err: unknown) => this.log.warn({ err }, 'could not drop the session record'));
  }

  /**
   * Another node of the pair asks for this session, because its Mac reached that node (the
   * shared address moved while this node lives): this node lets go of it. The connection is
   * cut, the request under way is waited for (its reply goes to the replay cache), and every
   * open fork is synced, so the other node reads from the bucket what this node
   * acknowledged. The opens, deny modes and locks stay in the store for the other node to
   * adopt, and the record is rewritten to name it. False when the session cannot be let go
   * of (a request still running, a sync failing): it then waits here for a reconnect.
   */
  async handOff(to: string): Promise<boolean> {
    if (this.state === 'ended' || this.resuming || !this.recorded) return false;
    this.resuming = true;
    const wasConnected = this.state === 'connected';
    // Not 'connected' any more, so the close below does not end the session (see closed()).
    this.state = 'disconnected';
    if (wasConnected && this.connection.isOpen) this.connection.close('server-close');
    try {
      if (!(await this.idle(this.resumeWaitMs))) throw new Error('a request is still under way');
      await Promise.all([...this.forks.values()].map((f) => f.fork.sync()));
      await this.ctx.sessions.handedOver(this, to);
    } catch (err) {
      this.resuming = false;
      this.log.warn({ err, to }, 'could not hand the session over to another node; it waits here for a reconnect');
      if (!this.ctx.sessions.disconnected(this)) await this.end('hand-over failed');
      return false;
    }
    this.state = 'ended';
    for (const f of this.forks.values()) f.fork.leave();
    this.forks.clear();
    this.forkVolumes.clear();
    this.log.info({ to, user: this.user?.name }, 'session handed over to another node');
    return true;
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
    // A fork opened by a request still under way when the session ended is closed at once.
    if (this.state === 'ended') {
      await f.fork.close();
      throw new AfpError(kFPParamErr, 'the session ended while the fork was being opened');
    }
    this.forks.set(f.refnum, f);
    this.lastRefnum = f.refnum;
    if (!this.forkVolumes.has(f.volume)) {
      this.forkVolumes.add(f.volume);
      // The store record names the volumes holding this session's opens, so a process that
      // finds the session orphaned (after a crash) knows where to release them.
      // Best effort: the fork is open either way, and a failed open must not be reported for it.
      if (this.recorded) await this.persist().catch((err: unknown) => this.log.warn({ err }, 'could not update the session record'));
    }
  }

  /** Writes the session's record to the metadata store (behind its token). */
  async persist(): Promise<void> {
    if (this.state === 'ended' || this.user === null) return;
    this.recorded = true;
    this.replay.setBacking({ putReply: (e) => this.ctx.sessions.store.putReply(this.id, this.replay.window, e, this.ctx.sessions.recordTtlMs) });
    await this.ctx.sessions.save(this);
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
      // EIO is the stores failing (a sync that timed out, S3 or Redis down): the Mac is told
      // its data is not durable, which an admin must see without debug logging.
      // At most one such line a minute per session: a Mac retrying through an outage would
      // otherwise fill the log; the line counts the failures it stands for.
      if (err.reason === 'EIO') {
        this.storeFailures++;
        const now = Date.now();
        if (now - this.storeFailureLoggedAt >= STORE_FAILURE_LOG_MS) {
          this.log.warn({ cmd: commandName(cmd), err, failures: this.storeFailures }, 'the object or metadata store failed; the Mac was answered kFPMiscErr');
          this.storeFailureLoggedAt = now;
          this.storeFailures = 0;
        }
      } else this.log.debug({ cmd: commandName(cmd), err: err.message }, 'file-system error');
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

  /**
   * The connection ended. A session with a token whose connection dropped without
   * DSICloseSession (Wi-Fi gone, Mac asleep, the network cut) waits for its Mac to reconnect;
   * every other session ends now. A handed-over connection is a takeover under way.
   */
  closed(reason: DsiCloseReason): void {
    if (reason === 'handed-over' || this.state !== 'connected') return;
    this.pendingLogin = null;
    const mayReturn = (reason === 'peer-closed' || reason === 'timeout') && !this.loggedOut && this.user !== null;
    if (mayReturn && this.ctx.sessions.disconnected(this)) {
      this.state = 'disconnected';
      this.log.info({ reason, user: this.user?.name, openForks: this.forks.size }, 'connection lost; session kept for a reconnect');
      return;
    }
    // DSI calls this synchronously; the release runs on and reports its own failures.
    this.end(`connection ${reason}`).catch((err: unknown) => this.log.error({ err }, 'releasing the session failed'));
  }
}

function payloadBytes(payload: DsiReply['payload']): number {
  if (payload === undefined) return 0;
  if (Buffer.isBuffer(payload)) return payload.length;
  let n = 0;
  for (const b of payload) n += b.length;
  return n;
}
