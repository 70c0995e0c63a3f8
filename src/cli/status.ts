import { formatBytes, formatDuration, formatHitRatio, type StatusReport } from '../ops/status-page.js';
import type { CliOptions } from './options.js';

const DEFAULT_TARGET = '127.0.0.1:9548';

/** `afp-gateway status [HOST:PORT]`: the status page's facts, from a running gateway's ops endpoint. */
export async function status(opts: CliOptions): Promise<number> {
  const target = opts.positionals[0] ?? DEFAULT_TARGET;
  const url = `http://${target}/status.json`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    process.stderr.write(`afp-gateway status: no answer from ${url} (${err instanceof Error ? err.message : String(err)}); is the gateway running, with ops.metricsListen set to this address?\n`);
    return 1;
  }
  if (!res.ok) {
    process.stderr.write(`afp-gateway status: ${url} answered ${res.status}\n`);
    return 1;
  }
  const r = (await res.json()) as StatusReport;
  if (opts.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `${r.serverName}: node ${r.node}, afp-gateway ${r.version}, up ${formatDuration(r.now - r.startedAt)}`,
    '',
    `sessions: ${r.sessions.length} connected, ${r.disconnected} waiting for a reconnect`,
    ...r.sessions.map((s) => `  ${s.user.padEnd(16)} ${s.address.padEnd(24)} ${formatDuration(r.now - s.since).padStart(8)}  ${s.openForks} open  ${s.volumes.join(', ')}`),
    '',
    'volumes:',
    ...r.volumes.map((v) => `  ${v.name.padEnd(24)} ${formatBytes(v.usedBytes).padStart(10)} of ${v.limitBytes === null ? 'no limit' : formatBytes(v.limitBytes)}${v.timeMachine ? '  (Time Machine)' : ''}`),
    '',
    `cache: ${formatBytes(r.cache.cleanBytes)} clean of ${formatBytes(r.cache.sizeBytes)}, ${formatBytes(r.cache.dirtyBytes)} not yet uploaded (limit ${formatBytes(r.cache.dirtyLimitBytes)})`,
    `cache hit ratio: ${formatHitRatio(r.cache)}`,
    `uploads: ${r.uploads.queued} queued, ${r.uploads.done} done, ${r.uploads.failed} failed (retried) since start`,
  ];
  const last = r.throughput[r.throughput.length - 1];
  if (last) lines.push(`upload rate: ${formatBytes(last.bytesPerSecond)}/s (last 10 s)`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
