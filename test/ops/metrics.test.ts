/**
 * The operations endpoint: Prometheus text that a scraper can parse and whose numbers move
 * with the traffic a client drives, and the health and readiness checks keepalived polls.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { MetricsRegistry } from '../../src/ops/metrics.js';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const USER = { name: 'ops', password: 'ops-pw' };

/** Samples of an exposition text: `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('MetricsRegistry', () => {
  it('renders counters, scrape-time gauges and cumulative histograms in the text format', () => {
    const r = new MetricsRegistry();
    const c = r.counter('t_total', 'a counter');
    c.inc({ a: 'x"y\\z\nw' });
    c.inc({ a: 'x"y\\z\nw' }, 2);
    c.inc();
    let depth = 3;
    r.gauge('t_depth', 'a gauge', () => [{ value: depth }]);
    const h = r.histogram('t_seconds', 'a histogram', [0.1, 1]);
    h.observe({ cmd: 'FPRead' }, 0.05);
    h.observe({ cmd: 'FPRead' }, 0.5);
    h.observe({ cmd: 'FPRead' }, 7);
    depth = 4;
    const text = r.render();
    assert.match(text, /^# HELP t_total a counter\n# TYPE t_total counter\n/);
    const s = parse(text);
    assert.equal(s.get('t_total{a="x\\"y\\\\z\\nw"}'), 3);
    assert.equal(s.get('t_total'), 1);
    assert.equal(s.get('t_depth'), 4, 'gauges are read when scraped');
    assert.equal(s.get('t_seconds_bucket{cmd="FPRead",le="0.1"}'), 1);
    assert.equal(s.get('t_seconds_bucket{cmd="FPRead",le="1"}'), 2);
    assert.equal(s.get('t_seconds_bucket{cmd="FPRead",le="+Inf"}'), 3);
    assert.equal(s.get('t_seconds_count{cmd="FPRead"}'), 3);
    assert.equal(s.get('t_seconds_sum{cmd="FPRead"}'), 7.55);
    assert.throws(() => r.counter('t_total', 'again'), RangeError);
    assert.throws(() => r.counter('bad-name', 'x'), RangeError);
  });
});

describe('the gateway ops endpoint', () => {
  let g: TestGateway;
  let base: string;

  before(async () => {
    g = await startTestGateway({ users: [USER], config: { ops: { metricsListen: { host: '127.0.0.1', port: 0 } }, volumes: [{ name: 'Data' }] } });
    assert.ok(g.gw.ops, 'the ops endpoint listens');
    assert.equal(g.gw.ops.host, '127.0.0.1', 'on loopback, as configured');
    base = `http://127.0.0.1:${g.gw.ops.port}`;
  });

  after(async () => {
    await g?.stop();
  });

  const scrape = async (): Promise<Map<string, number>> => {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };

  it('counts commands, their latency, connections and uploads as a client works', async () => {
    const before = await scrape();
    assert.equal(before.get('afpgw_connections'), 0);
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    const v = await c.openVolume('Data');
    await v.createFile(ROOT, 'm.bin');
    const f = await v.openFork(ROOT, 'm.bin', { mode: ForkMode.Read | ForkMode.Write });
    const data = randomBytes(5 * 1024 * 1024);
    await f.write(0, data);
    await f.sync();
    const during = await scrape();
    await f.close();
    await c.close();

    const openVol = 'afpgw_afp_commands_total{command="FPOpenVol",result="kFPNoErr"}';
    assert.equal((during.get(openVol) ?? 0) - (before.get(openVol) ?? 0), 1, 'one FPOpenVol');
    const writes = during.get('afpgw_afp_command_seconds_count{command="FPWriteExt"}') ?? 0;
    assert.ok(writes >= 5, `the writes are timed (${writes})`);
    assert.equal(during.get('afpgw_afp_command_seconds_bucket{command="FPWriteExt",le="+Inf"}'), writes);
    assert.equal(during.get('afpgw_connections'), 1, 'the client is connected');
    assert.ok((during.get('afpgw_uploads_total{outcome="done"}') ?? 0) >= 2, 'FPSyncFork uploaded the two blocks');
    assert.equal(during.get('afpgw_cache_dirty_bytes'), 0, 'nothing dirty after the sync');
    const inBytes = (during.get('afpgw_afp_bytes_total{direction="in"}') ?? 0) - (before.get('afpgw_afp_bytes_total{direction="in"}') ?? 0);
    assert.ok(inBytes >= data.length && inBytes < data.length + 64 * 1024, `AFP bytes in: the written data and little more (${inBytes})`);
    const put = during.get('afpgw_object_requests_total{op="put",outcome="ok"}') ?? 0;
    assert.ok(put >= 2, `the blocks were PUT (${put})`);
    assert.equal(during.get('afpgw_object_request_seconds_count{op="put"}'), put);
    const putBytes = during.get('afpgw_object_bytes_total{direction="out"}') ?? 0;
    assert.ok(putBytes >= data.length, `object bytes out cover the data (${putBytes})`);
    const r = await AfpClient.connect(g.host, g.port);
    await r.login({ user: USER.name, password: USER.password });
    const rf = await (await r.openVolume('Data')).openFork(ROOT, 'm.bin', { mode: ForkMode.Read });
    await rf.read(0, 1024 * 1024);
    const read = await scrape();
    const outBytes = (read.get('afpgw_afp_bytes_total{direction="out"}') ?? 0) - (during.get('afpgw_afp_bytes_total{direction="out"}') ?? 0);
    assert.ok(outBytes >= 1024 * 1024, `AFP bytes out: the read reply (${outBytes})`);
    await rf.close();
    await r.close();
    assert.ok((during.get('afpgw_cache_dirty_limit_bytes') ?? 0) > 0);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.ok(!text.includes(USER.password), 'no password in the metrics');
  });

  it('answers /healthz and /readyz, 503 while the node stops, and nothing else', async () => {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { ok: true, checks: { afp: 'ok' } });
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ok: true, checks: { afp: 'ok', metadata: 'ok' } });
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 405);
    g.gw.ctx.shuttingDown = true;
    try {
      const r = await fetch(`${base}/readyz`);
      assert.equal(r.status, 503, 'a stopping node is not ready: keepalived moves the address');
      assert.equal(((await r.json()) as { checks: Record<string, string> }).checks.afp, 'stopping');
      assert.equal((await fetch(`${base}/healthz`)).status, 503);
    } finally {
      g.gw.ctx.shuttingDown = false;
    }
  });
  it('renders the status page with the sessions, the volumes and the cache, and the same as JSON for the CLI', async () => {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    await c.openVolume('Data');
    const page = await fetch(`${base}/status`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    const table = (id: string): string[][] => {
      const body = new RegExp(`<table id="${id}">[\\s\\S]*?<tbody>([\\s\\S]*?)</tbody>`).exec(html);
      assert.ok(body, `a ${id} table`);
      return [...body[1]!.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) => [...row[1]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((cell) => cell[1]!));
    };
    const sessions = table('sessions');
    assert.equal(sessions.length, 1, 'one connected Mac');
    assert.equal(sessions[0]![0], USER.name);
    assert.equal(sessions[0]![1], '127.0.0.1');
    assert.equal(sessions[0]![3], 'Data');
    const volumes = table('volumes');
    assert.ok(volumes[0]![0]!.startsWith('Data'));
    assert.match(volumes[0]![1]!, /MiB|KiB|B/, 'its used space');
    assert.match(html, /<meta http-equiv="refresh" content="5">/, 'the page refreshes itself');
    assert.ok(!html.includes(USER.password), 'no password on the page');

    const json = (await (await fetch(`${base}/status.json`)).json()) as { sessions: { user: string }[]; volumes: { name: string; usedBytes: number }[] };
    assert.deepEqual(json.sessions.map((s) => s.user), [USER.name]);
    assert.equal(json.volumes[0]!.name, 'Data');
    assert.ok(json.volumes[0]!.usedBytes >= 5 * 1024 * 1024, 'the file written earlier counts');

    const cli = await runCli(['status', `127.0.0.1:${g.gw.ops!.port}`]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /sessions: 1 connected/);
    assert.match(cli.stdout, new RegExp(`^  ${USER.name} +127\\.0\\.0\\.1`, 'm'));
    assert.match(cli.stdout, /^  Data +\d/m);
    await c.close();
    const down = await runCli(['status', '127.0.0.1:1']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /no answer from http:\/\/127\.0\.0\.1:1\/status\.json/);
  });
});
