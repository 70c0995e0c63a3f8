/**
 * The operations endpoint: Prometheus text that a scraper can parse and whose numbers move
 * with the traffic a client drives, and the health and readiness checks keepalived polls.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { AfpError } from '../../src/afp/errors.js';
import { MetricsRegistry } from '../../src/ops/metrics.js';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { gatewayFor, SKIP_REASON } from '../helpers/backends.js';

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

async function scrapeAt(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  return parse(await res.text());
}

/** How much a sample grew between two scrapes (absent counts as 0). */
function grew(before: Map<string, number>, after: Map<string, number>, sample: string): number {
  return (after.get(sample) ?? 0) - (before.get(sample) ?? 0);
}

/** The `# TYPE` a family is declared with. */
function typeOf(text: string, name: string): string | undefined {
  return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
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

  it('finds a series by its label values whatever their order, and refuses a label the family does not declare', () => {
    const r = new MetricsRegistry();
    const c = r.counter('t_total', 'a counter', ['command', 'result']);
    c.inc({ result: 'kFPNoErr', command: 'FPRead' });
    c.inc({ command: 'FPRead', result: 'kFPNoErr' }, 2);
    c.inc({ command: 'FPRead', result: 'kFPEOFErr' });
    assert.equal(c.get({ command: 'FPRead', result: 'kFPNoErr' }), 3);
    assert.equal(c.get({ command: 'FPWrite', result: 'kFPNoErr' }), 0);
    const s = parse(r.render());
    assert.equal(s.get('t_total{command="FPRead",result="kFPNoErr"}'), 3, 'rendered in the declared order');
    assert.equal(s.get('t_total{command="FPRead",result="kFPEOFErr"}'), 1);
    assert.throws(() => c.inc({ command: 'FPWrite', result: 'kFPNoErr', volume: 'x' }), /t_total has no label volume/, 'checked when a series is made');
    const h = r.histogram('t_seconds', 'a histogram', [1], ['op']);
    h.observe({ op: 'get' }, 0.5);
    assert.equal(h.count({ op: 'get' }), 1);
    assert.equal(h.count({ op: 'put' }), 0);
    let reads = 7;
    r.counterFrom('t_reads_total', 'kept elsewhere', () => [{ labels: { result: 'hit' }, value: reads }]);
    reads = 9;
    const text = r.render();
    assert.equal(typeOf(text, 't_reads_total'), 'counter');
    assert.equal(parse(text).get('t_reads_total{result="hit"}'), 9, 'read when scraped');
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

  it('times syncs and metadata calls, counts sessions and failed commands', async () => {
    const before = await scrape();
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    const v = await c.openVolume('Data');
    const dir = await v.createDir(ROOT, 'synced');
    await v.createFile(dir, 's.bin');
    const f = await v.openFork(dir, 's.bin', { mode: ForkMode.Read | ForkMode.Write });
    await f.write(0, randomBytes(64 * 1024));
    await f.sync();
    await f.write(64 * 1024, randomBytes(1024));
    await v.syncDir(dir);
    await assert.rejects(v.openFork(dir, 'missing.bin', { mode: ForkMode.Read }), (err: unknown) => err instanceof AfpError);
    const during = await scrape();
    await f.close();
    await c.logout();
    const after = await scrape();
    await c.close();

    assert.equal(grew(before, during, 'afpgw_sync_seconds_count{kind="fork"}'), 1, 'one FPSyncFork');
    assert.equal(grew(before, during, 'afpgw_sync_seconds_count{kind="dir"}'), 1, 'one FPSyncDir');
    assert.equal(during.get('afpgw_sync_seconds_bucket{kind="fork",le="+Inf"}'), during.get('afpgw_sync_seconds_count{kind="fork"}'));
    assert.ok((during.get('afpgw_sync_seconds_sum{kind="dir"}') ?? 0) > 0, 'the sync took time');
    assert.equal(grew(before, during, 'afpgw_afp_commands_total{command="FPOpenFork",result="kFPObjectNotFound"}'), 1, 'the failed open, by its result name');

    // The embedded store: every namespace change is one timed write transaction, every sync point a timed sync.
    const writes = grew(before, during, 'afpgw_metadata_request_seconds_count{op="namespace.write"}');
    assert.ok(writes >= 2, `the directory and the file were created in timed transactions (${writes})`);
    assert.equal(grew(before, during, 'afpgw_metadata_requests_total{op="namespace.write",outcome="ok"}'), writes);
    assert.ok(grew(before, during, 'afpgw_metadata_request_seconds_count{op="sync"}') >= 2, 'both syncs synced the store');
    assert.ok(grew(before, during, 'afpgw_metadata_request_seconds_count{op="forks.write"}') >= 1, 'the fork opens are recorded');

    assert.equal(during.get('afpgw_sessions{state="connected"}'), 1, 'the client is logged in');
    assert.equal(during.get('afpgw_sessions{state="disconnected"}'), 0);
    assert.equal(after.get('afpgw_sessions{state="connected"}'), 0, 'and gone after its logout');
  });

  it('exports only metrics docs/operations.md lists', async () => {
    const doc = await readFile(fileURLToPath(new URL('../../../docs/operations.md', import.meta.url)), 'utf8');
    const text = await (await fetch(`${base}/metrics`)).text();
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    assert.ok(names.includes('afpgw_metadata_request_seconds') && names.includes('afpgw_sync_seconds'), names.join(' '));
    const missing = names.filter((n) => !doc.includes(`\`${n}\``));
    assert.deepEqual(missing, [], 'document these in the metrics table of docs/operations.md');
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

describe('the cache hit ratio', () => {
  let g: TestGateway;
  let base: string;
  const MiB = 1024 * 1024;

  before(async () => {
    // Room for one clean 4 MiB block (size - dirtyLimit): a second block made clean evicts the first.
    g = await startTestGateway({
      users: [USER],
      config: { ops: { metricsListen: { host: '127.0.0.1', port: 0 } }, volumes: [{ name: 'Data' }], cache: { size: 12 * MiB, dirtyLimit: 8 * MiB } },
    });
    base = `http://127.0.0.1:${g.gw.ops!.port}`;
  });

  after(async () => {
    await g?.stop();
  });

  it('counts block reads served from the cache and fetched from the object store, and shows the ratio', async () => {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    const v = await c.openVolume('Data');
    const first = randomBytes(4 * MiB);
    for (const [name, data] of [['a.bin', first], ['b.bin', randomBytes(4 * MiB)]] as const) {
      await v.createFile(ROOT, name);
      const f = await v.openFork(ROOT, name, { mode: ForkMode.Read | ForkMode.Write });
      await f.write(0, data);
      await f.sync();
      await f.close();
    }
    const s0 = await scrapeAt(base);
    assert.equal(s0.get('afpgw_cache_bytes'), (s0.get('afpgw_cache_clean_bytes') ?? NaN) + (s0.get('afpgw_cache_dirty_bytes') ?? NaN), 'held = clean + dirty');
    assert.ok((s0.get('afpgw_cache_bytes') ?? 0) <= 4 * MiB, `b.bin's block pushed a.bin's out (${s0.get('afpgw_cache_bytes')})`);
    assert.equal(s0.get('afpgw_cache_size_bytes'), 12 * MiB);

    const f = await v.openFork(ROOT, 'a.bin', { mode: ForkMode.Read });
    assert.deepEqual((await f.read(0, 64 * 1024)).data, first.subarray(0, 64 * 1024));
    const s1 = await scrapeAt(base);
    assert.equal(grew(s0, s1, 'afpgw_cache_reads_total{result="miss"}'), 1, 'the evicted block came from the object store');
    assert.equal(grew(s0, s1, 'afpgw_cache_reads_total{result="hit"}'), 0);
    assert.equal(grew(s0, s1, 'afpgw_object_requests_total{op="get",outcome="ok"}'), 1, 'one GET');

    assert.deepEqual((await f.read(64 * 1024, 64 * 1024)).data, first.subarray(64 * 1024, 128 * 1024));
    const s2 = await scrapeAt(base);
    assert.equal(grew(s1, s2, 'afpgw_cache_reads_total{result="hit"}'), 1, 'now it is cached');
    assert.equal(grew(s1, s2, 'afpgw_cache_reads_total{result="miss"}'), 0);
    assert.equal(typeOf(await (await fetch(`${base}/metrics`)).text(), 'afpgw_cache_reads_total'), 'counter');

    const hits = s2.get('afpgw_cache_reads_total{result="hit"}')!;
    const misses = s2.get('afpgw_cache_reads_total{result="miss"}')!;
    const json = (await (await fetch(`${base}/status.json`)).json()) as { cache: { reads: number; hitRatio: number | null } };
    assert.equal(json.cache.reads, hits + misses);
    assert.equal(json.cache.hitRatio, hits / (hits + misses));
    const html = await (await fetch(`${base}/status`)).text();
    const pct = `${((100 * hits) / (hits + misses)).toFixed(1)}% of ${hits + misses} block reads`;
    assert.ok(html.includes(pct), `the page shows the hit ratio (${pct})`);
    const cli = await runCli(['status', `127.0.0.1:${g.gw.ops!.port}`]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.ok(cli.stdout.includes(`cache hit ratio: ${pct} served from the cache`), cli.stdout);
    await f.close();
    await c.close();
  });
});

describe('the metadata metrics on the Redis store', () => {
  const gateway = gatewayFor('redis', { users: [USER], config: { ops: { metricsListen: { host: '127.0.0.1', port: 0 } }, volumes: [{ name: 'Data' }] } });

  it('times each Redis command and script by name', async (t) => {
    const g = gateway();
    if (!g) return t.skip(SKIP_REASON);
    const base = `http://127.0.0.1:${g.gw.ops!.port}`;
    const before = await scrapeAt(base);
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    const v = await c.openVolume('Data');
    const dir = await v.createDir(ROOT, 'r');
    await v.createFile(dir, 'r.bin');
    await v.getFileDirParms(dir, 'r.bin');
    const f = await v.openFork(dir, 'r.bin', { mode: ForkMode.Read | ForkMode.Write });
    await f.write(0, randomBytes(4096));
    await f.sync();
    await f.close();
    await c.close();
    const text = await (await fetch(`${base}/metrics`)).text();
    const after = parse(text);

    assert.equal(grew(before, after, 'afpgw_metadata_request_seconds_count{op="afpgwNsCreate"}'), 2, 'the directory and the file: one script each');
    assert.equal(grew(before, after, 'afpgw_metadata_requests_total{op="afpgwNsCreate",outcome="ok"}'), 2);
    assert.ok(grew(before, after, 'afpgw_metadata_request_seconds_count{op="afpgwNsCommitFork"}') >= 1, 'the sync committed the block map');
    assert.ok(grew(before, after, 'afpgw_metadata_request_seconds_count{op="hmget"}') >= 1, 'plain commands are named too');
    assert.ok((after.get('afpgw_metadata_request_seconds_sum{op="afpgwNsCreate"}') ?? 0) > 0);
    assert.doesNotMatch(text, /op="eval(sha)?"/, 'every script is known by its name');
    assert.doesNotMatch(text, /op="namespace\.write"/, 'no embedded-store operation');
  });
});
