/**
 * What the control socket (src/ops/control-server.ts) does on this node: list and end
 * sessions, flush the cache, run garbage collection. Built at the composition root because
 * it reaches the sessions, the cache and the volumes at once.
 */
import type { AfpServerContext } from './afp/context.js';
import { AfpSession } from './afp/session.js';
import type { BandCache } from './blocks/band-cache.js';
import type { DsiServer } from './dsi/server.js';
import type { ControlEndpoints, FlushEvent, SessionSummary } from './ops/control-server.js';
import type { Logger } from './ops/log.js';
import type { VolumeSet } from './volume/volume-set.js';

export interface ControlParts {
  ctx: AfpServerContext;
  server: DsiServer;
  volumes: VolumeSet;
  cache: BandCache;
  log: Logger;
}

/** Every session of the node: those on a connection (logged in), then those waiting for their Mac. */
export function nodeSessions(server: DsiServer, ctx: AfpServerContext): AfpSession[] {
  const out: AfpSession[] = [];
  for (const conn of server.allConnections()) {
    const s = conn.currentEndpoint;
    if (s instanceof AfpSession && s.user !== null && s.state === 'connected') out.push(s);
  }
  return [...out, ...ctx.sessions.waiting()];
}

export function summarize(s: AfpSession): SessionSummary {
  return {
    id: s.id,
    user: s.user?.name ?? '',
    address: s.remoteAddress,
    since: s.createdAt,
    state: s.state === 'connected' ? 'connected' : 'disconnected',
    volumes: [...s.openVolumes.values()].map((v) => v.name),
    openForks: s.forks.size,
  };
}

export function gatewayControl(p: ControlParts): ControlEndpoints {
  return {
    sessions: async () => nodeSessions(p.server, p.ctx).map(summarize),
    endSession: async (id) => {
      const s = nodeSessions(p.server, p.ctx).find((x) => x.id === id);
      if (!s) return false;
      s.log.info('ended by the operator (afp-gateway sessions --kill)');
      await s.end('ended by the operator', true);
      return true;
    },
    flushCache: async (timeoutMs, progress, abandoned) => {
      const started = Date.now();
      const deadline = started + timeoutMs;
      const totalBytes = p.cache.dirtyTotal;
      let doneBytes = 0;
      const report = (): FlushEvent => ({ type: 'progress', totalBytes, doneBytes, dirtyBytes: p.cache.dirtyTotal });
      p.log.info({ dirtyBytes: totalBytes }, 'cache flush requested');
      progress(report());
      const results = await Promise.allSettled(
        p.volumes.all().map((v) =>
          v.data.syncAll(
            deadline,
            (bytes) => {
              doneBytes += bytes;
              progress(report());
            },
            abandoned,
          ),
        ),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        const message = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
        p.log.warn({ err: failed.reason, doneBytes }, 'cache flush did not finish');
        return { type: 'error', message, doneBytes, dirtyBytes: p.cache.dirtyTotal };
      }
      const seconds = (Date.now() - started) / 1000;
      p.log.info({ bytes: doneBytes, seconds }, 'cache flushed');
      return { type: 'done', totalBytes, doneBytes, dirtyBytes: p.cache.dirtyTotal, seconds };
    },
    collectGarbage: async () => {
      const r = await p.volumes.collectGarbage();
      p.log.info({ volumes: r }, 'garbage collection run by the operator');
      return r;
    },
  };
}
