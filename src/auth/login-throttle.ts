import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';

export interface LoginThrottleOptions {
  /** Failures allowed before logins slow down. */
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
 * Slows password guessing. Failures are counted per source address (IPv6 per /64, which
 * one host can fill) and per user name; after the free failures, each further one doubles
 * the delay, up to a cap. The delay is served before every login attempt is checked, so
 * dropping a slow reply gains nothing, and only a success of that same user clears its
 * count: logging in to one's own account does not reset the address's. Memory is bounded.
 */
export class LoginThrottle {
  private readonly entries = new LRUCache<string, Entry>({ max: 10_000 });
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: LoginThrottleOptions) {
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** How long to wait before checking a login of `user` from `address`. */
  delayFor(address: string, user = ''): number {
    return Math.max(this.delayOf(addressKey(address)), user ? this.delayOf(userKeyOf(user)) : 0);
  }

  failed(address: string, user = ''): void {
    this.bump(addressKey(address));
    if (user) this.bump(userKeyOf(user));
  }

  succeeded(user: string): void {
    if (user) this.entries.delete(userKeyOf(user));
  }

  private delayOf(key: string): number {
    const e = this.entries.get(key);
    if (!e || this.now() - e.last > this.windowMs) return 0;
    const over = e.failures - this.opts.freeFailures;
    if (over <= 0) return 0;
    return Math.min(this.opts.maxDelayMs, 250 * 2 ** Math.min(over - 1, 20));
  }

  private bump(key: string): void {
    const now = this.now();
    const e = this.entries.get(key);
    const failures = e && now - e.last <= this.windowMs ? e.failures + 1 : 1;
    this.entries.set(key, { failures, last: now });
  }
}

function addressKey(address: string): string {
  if (address.startsWith('::ffff:')) return `a:${address.slice(7)}`;
  if (!isIPv6(address)) return `a:${address}`;
  const full = expand(address);
  return `a:${full.slice(0, 4).join(':')}::/64`;
}

function expand(v6: string): string[] {
  const [head, tail] = v6.includes('::') ? v6.split('::') : [v6, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
}

function userKeyOf(user: string): string {
  return `u:${user.normalize('NFC').toLowerCase()}`;
}
