import { randomBytes } from 'node:crypto';
import type { SessionRecord, SessionStore } from '../meta/sessions.js';
import { userKey } from '../meta/meta-store.js';
import type { Logger } from '../ops/log.js';
import type { Volume } from '../volume/volume.js';
import type { AfpSession } from './session.js';

export interface SessionRegistryOptions {
  store: SessionStore;
  nodeId: string;
  /** How long a session whose connection dropped is kept for a primary reconnect (0: not at all). */
  disconnectedMs: number;
  /** At most this many sessions wait for a reconnect; beyond it the one waiting longest ends. */
  maxDisconnected: number;
  /** The volume whose store holds a session's opens, by volume key. */
  volumeByKey(key: string): Volume | undefined;
  /** The nodes whose lease is live; a record of any other node belongs to a dead process. */
  liveNodes(): Promise<Set<string>>;
  /** How long a node's lease runs unrenewed: the longest a dead node still looks alive. */
  leaseMs: number;
  log: Logger;
}

const LAPSE_SLACK_MS = 2000;
const LAPSE_POLL_MS = 250;
const HANDOVER_POLL_MS = 50;
/** How long lock stealing waits for another node to end a session it was asked to end. */
const STEAL_WAIT_MS = 5000;
/** Live records are re-touched this often relative to their time to live. */
const REFRESH_FRACTION = 3;
/** A live session's record outlives a crash of this node by at least this much, so a Mac can still come back. */
const MIN_LIVE_TTL_MS = 10 * 60_000;

/**
 * The AFP sessions of this node that can be reconnected to or stolen from, and their records
 * in the metadata store (behind the session tokens). A session joins when it gets a token or
 * opens a Time Machine volume; it stays through a dropped connection for `disconnectedMs`,
 * waiting for its Mac's FPDisconnectOldSession, and leaves when it ends.
 */
export class SessionRegistry {
  private readonly live = new Map<string, AfpSession>();
  private readonly byToken = new Map<string, AfpSession>();
  private readonly expiry = new Map<string, NodeJS.Timeout>();
  private readonly refresher: NodeJS.Timeout;
  private closed = false;

  private readonly unwatch: (() => void) | undefined;

  constructor(private readonly opts: SessionRegistryOptions) {
    this.refresher = setInterval(() => void this.refresh(), this.recordTtlMs / REFRESH_FRACTION);
    this.refresher.unref();
    this.unwatch = opts.store.watchReleases?.(opts.nodeId, (id, to) => void this.release(id, to));
  }

  /** Another node asks for one of our sessions: hand it over, or end it (lock stealing there). */
  private async release(id: string, to: string | undefined): Promise<void> {
    const s = this.live.get(id);
    if (!s || s.state === 'ended') return;
    if (to === undefined) {
      s.log.info('lock steal on another node: ending this session');
      await s.end('lock stolen by a new session of the same user on another node', true).catch((err: unknown) => s.log.warn({ err }, 'ending the session failed'));
      return;
    }
    await s.handOff(to);
  }

  /**
   * Asks `rec.node`, which holds the session and is alive, to let go of it for this node, and
   * waits until the record names this node. If that node dies meanwhile, waits for its lease
   * to lapse instead. Returns the record to restore from, or undefined (the session ended,
   * or its node neither answered nor died in time).
   */
  async acquire(rec: SessionRecord, waitMs: number): Promise<SessionRecord | undefined> {
    if (!(await this.opts.liveNodes()).has(rec.node)) return rec;
    if (!this.opts.store.requestRelease) return (await this.waitForLapse(rec.node)) ? rec : undefined;
    await this.opts.store.requestRelease(rec.node, rec.id, this.opts.nodeId);
    const deadline = Date.now() + Math.max(waitMs, this.opts.leaseMs + LAPSE_SLACK_MS);
    for (;;) {
      const now = await this.opts.store.session(rec.id);
      if (!now) return undefined;
      if (now.node === this.opts.nodeId) return now;
      if (!(await this.opts.liveNodes()).has(now.node)) return now;
      if (Date.now() >= deadline) return undefined;
      await new Promise((r) => setTimeout(r, HANDOVER_POLL_MS));
    }
  }

  /** The session went to node `to`: forget it here; its record now names `to`. */
  async handedOver(s: AfpSession, to: string): Promise<void> {
    await this.opts.store.putSession({ ...this.record(s), node: to }, this.recordTtlMs);
    this.clearExpiry(s.id);
    if (this.live.get(s.id) === s) this.live.delete(s.id);
    if (s.token && this.byToken.get(s.token) === s) this.byToken.delete(s.token);
  }

  /** How long a record lives unless touched: a connected session's is refreshed well before. */
  get recordTtlMs(): number {
    return Math.max(this.opts.disconnectedMs, MIN_LIVE_TTL_MS);
  }

  get store(): SessionStore {
    return this.opts.store;
  }

  /** Sessions of this node that are waiting for their Mac to come back. */
  get disconnectedCount(): number {
    return this.expiry.size;
  }

  /** Sessions of this node whose Mac has not come back yet (the ops endpoint lists them). */
  waiting(): AfpSession[] {
    return [...this.live.values()].filter((s) => s.state === 'disconnected');
  }

  /** The session holding `token` on this node, if any. */
  local(token: string): AfpSession | undefined {
    return this.byToken.get(token);
  }

  /** A new opaque token: 16 random bytes, so no client can guess another's. */
  newToken(): string {
    return randomBytes(16).toString('hex');
  }

  /** Writes the session's record (token, client identity, volumes) to the store. */
  async save(s: AfpSession): Promise<void> {
    if (!s.user || s.state === 'ended') return;
    this.live.set(s.id, s);
    if (s.token) this.byToken.set(s.token, s);
    await this.opts.store.putSession(this.record(s), this.recordTtlMs);
  }

  private record(s: AfpSession): SessionRecord {
    return {
      id: s.id,
      node: this.opts.nodeId,
      user: userKey(s.user!.name),
      uid: s.user!.uid,
      token: s.token,
      clientId: s.clientId,
      timestamp: s.clientTimestamp,
      volumes: [...s.openVolumes.values()].map((v) => v.key),
      tmVolumes: [...s.openVolumes.values()].filter((v) => v.def.timeMachine).map((v) => v.key),
      forkVolumes: s.forkVolumeKeys(),
      createdAt: s.createdAt,
    };
  }

  /**
   * The connection of a session with a token dropped without DSICloseSession: keep its forks,
   * locks and replay cache for `disconnectedMs`. False when it cannot be kept (no token, the
   * feature is off, the node is stopping): the caller ends it.
   */
  disconnected(s: AfpSession): boolean {
    if (this.closed || !s.token || this.opts.disconnectedMs <= 0 || !this.live.has(s.id)) return false;
    this.clearExpiry(s.id);
    // Macs that drop and log in afresh each time would otherwise pile up sessions and their opens.
    while (this.expiry.size >= this.opts.maxDisconnected) {
      const oldest = this.expiry.keys().next().value as string;
      this.clearExpiry(oldest);
      const victim = this.live.get(oldest);
      victim?.log.info('too many disconnected sessions: the one waiting longest ends');
      void victim?.end('too many disconnected sessions');
    }
    const timer = setTimeout(() => {
      this.expiry.delete(s.id);
      s.log.info('disconnected session expired');
      void s.end('disconnected session expired');
    }, this.opts.disconnectedMs);
    timer.unref();
    this.expiry.set(s.id, timer);
    this.opts.store.touchSession(s.id, this.opts.disconnectedMs).catch((err: unknown) => s.log.warn({ err }, 'could not extend the session record'));
    return true;
  }

  /** The session is attached to a connection again (primary reconnect). */
  reconnected(s: AfpSession): void {
    this.clearExpiry(s.id);
    this.opts.store.touchSession(s.id, this.recordTtlMs).catch((err: unknown) => s.log.warn({ err }, 'could not extend the session record'));
  }

  /** The session is gone for good: its record, token and replay cache go with it. */
  async ended(s: AfpSession): Promise<void> {
    this.clearExpiry(s.id);
    if (this.live.get(s.id) === s) this.live.delete(s.id);
    if (s.token && this.byToken.get(s.token) === s) this.byToken.delete(s.token);
    if (s.token || s.recorded) await this.opts.store.dropSession(s.id);
  }

  /**
   * Time Machine lock stealing, run when `caller` presents its client identity
   * (FPGetSessionToken types 3–6). Ends every other session of the same user that either
   * came from the same client with a different timestamp (the Mac restarted) or holds a Time
   * Machine volume open (Apple's rule: its deny modes would keep the backup out). A session
   * being resumed by FPDisconnectOldSession is spared. Sessions of this node are ended here;
   * records left by a dead process (a crash, or a node whose lease lapsed) have their opens
   * released in the store. Returns how many sessions were ended.
   */
  async stealFor(caller: AfpSession): Promise<number> {
    const user = userKey(caller.user!.name);
    const victim = (r: { id: string; clientId: string; timestamp: number | null; tmVolumes: readonly string[] }): boolean =>
      r.id !== caller.id && ((caller.clientId !== '' && r.clientId === caller.clientId && r.timestamp !== caller.clientTimestamp) || r.tmVolumes.length > 0);
    let ended = 0;
    for (const s of [...this.live.values()]) {
      if (s === caller || s.resuming || s.state === 'ended' || userKey(s.user?.name ?? '') !== user) continue;
      if (!victim({ id: s.id, clientId: s.clientId, timestamp: s.clientTimestamp, tmVolumes: this.record(s).tmVolumes })) continue;
      caller.log.info({ victim: s.id, state: s.state }, 'lock steal: ending an earlier session of this user');
      await s.end('lock stolen by a new session of the same user', true);
      ended++;
    }
    const records = await this.opts.store.sessionsOfUser(user);
    const foreign = records.filter((r) => r.node !== this.opts.nodeId && victim(r));
    if (foreign.length === 0) return ended;
    const live = await this.opts.liveNodes();
    for (const r of foreign) {
      if (live.has(r.node)) {
        if (await this.endElsewhere(r)) ended++;
        else caller.log.warn({ victim: r.id, node: r.node }, 'lock steal: the live node holding the session did not end it');
        continue;
      }
      let released = 0;
      for (const key of r.forkVolumes) released += (await this.opts.volumeByKey(key)?.forkStore.releaseSession(r.id)) ?? 0;
      await this.opts.store.dropSession(r.id);
      caller.log.info({ victim: r.id, node: r.node, released }, 'lock steal: released the opens of a session left by a dead process');
      ended++;
    }
    return ended;
  }

  /** Asks the live node holding `r` to end it; true once its record is gone. */
  private async endElsewhere(r: SessionRecord): Promise<boolean> {
    if (!this.opts.store.requestRelease) return false;
    await this.opts.store.requestRelease(r.node, r.id, undefined);
    const deadline = Date.now() + STEAL_WAIT_MS;
    while (Date.now() < deadline) {
      if (!(await this.opts.store.session(r.id))) return true;
      await new Promise((res) => setTimeout(res, HANDOVER_POLL_MS));
    }
    return false;
  }

  /**
   * Waits until `node` no longer holds a lease, at most one lease term (plus a little): a Mac
   * whose gateway died often reconnects to the other one before the dead node's lease lapses.
   * False when the node is still alive by then. The Mac is kept waiting meanwhile; DSI tickles
   * it, since its request is outstanding.
   */
  async waitForLapse(node: string): Promise<boolean> {
    const deadline = Date.now() + this.opts.leaseMs + LAPSE_SLACK_MS;
    for (;;) {
      if (!(await this.opts.liveNodes()).has(node)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, LAPSE_POLL_MS));
    }
  }

  /** Ends every session still waiting for a reconnect (the node is stopping). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.refresher);
    this.unwatch?.();
    const waiting = [...this.live.values()].filter((s) => s.state === 'disconnected');
    await Promise.allSettled(waiting.map((s) => s.end('node stopping')));
  }

  private clearExpiry(id: string): void {
    const t = this.expiry.get(id);
    if (t) clearTimeout(t);
    this.expiry.delete(id);
  }

  /** Keeps the records of connected sessions from expiring while they live. */
  private async refresh(): Promise<void> {
    for (const s of this.live.values()) {
      if (s.state !== 'connected') continue;
      await this.opts.store.touchSession(s.id, this.recordTtlMs).catch((err: unknown) => s.log.warn({ err }, 'could not refresh the session record'));
    }
  }
}
