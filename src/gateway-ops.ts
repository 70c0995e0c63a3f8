/**
 * What the gateway tells its operators: the Prometheus metrics and the health and readiness
 * checks served by src/ops/http-server.ts. Built at the composition root, because it reads
 * every layer (sessions, the cache, the upload pipeline, the stores) and no layer below may
 * know the others.
 */
import type { AfpServerContext } from './afp/context.js';
import type { BandCache } from './blocks/band-cache.js';
import type { UploadPipeline } from './blocks/upload-pipeline.js';
import type { DsiServer } from './dsi/server.js';
import type { MetaStore } from './meta/meta-store.js';
import { AfpSession } from './afp/session.js';
import type { VolumeSet } from './volume/volume-set.js';
import type { StatusReport } from './ops/status-page.js';
import type { ObjectCallObserver } from './objects/measured-store.js';
import type { CheckResult, OpsEndpoints } from './ops/http-server.js';
import { MetricsRegistry } from './ops/metrics.js';

export interface GatewayParts {
  ctx: AfpServerContext;
  volumes: VolumeSet;
  serverName: string;
  version: string;
  startedAt: number;
  cacheSizeBytes: number;
  server: DsiServer;
  meta: MetaStore;
  cache: BandCache;
  uploads: UploadPipeline;
  /** The object store's observer, which this sets. */
  objectCalls: ObjectCallObserver;
  nodeId: string;
}

const IN = { direction: 'in' } as const;
const OUT = { direction: 'out' } as const;

/** The status page's upload chart: a sample every 10 s, ten minutes of them. */
const THROUGHPUT_INTERVAL_MS = 10_000;
const THROUGHPUT_SAMPLES = 60;

/** How long a readiness probe waits for the metadata store. */
const READY_TIMEOUT_MS = 2000;

export function gatewayOps(p: GatewayParts): OpsEndpoints & { registry: MetricsRegistry; close(): void } {
  const registry = new MetricsRegistry();
  const commands = registry.counter('afpgw_afp_commands_total', 'AFP commands run, by command and result code.');
  const latency = registry.histogram('afpgw_afp_command_seconds', 'Time to run an AFP command, by command (from its request to its reply).');
  p.ctx.observeCommand = (command, result, seconds, bytesIn, bytesOut) => {
    commands.inc({ command, result });
    latency.observe({ command }, seconds);
    afpBytes.inc(IN, bytesIn);
    afpBytes.inc(OUT, bytesOut);
  };
  const afpBytes = registry.counter('afpgw_afp_bytes_total', 'AFP payload bytes, by direction (in: requests, out: replies).');
  const objectRequests = registry.counter('afpgw_object_requests_total', 'Object store (S3) requests, by operation and outcome (ok, or the error).');
  const objectSeconds = registry.histogram('afpgw_object_request_seconds', 'Object store (S3) request time, by operation.');
  const objectBytes = registry.counter('afpgw_object_bytes_total', 'Object store bytes, by direction (out: PUT, in: GET).');
  let putBytes = 0;
  p.objectCalls.observe = (op, outcome, seconds, bytes) => {
    if (op === 'put') putBytes += bytes;
    objectRequests.inc({ op, outcome });
    objectSeconds.observe({ op }, seconds);
    if (bytes > 0) objectBytes.inc({ direction: op === 'put' ? 'out' : 'in' }, bytes);
  };
  registry.gauge('afpgw_connections', 'DSI connections open now.', () => [{ value: p.server.connectionCount }]);
  registry.gauge('afpgw_sessions_disconnected', 'Sessions whose connection dropped, waiting for their Mac to reconnect.', () => [{ value: p.ctx.sessions.disconnectedCount }]);
  registry.gauge('afpgw_cache_dirty_bytes', 'Bytes in the cache not yet in the object store (whole blocks).', () => [{ value: p.cache.dirtyTotal }]);
  registry.gauge('afpgw_cache_dirty_limit_bytes', 'Dirty bytes at which writers wait for uploads.', () => [{ value: p.cache.dirtyLimit }]);
  registry.gauge('afpgw_cache_clean_bytes', 'Bytes of clean blocks in the cache.', () => [{ value: p.cache.cleanBytes }]);
  registry.gauge('afpgw_upload_queue_depth', 'Blocks queued for upload or being uploaded.', () => [{ value: p.uploads.depth }]);
  registry.gauge('afpgw_uploads_total', 'Block upload runs since start, by outcome (a failed run is retried).', () => [
    { labels: { outcome: 'done' }, value: p.uploads.stats.done },
    { labels: { outcome: 'failed' }, value: p.uploads.stats.failed },
  ]);
  registry.gauge('afpgw_up', 'The node serves AFP (1) or is stopping (0).', () => [{ labels: { node: p.nodeId }, value: p.ctx.shuttingDown ? 0 : 1 }]);

  // The upload rate over the last minutes, for the status page's chart.
  const throughput: StatusReport['throughput'] = [];
  let lastSample = { at: Date.now(), bytes: 0 };
  const sampler = setInterval(() => {
    const now = { at: Date.now(), bytes: putBytes };
    throughput.push({ at: now.at, bytesPerSecond: ((now.bytes - lastSample.bytes) * 1000) / Math.max(1, now.at - lastSample.at) });
    if (throughput.length > THROUGHPUT_SAMPLES) throughput.shift();
    lastSample = now;
  }, THROUGHPUT_INTERVAL_MS);
  sampler.unref();

  const status = async (): Promise<StatusReport> => {
    const sessions: StatusReport['sessions'] = [];
    for (const conn of p.server.allConnections()) {
      const s = conn.currentEndpoint;
      if (!(s instanceof AfpSession) || s.user === null || s.state !== 'connected') continue;
      sessions.push({ id: s.id, user: s.user.name, address: conn.remoteAddress, since: s.createdAt, volumes: [...s.openVolumes.values()].map((v) => v.name), openForks: s.forks.size });
    }
    const volumes = await Promise.all(
      p.volumes.all().map(async (v) => ({ name: v.name, usedBytes: await v.usedBytes(), limitBytes: v.def.sizeLimit ?? null, timeMachine: v.def.timeMachine })),
    );
    return {
      node: p.nodeId,
      version: p.version,
      serverName: p.serverName,
      startedAt: p.startedAt,
      now: Date.now(),
      sessions,
      disconnected: p.ctx.sessions.disconnectedCount,
      volumes,
      cache: { sizeBytes: p.cacheSizeBytes, cleanBytes: p.cache.cleanBytes, dirtyBytes: p.cache.dirtyTotal, dirtyLimitBytes: p.cache.dirtyLimit },
      uploads: { queued: p.uploads.depth, done: p.uploads.stats.done, failed: p.uploads.stats.failed },
      throughput: [...throughput],
    };
  };

  return {
    registry,
    close: () => clearInterval(sampler),
    status,
    metrics: () => registry.render(),
    health: async (): Promise<CheckResult> => {
      const stopping = p.ctx.shuttingDown;
      return { ok: !stopping, checks: { afp: stopping ? 'stopping' : 'ok' } };
    },
    ready: async (): Promise<CheckResult> => {
      const checks: Record<string, string> = { afp: p.ctx.shuttingDown ? 'stopping' : 'ok' };
      checks.metadata = await within(READY_TIMEOUT_MS, p.meta.listNodes()).then(
        (nodes) => (nodes.some((n) => n.id === p.nodeId) ? 'ok' : 'this node holds no lease'),
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      return { ok: Object.values(checks).every((c) => c === 'ok'), checks };
    },
  };
}

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}
