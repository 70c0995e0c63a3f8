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
import type { MetaCallObserver } from './meta/call-observer.js';
import type { SyncObserver } from './volume/sync-observer.js';
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
  /** The metadata store's observer, which this sets (absent: the store was opened unmeasured). */
  metaCalls?: MetaCallObserver;
  /** The volumes' sync observer, which this sets. */
  syncs: SyncObserver;
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
  const commands = registry.counter('afpgw_afp_commands_total', 'AFP commands run, by command and result code.', ['command', 'result']);
  const latency = registry.histogram('afpgw_afp_command_seconds', 'Time to run an AFP command, by command (from its request to its reply).', undefined, ['command']);
  p.ctx.observeCommand = (command, result, seconds, bytesIn, bytesOut) => {
    commands.inc({ command, result });
    latency.observe({ command }, seconds);
    afpBytes.inc(IN, bytesIn);
    afpBytes.inc(OUT, bytesOut);
  };
  const afpBytes = registry.counter('afpgw_afp_bytes_total', 'AFP payload bytes, by direction (in: requests, out: replies).', ['direction']);
  const objectRequests = registry.counter('afpgw_object_requests_total', 'Object store (S3) requests, by operation and outcome (ok, or the error).', ['op', 'outcome']);
  const objectSeconds = registry.histogram('afpgw_object_request_seconds', 'Object store (S3) request time, by operation.', undefined, ['op']);
  const objectBytes = registry.counter('afpgw_object_bytes_total', 'Object store bytes, by direction (out: PUT, in: GET).', ['direction']);
  let putBytes = 0;
  p.objectCalls.observe = (op, outcome, seconds, bytes) => {
    if (op === 'put') putBytes += bytes;
    objectRequests.inc({ op, outcome });
    objectSeconds.observe({ op }, seconds);
    if (bytes > 0) objectBytes.inc({ direction: op === 'put' ? 'out' : 'in' }, bytes);
  };
  if (p.metaCalls) {
    const metaRequests = registry.counter('afpgw_metadata_requests_total', 'Metadata store calls, by operation (a Redis command or script; an embedded-store write or sync) and outcome (ok, or the error).', ['op', 'outcome']);
    const metaSeconds = registry.histogram('afpgw_metadata_request_seconds', 'Metadata store call time, by operation.', undefined, ['op']);
    p.metaCalls.observe = (op, outcome, seconds) => {
      metaRequests.inc({ op, outcome });
      metaSeconds.observe({ op }, seconds);
    };
  }
  const syncSeconds = registry.histogram('afpgw_sync_seconds', 'Time an FPSyncFork (kind fork) or FPSyncDir (kind dir) took to put the written bytes in the object store and commit the metadata; successful syncs.', undefined, ['kind']);
  const syncFailures = registry.counter('afpgw_sync_failures_total', 'Syncs that failed, by kind and reason (EIO: a store failed or was too slow).', ['kind', 'reason']);
  p.syncs.observe = (kind, outcome, seconds) => {
    if (outcome === 'ok') syncSeconds.observe({ kind }, seconds);
    else syncFailures.inc({ kind, reason: outcome });
  };
  registry.gauge('afpgw_connections', 'DSI connections open now.', () => [{ value: p.server.connectionCount }]);
  registry.gauge('afpgw_sessions', 'Logged-in AFP sessions, by state (disconnected: waiting for their Mac to reconnect).', () => [
    { labels: { state: 'connected' }, value: connectedSessions().length },
    { labels: { state: 'disconnected' }, value: p.ctx.sessions.disconnectedCount },
  ]);
  registry.gauge('afpgw_cache_bytes', 'Bytes the cache holds, clean and dirty (dirty ones counted in whole blocks).', () => [{ value: p.cache.cleanBytes + p.cache.dirtyTotal }]);
  registry.gauge('afpgw_cache_size_bytes', 'The configured cache size (cache.size).', () => [{ value: p.cacheSizeBytes }]);
  registry.gauge('afpgw_cache_dirty_bytes', 'Bytes in the cache not yet in the object store (whole blocks).', () => [{ value: p.cache.dirtyTotal }]);
  registry.gauge('afpgw_cache_dirty_limit_bytes', 'Dirty bytes at which writers wait for uploads.', () => [{ value: p.cache.dirtyLimit }]);
  registry.gauge('afpgw_cache_clean_bytes', 'Bytes of clean blocks in the cache.', () => [{ value: p.cache.cleanBytes }]);
  registry.counterFrom('afpgw_cache_reads_total', 'Block reads, by result (hit: served from the cache; miss: fetched from the object store).', () => {
    const r = cacheReads();
    return [
      { labels: { result: 'hit' }, value: r.hits },
      { labels: { result: 'miss' }, value: r.misses },
    ];
  });
  registry.gauge('afpgw_upload_queue_depth', 'Blocks queued for upload or being uploaded.', () => [{ value: p.uploads.depth }]);
  registry.counterFrom('afpgw_uploads_total', 'Block upload runs since start, by outcome (a failed run is retried).', () => [
    { labels: { outcome: 'done' }, value: p.uploads.stats.done },
    { labels: { outcome: 'failed' }, value: p.uploads.stats.failed },
  ]);
  registry.gauge('afpgw_up', 'The node serves AFP (1) or is stopping (0).', () => [{ labels: { node: p.nodeId }, value: p.ctx.shuttingDown ? 0 : 1 }]);

  /** Sessions logged in over a live connection, with the address they come from. */
  function connectedSessions(): { s: AfpSession; address: string }[] {
    const out: { s: AfpSession; address: string }[] = [];
    for (const conn of p.server.allConnections()) {
      const s = conn.currentEndpoint;
      if (s instanceof AfpSession && s.user !== null && s.state === 'connected') out.push({ s, address: conn.remoteAddress });
    }
    return out;
  }

  /** Block reads of every volume since start. */
  function cacheReads(): { hits: number; misses: number } {
    let hits = 0;
    let misses = 0;
    for (const v of p.volumes.all()) {
      hits += v.data.reads.hits;
      misses += v.data.reads.misses;
    }
    return { hits, misses };
  }

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
    const sessions: StatusReport['sessions'] = connectedSessions().map(({ s, address }) => ({
      id: s.id,
      user: s.user!.name,
      address,
      since: s.createdAt,
      volumes: [...s.openVolumes.values()].map((v) => v.name),
      openForks: s.forks.size,
    }));
    const reads = cacheReads();
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
      cache: {
        sizeBytes: p.cacheSizeBytes,
        cleanBytes: p.cache.cleanBytes,
        dirtyBytes: p.cache.dirtyTotal,
        dirtyLimitBytes: p.cache.dirtyLimit,
        reads: reads.hits + reads.misses,
        hitRatio: reads.hits + reads.misses === 0 ? null : reads.hits / (reads.hits + reads.misses),
      },
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
