/**
 * The status page: what an admin wants at a glance, as one HTML document the gateway renders
 * itself (no build step, no script: it reloads itself every few seconds), and the same facts
 * as JSON for `afp-gateway status`. Never shows a password, a key or a token.
 */
export interface StatusReport {
  node: string;
  version: string;
  serverName: string;
  startedAt: number;
  now: number;
  sessions: { id: string; user: string; address: string; since: number; volumes: string[]; openForks: number }[];
  /** Sessions whose connection dropped, waiting for their Mac. */
  disconnected: number;
  volumes: { name: string; usedBytes: number; limitBytes: number | null; timeMachine: boolean }[];
  cache: {
    sizeBytes: number;
    cleanBytes: number;
    dirtyBytes: number;
    dirtyLimitBytes: number;
    /** Block reads since start, and the share served from the cache (null before the first). */
    reads: number;
    hitRatio: number | null;
  };
  uploads: { queued: number; done: number; failed: number };
  /** Bytes PUT to the object store per second, one sample per interval, oldest first. */
  throughput: { at: number; bytesPerSecond: number }[];
}

export const STATUS_REFRESH_SECONDS = 5;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** The cache hit ratio for people: "93.5% of 1200 block reads served from the cache", or that there were none yet. */
export function formatHitRatio(c: StatusReport['cache']): string {
  return c.hitRatio === null ? 'no block read yet' : `${(100 * c.hitRatio).toFixed(1)}% of ${c.reads} block reads served from the cache`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

function bar(part: number, whole: number | null): string {
  if (!whole || whole <= 0) return '';
  const pct = Math.min(100, (100 * part) / whole);
  return `<div class="bar"><div style="width:${pct.toFixed(1)}%"></div></div>`;
}

/** The upload rate as an inline SVG polyline, scaled to its own maximum. */
function chart(samples: StatusReport['throughput']): string {
  if (samples.length < 2) return '<p class="muted">collecting samples…</p>';
  const w = 480;
  const h = 80;
  const max = Math.max(1, ...samples.map((s) => s.bytesPerSecond));
  const pts = samples.map((s, i) => `${((i / (samples.length - 1)) * w).toFixed(1)},${(h - (s.bytesPerSecond / max) * (h - 4)).toFixed(1)}`).join(' ');
  const last = samples[samples.length - 1]!.bytesPerSecond;
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="upload rate"><polyline fill="none" stroke="#2a6" stroke-width="2" points="${pts}"/></svg>
<p class="muted">now ${formatBytes(last)}/s, peak ${formatBytes(max)}/s over the last ${formatDuration(samples[samples.length - 1]!.at - samples[0]!.at)}</p>`;
}

export function renderStatusPage(r: StatusReport): string {
  const sessions = r.sessions.length === 0
    ? '<tr><td colspan="6" class="muted">no Mac is connected</td></tr>'
    : r.sessions
        .map((s) => `<tr><td>${esc(s.user)}</td><td>${esc(s.address)}</td><td>${formatDuration(r.now - s.since)}</td><td>${esc(s.volumes.join(', '))}</td><td>${s.openForks}</td><td class="muted">${esc(s.id)}</td></tr>`)
        .join('\n');
  const volumes = r.volumes
    .map((v) => `<tr><td>${esc(v.name)}${v.timeMachine ? ' <span class="tag">Time Machine</span>' : ''}</td><td>${formatBytes(v.usedBytes)}</td><td>${v.limitBytes === null ? 'no limit' : formatBytes(v.limitBytes)}</td><td>${bar(v.usedBytes, v.limitBytes)}</td></tr>`)
    .join('\n');
  const c = r.cache;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="${STATUS_REFRESH_SECONDS}">
<title>${esc(r.serverName)}: afp-gateway status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:60em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd}
.muted{color:#777}.tag{font-size:.8em;background:#eef;padding:0 .4em;border-radius:3px}
.bar{background:#eee;width:10em;height:.8em}.bar div{background:#2a6;height:100%}
</style></head><body>
<h1>${esc(r.serverName)}</h1>
<p class="muted">node ${esc(r.node)}, afp-gateway ${esc(r.version)}, up ${formatDuration(r.now - r.startedAt)}</p>
<h2>Sessions</h2>
<table id="sessions"><thead><tr><th>user</th><th>Mac</th><th>connected for</th><th>volumes</th><th>open files</th><th>session</th></tr></thead><tbody>
${sessions}
</tbody></table>
<p class="muted">${r.disconnected} session(s) waiting for their Mac to reconnect</p>
<h2>Volumes</h2>
<table id="volumes"><thead><tr><th>volume</th><th>used</th><th>limit</th><th></th></tr></thead><tbody>
${volumes}
</tbody></table>
<h2>Cache</h2>
<table id="cache"><tbody>
<tr><td>clean blocks</td><td>${formatBytes(c.cleanBytes)} of ${formatBytes(c.sizeBytes)}</td><td>${bar(c.cleanBytes + c.dirtyBytes, c.sizeBytes)}</td></tr>
<tr><td>hit ratio</td><td>${formatHitRatio(c)}</td><td>${c.hitRatio === null ? '' : bar(c.hitRatio, 1)}</td></tr>
<tr><td>not yet uploaded</td><td>${formatBytes(c.dirtyBytes)} of ${formatBytes(c.dirtyLimitBytes)} allowed</td><td>${bar(c.dirtyBytes, c.dirtyLimitBytes)}</td></tr>
<tr><td>upload queue</td><td>${r.uploads.queued} block(s); ${r.uploads.done} uploaded, ${r.uploads.failed} failed (retried) since start</td><td></td></tr>
</tbody></table>
<h2>Uploads to the object store</h2>
${chart(r.throughput)}
</body></html>
`;
}
