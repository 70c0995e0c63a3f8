/**
 * Advertiser leadership: of the nodes of a pair, only the holder of the `advertiser` lease in
 * the metadata store answers Bonjour. Two advertisers for one server name would fight over
 * it (the later one renames itself "Name (2)") and hand Macs two ports for one server.
 *
 * Every node claims the lease every `intervalMs` (ttl / 3 by default): the holder's claim
 * renews it, anyone else's is refused while it is live and wins once it has lapsed. So:
 * - a node that stops gracefully says goodbye and releases the lease, and the other node
 *   takes it at its next claim (at most `intervalMs` later);
 * - a node that dies stops renewing, and the other node takes the lease at its first claim
 *   after the lease lapses (at most ttl + `intervalMs` after the last renewal);
 * - a node whose claim is refused (its lease lapsed and the other node took it) stops
 *   advertising, and so does a node that has not had a claim confirmed for a whole lease
 *   term (the store unreachable): by then the other node may hold the lease. Either way it
 *   keeps claiming, and advertises again when it holds the lease again.
 *
 * What to advertise is the caller's: `advertise()` makes a fresh advertiser each time the
 * lease is gained, so this layer knows nothing of Bonjour (the gateway composes the two).
 */
import { performance } from 'node:perf_hooks';
import type { MetaStore } from '../meta/meta-store.js';
import type { Logger } from '../ops/log.js';

export const ADVERTISER_LEASE = 'advertiser';

/** One run of advertising, from gaining the lease to losing it. */
export interface Advertising {
  /** Probes and announces. Not awaited; a rejection is logged. */
  start(): Promise<void>;
  /** Says goodbye and stops answering; awaited before the lease is released. */
  stop(): Promise<void>;
}

export interface AdvertiserLeaderOptions {
  /** The metadata store (only its named leases are used). */
  leases: Pick<MetaStore, 'claimLease' | 'releaseLease'>;
  /** This node's id: the lease's holder while this node advertises. */
  holder: string;
  ttlMs: number;
  /** How often to claim; default ttlMs / 3, so two claims may fail before the lease lapses. */
  intervalMs?: number;
  /** A new advertiser each time the lease is gained (a stopped advertiser cannot start again). */
  advertise(): Advertising;
  log: Logger;
  /** The lease's name; default `advertiser`. */
  lease?: string;
}

export class AdvertiserLeader {
  private readonly lease: string;
  private readonly intervalMs: number;
  private role: Advertising | null = null;
  /** performance.now() by which the lease may have lapsed: last confirmed claim's send time + ttl. */
  private confirmedUntil = 0;
  private expiryTimer: NodeJS.Timeout | null = null;
  private claimTimer: NodeJS.Timeout | null = null;
  private claiming: Promise<void> | null = null;
  /** Gaining and losing run one at a time, in order. Never rejects. */
  private transitions: Promise<void> = Promise.resolve();
  private started = false;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  /** Set while claims fail, so a long outage logs once rather than every claim. */
  private failing = false;

  constructor(private readonly opts: AdvertiserLeaderOptions) {
    if (!(Number.isSafeInteger(opts.ttlMs) && opts.ttlMs > 0)) throw new RangeError(`ttlMs must be a positive integer, got ${opts.ttlMs}`);
    this.lease = opts.lease ?? ADVERTISER_LEASE;
    this.intervalMs = opts.intervalMs ?? Math.max(1, Math.floor(opts.ttlMs / 3));
    if (!(this.intervalMs > 0 && this.intervalMs < opts.ttlMs)) throw new RangeError(`intervalMs must be above 0 and below ttlMs, got ${this.intervalMs}`);
  }

  /** True while this node holds the lease as far as it knows, and advertises. */
  get advertising(): boolean {
    return this.role !== null;
  }

  /** Claims at once, then every `intervalMs` until stop(). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.claimNow();
  }

  /**
   * Stops advertising (goodbyes), then releases the lease so the other node takes over at
   * its next claim. Never rejects; a lease that cannot be released lapses on its own.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.clearTimer('claimTimer');
      this.clearTimer('expiryTimer');
      await this.claiming;
      const held = this.role !== null;
      await this.transition(false, 'this node is stopping');
      try {
        await withTimeout(this.opts.leases.releaseLease(this.lease, this.opts.holder), this.opts.ttlMs);
        if (held) this.opts.log.info({ lease: this.lease, node: this.opts.holder }, 'released the advertiser lease; the other node takes over at its next claim');
      } catch (err) {
        this.opts.log.warn({ err, lease: this.lease }, 'could not release the advertiser lease; the other node takes over when it lapses');
      }
    })();
    return this.stopping;
  }

  private claimNow(): void {
    this.claiming = this.claim()
      .catch((err: unknown) => this.opts.log.error({ err }, 'advertiser lease: unexpected failure; claiming again'))
      .finally(() => {
        this.claiming = null;
        if (this.stopped) return;
        this.claimTimer = setTimeout(() => this.claimNow(), this.intervalMs);
        this.claimTimer.unref();
      });
  }

  private async claim(): Promise<void> {
    const sent = performance.now();
    let held: boolean;
    try {
      // A claim that hangs (a partitioned store) must not stop the next one; the lease is
      // judged lost by the expiry timer, not by this wait.
      held = await withTimeout(this.opts.leases.claimLease(this.lease, this.opts.holder, this.opts.ttlMs), this.opts.ttlMs);
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.opts.log.warn(
          { err, lease: this.lease, advertising: this.advertising },
          this.advertising
            ? 'cannot renew the advertiser lease; Bonjour stops if no renewal succeeds within the lease term'
            : 'cannot claim the advertiser lease; retrying',
        );
      }
      return;
    }
    if (this.failing) {
      this.failing = false;
      this.opts.log.info({ lease: this.lease }, 'advertiser lease: the metadata store answers again');
    }
    if (this.stopped) return;
    if (held) {
      // The store started the lease's term after we sent the claim, so it lapses no earlier than this.
      this.confirmedUntil = sent + this.opts.ttlMs;
      this.armExpiry();
      await this.transition(true, 'gained the advertiser lease');
    } else {
      this.clearTimer('expiryTimer');
      await this.transition(false, 'another node holds the advertiser lease');
    }
  }

  /** Stops advertising when a lease term passes without a confirmed claim. */
  private armExpiry(): void {
    this.clearTimer('expiryTimer');
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      void this.transition(false, 'no claim confirmed within the lease term (metadata store unreachable); the other node may hold the lease');
    }, Math.max(0, this.confirmedUntil - performance.now()));
    this.expiryTimer.unref();
  }

  private clearTimer(which: 'claimTimer' | 'expiryTimer'): void {
    const t = this[which];
    if (t) clearTimeout(t);
    this[which] = null;
  }

  private transition(advertise: boolean, why: string): Promise<void> {
    this.transitions = this.transitions
      .then(() => (advertise ? this.gain(why) : this.lose(why)))
      .catch((err: unknown) => this.opts.log.error({ err }, 'advertiser lease: unexpected failure while switching Bonjour'));
    return this.transitions;
  }

  private async gain(why: string): Promise<void> {
    if (this.role || this.stopped) return;
    let role: Advertising;
    try {
      role = this.opts.advertise();
    } catch (err) {
      // Still holding the lease: the next claim renews it and tries again.
      this.opts.log.error({ err, lease: this.lease }, 'holding the advertiser lease but cannot start advertising');
      return;
    }
    this.role = role;
    this.opts.log.info({ lease: this.lease, node: this.opts.holder, why }, 'holding the advertiser lease: advertising over Bonjour');
    Promise.resolve()
      .then(() => role.start())
      .catch((err: unknown) => this.opts.log.warn({ err }, 'Bonjour advertising failed'));
  }

  private async lose(why: string): Promise<void> {
    const role = this.role;
    if (!role) return;
    this.role = null;
    const level = this.stopped ? 'info' : 'warn';
    this.opts.log[level]({ lease: this.lease, node: this.opts.holder, why }, 'not holding the advertiser lease: Bonjour says goodbye and stops answering');
    try {
      await role.stop();
    } catch (err) {
      this.opts.log.warn({ err }, 'Bonjour goodbye failed');
    }
  }
}

/** Rejects after `ms` unless `p` settles first; a later rejection of `p` is swallowed. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the metadata store within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
