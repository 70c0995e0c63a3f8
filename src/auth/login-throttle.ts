import { LRUCache } from 'lru-cache';

export interface LoginThrottleOptions {
  /** Failures from one address allowed before replies slow down. */
  freeFailures: number;
  maxDelayMs: number;
  /** Failures older than this are forgotten. */
  windowMs?: number;
  /** The clock; tests pass their own. */
  now?: () => number;
}

interface Entry {
  failures: number;
  last: number;
}

/**
 * Slows password guessing per source address: after the free failures every further
 * failure doubles the delay before the reply, up to a cap. Memory is bounded by an LRU.
 */
export class LoginThrottle {
  private readonly entries = new LRUCache<string, Entry>({ max: 10_000 });
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: LoginThrottleOptions) {
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** How long to hold the reply to a failed attempt from this address. */
  delayFor(address: string): number {
    const e = this.entries.get(address);
    if (!e || this.now() - e.last > this.windowMs) return 0;
    const over = e.failures - this.opts.freeFailures;
    if (over <= 0) return 0;
    return Math.min(this.opts.maxDelayMs, 250 * 2 ** Math.min(over - 1, 20));
  }

  failed(address: string): number {
    const now = this.now();
    const e = this.entries.get(address);
    const failures = e && now - e.last <= this.windowMs ? e.failures + 1 : 1;
    this.entries.set(address, { failures, last: now });
    return failures;
  }

  succeeded(address: string): void {
    this.entries.delete(address);
  }
}
