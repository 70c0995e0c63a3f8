import type { SessionStore } from '../meta/sessions.js';
import type { Logger } from '../ops/log.js';
import type { Volume } from '../volume/volume.js';

export interface LeaseReaperOptions {
  nodeId: string;
  volumes(): Volume[];
  sessions: SessionStore;
  /** The nodes whose lease is live. */
  liveNodes(): Promise<Set<string>>;
  /**
   * How long a node must have been without a lease before its opens go: a node that only
   * missed a renewal (a stalled process, a Redis failover) gets its lease back in time.
   */
  graceMs: number;
  intervalMs: number;
  log: Logger;
  now?: () => number;
}

/**
 * Releases the opens, deny modes and locks that dead nodes left in the fork stores. A dead
 * node's session that has a record (a session token) may still be resumed by its Mac on
 * this node (FPDisconnectOldSession restores it with its opens), so its opens stay until the
 * record expires or a lock steal ends it; a session without one can never come back, and
 * its opens go once the node has been dead for `graceMs`.
 */
export class LeaseReaper {
  /** When each node was first seen holding opens without a lease. */
  private readonly deadSince = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(private readonly opts: LeaseReaperOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.reapOnce().catch((err: unknown) => this.opts.log.warn({ err }, 'releasing the opens of dead nodes failed; retrying'));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One pass over every volume; returns how many opens were released. */
  reapOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<number> {
    const now = (this.opts.now ?? Date.now)();
    const live = await this.opts.liveNodes();
    live.add(this.opts.nodeId);
    let released = 0;
    const seenDead = new Set<string>();
    for (const v of this.opts.volumes()) {
      for (const node of await v.forkStore.nodes()) {
        if (live.has(node)) continue;
        seenDead.add(node);
        const since = this.deadSince.get(node) ?? now;
        this.deadSince.set(node, since);
        if (now - since < this.opts.graceMs) continue;
        for (const session of await v.forkStore.sessionsOfNode(node)) {
          if (await this.opts.sessions.session(session)) continue; // its Mac may still come back for it
          const n = await v.forkStore.releaseSession(session);
          released += n;
          this.opts.log.info({ node, session, volume: v.name, released: n }, 'released the opens of a session whose node died');
        }
      }
    }
    for (const node of [...this.deadSince.keys()]) if (!seenDead.has(node)) this.deadSince.delete(node);
    return released;
  }
}
