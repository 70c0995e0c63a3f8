/**
 * `afp-gateway doctor`, through the real binary: one test per failure it reports (and per
 * warning), each against the real thing that fails: a port this process holds, a path under a
 * regular file, a cache larger than any disk, redis-server with a password, an AOF, a memory
 * policy or a renamed INFO, a replica, sentinels, s3rver without the bucket, a proxy that
 * swallows every byte (a server that never answers), and network
 * namespaces (`unshare -rn`) for what needs a machine without interfaces, or with mDNS's port
 * taken. Plus the all-good runs on embedded+fs and on Redis+S3.
 *
 * Not tested: a multicast query that is sent but dropped (it needs a packet filter, and this
 * machine has neither nftables nor iptables), and SignatureDoesNotMatch (s3rver checks the
 * access key id but not signatures).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ObjectStore } from '../../src/objects/s3-store.js';
import { BIN, runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { freePort } from '../helpers/ports.js';
import { needRedis, redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { needSentinel, sentinelAvailable, startSentinelSet, type RedisSentinelSet } from '../helpers/redis-sentinel.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';

type Json = Record<string, unknown>;

let work: string;
let counter = 0;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'afpgw-doctor-'));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * A config for one test: only the parts under test are on (no metrics port, no Bonjour, any
 * AFP port, a small cache), over a data directory of its own. JSON is YAML.
 */
async function configFile(overrides: Json = {}): Promise<{ file: string; dataDir: string }> {
  const n = ++counter;
  const dataDir = join(work, `data-${n}`);
  // A small cache, so that "enough space" holds on any machine the tests run on.
  const cfg = { dataDir, listen: { host: '127.0.0.1', port: 0 }, ops: { metricsListen: null }, bonjour: { enabled: false }, cache: { size: '64MiB' }, ...overrides };
  const file = join(work, `config-${n}.yaml`);
  await writeFile(file, JSON.stringify(cfg, null, 2));
  return { file, dataDir };
}

async function doctor(overrides: Json = {}, extra: string[] = []): Promise<CliResult> {
  const { file } = await configFile(overrides);
  return runCli(['doctor', '--config', file, ...extra]);
}

interface Line {
  status: string;
  check: string;
  message: string;
  fix?: string;
}

/** The report's lines, with the fix that follows a line. */
function parse(stdout: string): Line[] {
  const out: Line[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(ok|warn|FAIL|skip)\s+(\S+)\s+(.*)$/.exec(line);
    if (m) out.push({ status: m[1]!, check: m[2]!, message: m[3]! });
    const f = /^\s+fix: (.*)$/.exec(line);
    if (f && out.length > 0) out[out.length - 1]!.fix = f[1]!;
  }
  return out;
}

/** The one line with this status, asserting there is exactly one with any non-ok status besides. */
function only(r: CliResult, status: 'FAIL' | 'warn', check: string): Line {
  const lines = parse(r.stdout);
  const flagged = lines.filter((l) => l.status === 'FAIL' || l.status === 'warn');
  assert.deepEqual(
    flagged.map((l) => `${l.status} ${l.check}`),
    [`${status} ${check}`],
    `expected only "${status} ${check}":\n${r.stdout}${r.stderr}`,
  );
  return flagged[0]!;
}

function holdPort(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

// ---- network namespaces -------------------------------------------------------------------

function namespacesMissing(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).status !== 0) return 'ip is not installed';
  if (spawnSync('unshare', ['-rn', 'true']).status !== 0) return 'cannot create a user and network namespace (unshare -rn)';
  return null;
}

function needNamespaces(t: TestContext): boolean {
  const missing = namespacesMissing();
  if (missing === null) return true;
  if (process.env.CI === 'true') throw new Error(`this test needs network namespaces under CI: ${missing}`);
  t.skip(missing);
  return false;
}

/**
 * Runs `setup`, then doctor, inside `unshare` with the given flags (-r: a user namespace; -rn:
 * and a network one). A process the setup starts in the background sets `bg=$!`; it is ended
 * after doctor, so that nothing holds the output pipes open.
 */
function doctorIn(flags: string, setup: string, file: string): Promise<CliResult> {
  const script = `${setup}\n"$NODE" "$BIN" doctor --config "$CFG"; code=$?\n[ -n "\${bg:-}" ] && kill "$bg"\nexit $code`;
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', [flags, 'sh', '-c', script], { env: { ...process.env, NODE: process.execPath, BIN, CFG: file }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A hang is a failure with the output so far, not a stuck test run.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// ---- the configuration itself ------------------------------------------------------------

describe('doctor: the configuration', () => {
  test('an unknown key: exit 78, naming the key and the likely one', async () => {
    const r = await doctor({ listen: { host: '127.0.0.1', prot: 548 } });
    assert.equal(r.code, 78, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAIL\s+config\s+\S+config-\d+\.yaml: listen\.prot: unknown key \(did you mean "port"\?\)$/m);
  });

  test('a wrong type: exit 78, naming the key and the type; --json says the same', async () => {
    const r = await doctor({ cache: { size: true } }, ['--json']);
    assert.equal(r.code, 78, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { exitCode: number; checks: { check: string; status: string; key?: string; message: string }[] };
    assert.equal(report.exitCode, 78);
    assert.equal(report.checks.length, 1);
    assert.equal(report.checks[0]!.status, 'fail');
    assert.equal(report.checks[0]!.key, 'cache.size');
    assert.match(report.checks[0]!.message, /cache\.size: must be a byte count or a size such as "4MiB"/);
  });
});

// ---- everything local: embedded metadata, fs objects ------------------------------------

describe('doctor: embedded metadata and fs objects', () => {
  test('all good: every check ok, exit 0, and nothing left behind', async () => {
    const { file, dataDir } = await configFile({ ops: { metricsListen: { host: '127.0.0.1', port: 0 } }, bonjour: { enabled: true, interfaces: ['127.0.0.1'] } });
    const r = await runCli(['doctor', '--config', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = parse(r.stdout);
    assert.deepEqual(
      lines.map((l) => `${l.status} ${l.check}`),
      ['ok config', 'ok listen', 'ok ops', 'ok cache', 'ok cache-space', 'ok metadata', 'ok objects', 'ok multicast'],
      r.stdout,
    );
    assert.match(r.stdout, /^ok\s+multicast\s+lo \(127\.0\.0\.1\): a query sent to 224\.0\.0\.251:5353 came back$/m);
    assert.match(r.stdout, /0 failed, 0 warnings: ready to serve/);
    // The directories made to test them are gone again.
    assert.equal(existsSync(dataDir), false, `${dataDir} was left behind`);
  });

  test('--json: the same checks as JSON', async () => {
    const r = await doctor({}, ['--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { exitCode: number; checks: { check: string; status: string }[] };
    assert.equal(report.exitCode, 0);
    assert.deepEqual(
      report.checks.map((c) => `${c.status} ${c.check}`),
      ['ok config', 'ok listen', 'skip ops', 'ok cache', 'ok cache-space', 'ok metadata', 'ok objects', 'skip multicast'],
    );
  });

  test('the AFP port in use: FAIL, naming the process that holds it', async () => {
    const port = await freePort();
    const held = await holdPort(port);
    try {
      const r = await doctor({ listen: { host: '127.0.0.1', port } });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const line = only(r, 'FAIL', 'listen');
      assert.equal(line.message.startsWith(`127.0.0.1:${port} is in use by process ${process.pid} (`), true, line.message);
      assert.match(line.fix ?? '', /set listen\.port to a free port/);
    } finally {
      held.close();
    }
  });

  test('the ops port in use: a warning (AFP is served without it), exit 0', async () => {
    const port = await freePort();
    const held = await holdPort(port);
    try {
      const r = await doctor({ ops: { metricsListen: { host: '127.0.0.1', port } } });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const line = only(r, 'warn', 'ops');
      assert.match(line.message, new RegExp(`^127\\.0\\.0\\.1:${port} is in use by process ${process.pid} .*; the gateway would serve AFP without metrics`));
      assert.match(line.fix ?? '', /ops\.metricsListen\.port/);
    } finally {
      held.close();
    }
  });

  test('port 548 without root: FAIL without a fallback port, a warning with one', async (t) => {
    if (!needNamespaces(t)) return;
    // In a user namespace of its own, root has no privilege over the machine's ports.
    const none = await configFile({ listen: { host: '127.0.0.1', port: 548, fallbackPort: null } });
    const r = await doctorIn('-r', '', none.file);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'listen');
    assert.match(line.message, /^127\.0\.0\.1:548: port 548 needs root or CAP_NET_BIND_SERVICE, and listen\.fallbackPort is null$/);
    assert.match(line.fix ?? '', /CAP_NET_BIND_SERVICE/);

    const fallbackPort = await freePort();
    const withFallback = await configFile({ listen: { host: '127.0.0.1', port: 548, fallbackPort } });
    const w = await doctorIn('-r', '', withFallback.file);
    assert.equal(w.code, 0, w.stdout + w.stderr);
    assert.match(only(w, 'warn', 'listen').message, new RegExp(`port 548 needs root or CAP_NET_BIND_SERVICE; serve will listen on listen\\.fallbackPort ${fallbackPort} instead`));
  });

  test('cache.dir under a regular file: FAIL, naming the file', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'not a directory');
    const r = await doctor({ cache: { dir: join(file, 'cache') } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'cache');
    assert.equal(line.message, `cache.dir ${join(file, 'cache')}: cannot create it: ${file} is a file, not a directory`);
  });

  test('metadata.path and objects.path under a regular file: FAIL each', async () => {
    const file = join(work, 'another-file');
    await writeFile(file, 'not a directory');
    const m = await doctor({ metadata: { backend: 'embedded', path: join(file, 'meta') } });
    assert.equal(m.code, 1, m.stdout + m.stderr);
    assert.equal(only(m, 'FAIL', 'metadata').message, `metadata.path ${join(file, 'meta')}: cannot create it: ${file} is a file, not a directory`);
    const o = await doctor({ objects: { backend: 'fs', path: join(file, 'objects') } });
    assert.equal(o.code, 1, o.stdout + o.stderr);
    assert.equal(only(o, 'FAIL', 'objects').message, `objects.path ${join(file, 'objects')}: cannot create it: ${file} is a file, not a directory`);
  });

  test('a cache larger than its disk: a warning; a dirty limit larger than the disk: FAIL', async () => {
    // 1000 TiB is larger than any disk this test runs on.
    const big = await doctor({ cache: { size: '1000TiB', dirtyLimit: '4MiB' } });
    assert.equal(big.code, 0, big.stdout + big.stderr);
    const w = only(big, 'warn', 'cache-space');
    assert.match(w.message, /free on the filesystem of cache\.dir, less than cache\.size 1000\.0 TiB/);
    assert.match(w.fix ?? '', /lower cache\.size/);

    const dirty = await doctor({ cache: { size: '1000TiB', dirtyLimit: '500TiB' } });
    assert.equal(dirty.code, 1, dirty.stdout + dirty.stderr);
    const f = only(dirty, 'FAIL', 'cache-space');
    assert.match(f.message, /less than cache\.dirtyLimit 500\.0 TiB: writes not yet uploaded would fill the disk/);
  });
});

// ---- multicast --------------------------------------------------------------------------

describe('doctor: multicast', () => {
  test('bonjour.interfaces with an address this machine does not have: FAIL', async () => {
    const address = '203.0.113.77'; // TEST-NET-3
    const own = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address));
    assert.equal(own.includes(address), false, 'precondition: the address is not this machine\'s');
    const r = await doctor({ bonjour: { enabled: true, interfaces: [address] } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(only(r, 'FAIL', 'multicast').message, `bonjour.interfaces lists ${address}, but no interface of this machine has that address`);
  });

  test('a machine with no interface but loopback: FAIL', async (t) => {
    if (!needNamespaces(t)) return;
    const { file } = await configFile({ bonjour: { enabled: true } });
    const r = await doctorIn('-rn', 'ip link set lo up', file);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(only(r, 'FAIL', 'multicast').message, /^no network interface besides loopback has an IPv4 address/);
  });

  test('UDP 5353 held by a program that does not share it: FAIL', async (t) => {
    if (!needNamespaces(t)) return;
    const { file } = await configFile({ bonjour: { enabled: true, interfaces: ['127.0.0.1'] } });
    // The holder binds without SO_REUSEADDR, unlike mDNS responders, and says when it holds the port.
    const hold = `"$NODE" -e 'require("dgram").createSocket("udp4").bind(5353, () => console.log("held"))' > "$CFG.held" 2>&1 &\nbg=$!\nfor i in $(seq 100); do grep -q held "$CFG.held" 2>/dev/null && break; sleep 0.05; done`;
    const r = await doctorIn('-rn', `ip link set lo up\n${hold}`, file);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(only(r, 'FAIL', 'multicast').message, 'cannot open UDP port 5353 on lo (127.0.0.1): a program holds it without sharing it');
  });
});

// ---- Redis ------------------------------------------------------------------------------

describe('doctor: Redis', () => {
  const redisMeta = (url: string, more: Json = {}): Json => ({ metadata: { backend: 'redis', url, ...more } });

  test('nothing listening: FAIL, naming metadata.url', async (t) => {
    if (!needRedis(t)) return;
    const port = await freePort();
    const r = await doctor(redisMeta(`redis://127.0.0.1:${port}`));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'redis');
    assert.equal(line.message, `Redis at 127.0.0.1:${port}: connection refused (nothing listens there)`);
    assert.match(line.fix ?? '', /metadata\.url/);
  });

  test('a Redis that accepts connections but never answers: FAIL after a few seconds, not a hang', async (t) => {
    if (!needRedis(t)) return;
    const redis = await startRedis();
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: redis.port }, { mode: 'blackhole' });
    try {
      const r = await doctor(redisMeta(`redis://127.0.0.1:${proxy.port}`));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const line = only(r, 'FAIL', 'redis');
      assert.equal(line.message, `Redis at 127.0.0.1:${proxy.port}: no answer within 3 s`);
      assert.match(line.fix ?? '', /metadata\.url/);
    } finally {
      await proxy.close();
      await redis.stop();
    }
  });

  describe('with a password', () => {
    let redis: RedisServer | undefined;
    before(async () => {
      if (redisAvailable()) redis = await startRedis({ extraArgs: ['--requirepass', 'right-one'] });
    });
    after(async () => redis?.stop());

    test('none configured: FAIL, naming metadata.password', async (t) => {
      if (!needRedis(t)) return;
      const r = await doctor(redisMeta(redis!.url));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const line = only(r, 'FAIL', 'redis');
      assert.equal(line.message, `Redis at 127.0.0.1:${redis!.port} requires a password and none is configured`);
      assert.match(line.fix ?? '', /set metadata\.password/);
    });

    test('a wrong one: FAIL, naming metadata.password', async (t) => {
      if (!needRedis(t)) return;
      const r = await doctor(redisMeta(redis!.url, { password: 'wrong-one' }));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const line = only(r, 'FAIL', 'redis');
      assert.match(line.message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${redis!.port} refuses the password \\(WRONGPASS`));
      assert.match(line.fix ?? '', /set metadata\.password/);
    });

    test('the right one, appendonly no and no replica: a warning, exit 0', async (t) => {
      if (!needRedis(t)) return;
      // The test helper starts redis-server with --appendonly no.
      const r = await doctor(redisMeta(redis!.url, { password: 'right-one' }));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^ok\\s+redis\\s+Redis at 127\\.0\\.0\\.1:${redis!.port} answers PING$`, 'm'));
      assert.match(r.stdout, /^ok\s+redis-memory\s+maxmemory-policy is noeviction$/m);
      const line = only(r, 'warn', 'redis-persistence');
      assert.match(line.message, /^appendonly is off and the master has no replica/);
      assert.match(line.fix ?? '', /appendonly yes/);
    });

    test('metadata.waitReplicas above the replicas connected: FAIL', async (t) => {
      if (!needRedis(t)) return;
      const r = await doctor(redisMeta(redis!.url, { password: 'right-one', waitReplicas: 1 }));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const fails = parse(r.stdout).filter((l) => l.status === 'FAIL');
      assert.deepEqual(fails.map((l) => l.check), ['redis-replicas']);
      assert.match(fails[0]!.message, /^metadata\.waitReplicas is 1 but the master has 0 connected replica\(s\)/);
      assert.match(fails[0]!.fix ?? '', /lower metadata\.waitReplicas to 0/);
    });
  });

  test('maxmemory-policy other than noeviction: a warning', async (t) => {
    if (!needRedis(t)) return;
    const redis = await startRedis({ extraArgs: ['--appendonly', 'yes', '--maxmemory-policy', 'allkeys-lru'] });
    try {
      const r = await doctor(redisMeta(redis.url));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok\s+redis-persistence\s+appendonly is on$/m);
      const line = only(r, 'warn', 'redis-memory');
      assert.match(line.message, /^maxmemory-policy is allkeys-lru \(in effect once maxmemory is set\): when Redis runs out of memory it deletes keys/);
    } finally {
      await redis.stop();
    }
  });

  test('INFO disabled (renamed, as on some managed services): "could not check", a warning', async (t) => {
    if (!needRedis(t)) return;
    const redis = await startRedis({ extraArgs: ['--rename-command', 'INFO', ''] });
    try {
      const r = await doctor(redisMeta(redis.url));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(only(r, 'warn', 'redis-settings').message, /^could not check Redis's persistence, memory policy and replicas: INFO is refused/);
    } finally {
      await redis.stop();
    }
  });

  describe('behind Sentinel', () => {
    let set: RedisSentinelSet | undefined;
    before(async () => {
      if (sentinelAvailable()) set = await startSentinelSet({ replicas: 1, sentinels: 1, quorum: 1 });
    });
    after(async () => set?.stop());

    test('the sentinels name the master; its replica keeps a copy and satisfies waitReplicas 1', async (t) => {
      if (!needSentinel(t)) return;
      const master = await set!.master();
      const r = await doctor({ metadata: { backend: 'redis', sentinels: set!.sentinels, sentinelName: set!.name, waitReplicas: 1 } });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const lines = parse(r.stdout);
      const status = (check: string): string | undefined => lines.find((l) => l.check === check)?.status;
      assert.equal(lines.find((l) => l.check === 'sentinels')?.message, `1 sentinel(s) answer and name master ${master.host}:${master.port} for "${set!.name}"`);
      assert.equal(lines.find((l) => l.check === 'redis-persistence')?.message, 'appendonly is off, but 1 replica(s) keep a copy');
      assert.equal(status('redis-replicas'), 'ok');
      assert.equal(lines.filter((l) => l.status === 'FAIL' || l.status === 'warn').length, 0, r.stdout);
    });

    test('a master name the sentinels do not know: FAIL, naming metadata.sentinelName', async (t) => {
      if (!needSentinel(t)) return;
      const r = await doctor({ metadata: { backend: 'redis', sentinels: set!.sentinels, sentinelName: 'no-such-master' } });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const line = only(r, 'FAIL', 'redis');
      assert.match(line.message, /know no master named "no-such-master"$/);
      assert.match(line.fix ?? '', /metadata\.sentinelName/);
    });

    test('metadata.url pointing at a replica: FAIL', async (t) => {
      if (!needSentinel(t)) return;
      const master = await set!.master();
      const replica = set!.servers.find((s) => s.port !== master.port)!;
      const r = await doctor(redisMeta(replica.url));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const line = only(r, 'FAIL', 'redis');
      assert.match(line.message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${replica.port} is a replica, read-only`));
      assert.match(line.fix ?? '', /point metadata\.url at the master/);
    });
  });

  test('no sentinel answering: FAIL, naming metadata.sentinels', async (t) => {
    if (!needRedis(t)) return;
    const ports = [await freePort(), await freePort()];
    const r = await doctor({ metadata: { backend: 'redis', sentinels: ports.map((port) => ({ host: '127.0.0.1', port })) } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'redis');
    assert.equal(line.message, `no sentinel answers (${ports.map((p) => `127.0.0.1:${p}: connection refused (nothing listens there)`).join('; ')})`);
    assert.match(line.fix ?? '', /metadata\.sentinels/);
  });
});

// ---- the bucket -------------------------------------------------------------------------

describe('doctor: S3', () => {
  let s3: S3Server;
  const objects = (overrides: Json = {}): Json => ({ objects: { ...s3Config(s3, { prefix: 'doctor' }), ...overrides } });

  before(async () => {
    s3 = await startS3({ bucket: 'doctor-bucket' });
  });
  after(async () => s3?.stop());

  test('a bucket that does not exist: FAIL, naming objects.bucket', async () => {
    const r = await doctor(objects({ bucket: 'no-such-bucket' }));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'objects');
    assert.equal(line.message, `bucket "no-such-bucket" (prefix "doctor") at ${s3.endpoint}: the bucket does not exist`);
    assert.match(line.fix ?? '', /create the bucket .*or correct objects\.bucket/);
  });

  test('an access key the server does not know: FAIL, naming objects.accessKeyId', async () => {
    const r = await doctor(objects({ accessKeyId: 'NOT-A-KEY' }));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'objects');
    assert.match(line.message, /: the access key id is unknown to the server$/);
    assert.match(line.fix ?? '', /objects\.accessKeyId/);
  });

  test('an endpoint where nothing listens: FAIL, naming objects.endpoint', async () => {
    const port = await freePort();
    const r = await doctor(objects({ endpoint: `http://127.0.0.1:${port}` }));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'objects');
    assert.equal(line.message, `bucket "doctor-bucket" (prefix "doctor") at http://127.0.0.1:${port}: connection refused (nothing listens there)`);
    assert.match(line.fix ?? '', /objects\.endpoint/);
  });

  test('an endpoint that accepts connections but never answers: FAIL after the probe timeout', async () => {
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port }, { mode: 'blackhole' });
    try {
      const r = await doctor(objects({ endpoint: proxy.endpoint }));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const line = only(r, 'FAIL', 'objects');
      assert.equal(line.message, `bucket "doctor-bucket" (prefix "doctor") at ${proxy.endpoint}: no answer within 5 s`);
      assert.match(line.fix ?? '', /objects\.endpoint/);
    } finally {
      await proxy.close();
    }
  });

  test('an endpoint whose host name does not resolve: FAIL, naming objects.endpoint', async () => {
    const r = await doctor(objects({ endpoint: 'http://afpgw-doctor.invalid:9000' }));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = only(r, 'FAIL', 'objects');
    // .invalid never resolves (RFC 6761); without a reachable resolver the answer is "not now".
    assert.match(line.message, /: the host name (does not resolve|cannot be resolved now) \(getaddrinfo (ENOTFOUND|EAI_AGAIN) afpgw-doctor\.invalid\)$/);
    assert.match(line.fix ?? '', /objects\.endpoint/);
  });

  test('all good on Redis and S3: every check ok, exit 0, and the test object is gone', async (t) => {
    if (!needRedis(t)) return;
    const redis = await startRedis({ extraArgs: ['--appendonly', 'yes'] });
    try {
      const r = await doctor({
        metadata: { backend: 'redis', url: redis.url },
        ...objects(),
        ops: { metricsListen: { host: '127.0.0.1', port: 0 } },
        bonjour: { enabled: true, interfaces: ['127.0.0.1'] },
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(
        parse(r.stdout).map((l) => `${l.status} ${l.check}`),
        ['ok config', 'ok listen', 'ok ops', 'ok cache', 'ok cache-space', 'ok redis', 'ok redis-persistence', 'ok redis-memory', 'ok objects', 'ok multicast'],
        r.stdout,
      );
      assert.match(r.stdout, /^ok\s+objects\s+bucket "doctor-bucket" \(prefix "doctor"\) at \S+: a test object was written, read back intact and deleted$/m);
      const store = new S3ObjectStore(s3Config(s3, { prefix: 'doctor' }));
      try {
        const left: string[] = [];
        for await (const o of store.list('')) left.push(o.key);
        assert.deepEqual(left, []);
      } finally {
        await store.close();
      }
    } finally {
      await redis.stop();
    }
  });
});
