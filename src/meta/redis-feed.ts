/**
 * Pub/sub for the nodes of a pair: one subscriber connection per store, shared by every
 * channel someone listens to. Used for change notices (cache coherence, redis-namespace.ts)
 * and for hand-over requests between nodes (redis-sessions.ts).
 *
 * Pub/sub delivers at most once: messages published while the subscriber is away are lost.
 * So when the subscriber comes back (a Redis restart, a Sentinel failover), or a subscribe
 * fails, every listener hears `gap()` and must assume it missed something.
 */
import type { Redis } from 'ioredis';

export interface FeedListener {
  message(text: string): void;
  gap(): void;
}

export class RedisFeed {
  private sub: Redis | undefined;
  private readonly listeners = new Map<string, Set<FeedListener>>();
  private readyBefore = false;
  private closed = false;

  constructor(private readonly main: Redis) {}

  listen(channel: string, l: FeedListener): () => void {
    if (this.closed) return () => undefined;
    const sub = this.subscriber();
    let set = this.listeners.get(channel);
    if (!set) {
      this.listeners.set(channel, (set = new Set()));
      // Not subscribed (Redis away for longer than a call waits): ioredis subscribes again
      // when it reconnects, and says ready, which is a gap too.
      sub.subscribe(channel).catch(() => this.gapAll());
    }
    set.add(l);
    return () => {
      const s = this.listeners.get(channel);
      if (!s?.delete(l) || s.size > 0) return;
      this.listeners.delete(channel);
      // A failed unsubscribe only leaves messages nobody listens to.
      if (!this.closed) this.sub?.unsubscribe(channel).catch(() => undefined);
    };
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    if (this.sub && this.sub.status !== 'end') this.sub.disconnect();
  }

  private subscriber(): Redis {
    if (this.sub) return this.sub;
    // Same address, Sentinel and retry settings as the main connection; ioredis subscribes
    // the channels again after a reconnect.
    const sub = this.main.duplicate();
    // Connection errors come and go with outages; what they cost is reported through gap().
    sub.on('error', () => undefined);
    sub.on('ready', () => {
      if (this.readyBefore) this.gapAll();
      this.readyBefore = true;
    });
    sub.on('message', (channel: string, text: string) => {
      for (const l of this.listeners.get(channel) ?? []) l.message(text);
    });
    this.sub = sub;
    return sub;
  }

  private gapAll(): void {
    for (const set of this.listeners.values()) for (const l of set) l.gap();
  }
}
