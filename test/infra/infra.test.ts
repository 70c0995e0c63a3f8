/**
 * The deployment files in infra/ and docker/: that they fit together and with the code.
 *
 * There is no Docker engine in CI, so docker/compose.yaml is read as YAML (with merge keys, as
 * Compose reads it) and checked against the config loader, the Redis and S3 files and itself.
 * What can run here does: the gateway config loads through the real loader with the
 * environment compose and the Dockerfile give it; redis.conf and sentinel.conf are loaded
 * by a real redis-server; keepalived's check script runs against a live gateway, a closed
 * port and a server that never answers; systemd-analyze verifies the unit.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { parse as parseYaml } from 'yaml';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { BIN } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { needRedis } from '../helpers/redis-server.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const at = (...parts: string[]): string => join(ROOT, ...parts);
const text = (...parts: string[]): string => readFileSync(at(...parts), 'utf8');

// ---- reading compose.yaml ---------------------------------------------------------------

type Mapping = Record<string, unknown>;

function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mapping(v: unknown, what: string): Mapping {
  assert.ok(isMapping(v), `${what} must be a mapping`);
  return v;
}

function strings(v: unknown, what: string): string[] {
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${what} must be a list of strings`);
  return v as string[];
}

/** Compose's variable substitution: ${VAR:-default}, ${VAR-default}, ${VAR}, and $$ for $. */
function interpolate(s: string, env: Readonly<Record<string, string>>, where: string): string {
  return s.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (whole, name: string | undefined, op: string | undefined, dflt: string | undefined) => {
    if (whole === '$$') return '$';
    const value = env[name!];
    if (op === ':-' && (value === undefined || value === '')) return dflt ?? '';
    if (op === '-' && value === undefined) return dflt ?? '';
    assert.ok(value !== undefined, `${where}: \${${name}} has no default; compose would substitute an empty string`);
    return value;
  });
}

const compose = mapping(parseYaml(text('docker', 'compose.yaml'), { merge: true }), 'docker/compose.yaml');
const services = mapping(compose.services, 'services');
const serviceNames = Object.keys(services);
const service = (name: string): Mapping => mapping(services[name], `services.${name}`);

/** A service's environment as the container gets it (no variables set on the host). */
function environmentOf(name: string): Record<string, string> {
  const raw = service(name).environment ?? {};
  const out: Record<string, string> = {};
  const entries: [string, unknown][] = Array.isArray(raw)
    ? strings(raw, `${name}.environment`).map((e) => {
        const i = e.indexOf('=');
        return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
      })
    : Object.entries(mapping(raw, `${name}.environment`));
  for (const [k, v] of entries) out[k] = interpolate(String(v ?? ''), {}, `${name}.environment.${k}`);
  return out;
}

function dependsOn(name: string): string[] {
  const raw = service(name).depends_on;
  if (raw === undefined) return [];
  return Array.isArray(raw) ? strings(raw, `${name}.depends_on`) : Object.keys(mapping(raw, `${name}.depends_on`));
}

/** Everything a service needs running first, directly or through others. */
function dependencyClosure(name: string): Set<string> {
  const seen = new Set<string>();
  const visit = (n: string): void => {
    for (const d of dependsOn(n))
      if (!seen.has(d)) {
        seen.add(d);
        if (serviceNames.includes(d)) visit(d);
      }
  };
  visit(name);
  return seen;
}

interface Mount {
  source: string;
  target: string;
}

function mountsOf(name: string): Mount[] {
  const raw = service(name).volumes ?? [];
  return strings(raw, `${name}.volumes`).map((v) => {
    const [source = '', target = ''] = v.split(':');
    return { source, target };
  });
}

/** `[host:]published:target` → the container port. */
function containerPorts(name: string): { published: number; target: number }[] {
  return strings(service(name).ports ?? [], `${name}.ports`).map((p) => {
    const parts = p.split(':');
    return { published: Number(parts.at(-2)), target: Number(parts.at(-1)) };
  });
}

function commandOf(name: string): string[] {
  return strings(service(name).command ?? [], `${name}.command`);
}

function entrypointOf(name: string): string[] {
  return strings(service(name).entrypoint ?? [], `${name}.entrypoint`);
}

const runsRedisEntry = (name: string): boolean => entrypointOf(name).some((a) => a.endsWith('/redis-entry.sh'));
const sentinelServices = serviceNames.filter((n) => runsRedisEntry(n) && commandOf(n)[0] === 'sentinel');
const redisServers = serviceNames.filter((n) => runsRedisEntry(n) && commandOf(n)[0] === 'server');
/** Servers started as a replica of another (a third argument: the master). */
const redisReplicas = redisServers.filter((n) => commandOf(n).length === 3);
const gatewayServices = serviceNames.filter((n) => {
  const build = service(n).build;
  return isMapping(build) && build.dockerfile === 'docker/Dockerfile';
});

// ---- the other files ----------------------------------------------------------------------

/** `ENV KEY=VALUE` lines of the Dockerfile's last stage. */
function dockerfileEnv(): Record<string, string> {
  const stages = text('docker', 'Dockerfile').split(/^FROM /m);
  const last = stages.at(-1) ?? '';
  const out: Record<string, string> = {};
  for (const m of last.matchAll(/^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)\s*$/gm)) out[m[1]!] = m[2]!;
  return out;
}

function sentinelConf(): { name: string; host: string; port: number; quorum: number; listenPort: number } {
  const conf = text('infra', 'redis', 'sentinel.conf');
  const monitor = /^sentinel monitor (\S+) (\S+) (\d+) (\d+)\s*$/m.exec(conf);
  assert.ok(monitor, 'infra/redis/sentinel.conf has a `sentinel monitor` line');
  const listen = /^port (\d+)\s*$/m.exec(conf);
  return { name: monitor[1]!, host: monitor[2]!, port: Number(monitor[3]), quorum: Number(monitor[4]), listenPort: Number(listen?.[1] ?? 26379) };
}

interface PolicyStatement {
  Effect: string;
  Action: string[];
  Resource: string[];
  Condition?: unknown;
}

function policyStatements(): PolicyStatement[] {
  const doc = mapping(JSON.parse(text('infra', 's3', 'iam-policy.json')), 'iam-policy.json');
  assert.equal(doc.Version, '2012-10-17');
  assert.ok(Array.isArray(doc.Statement), 'iam-policy.json has a Statement list');
  return doc.Statement.map((raw, i) => {
    const s = mapping(raw, `Statement[${i}]`);
    const list = (v: unknown): string[] => (typeof v === 'string' ? [v] : strings(v, `Statement[${i}]`));
    return { Effect: String(s.Effect), Action: list(s.Action), Resource: list(s.Resource), Condition: s.Condition };
  });
}

/** The bucket the minio-init script creates. */
function initBucket(): string {
  const m = /^bucket=(\S+)\s*$/m.exec(text('docker', 'minio-init.sh'));
  assert.ok(m, 'docker/minio-init.sh sets bucket=');
  return m[1]!;
}

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return join(dir, binary);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The gateway config a compose gateway service runs with: its mounted file and its environment. */
async function gatewayConfig(name: string): Promise<GatewayConfig> {
  const env = { ...dockerfileEnv(), ...environmentOf(name) };
  const file = env.AFPGW_CONFIG;
  assert.ok(file, `${name} names its config file with AFPGW_CONFIG`);
  const mount = mountsOf(name).find((m) => m.target === file);
  assert.ok(mount, `${name} mounts a file at ${file} (AFPGW_CONFIG)`);
  return loadConfig({ file: resolve(at('docker'), mount.source), env, cwd: '/var/lib/afp-gateway' });
}

// ---- compose and the gateway config -------------------------------------------------------

describe('docker/compose.yaml', () => {
  test('has the pair: MinIO and its init job, two Redis servers, three sentinels, two gateways', () => {
    assert.deepEqual([...gatewayServices].sort(), ['gw-a', 'gw-b']);
    assert.ok(serviceNames.includes('minio') && serviceNames.includes('minio-init'));
    assert.equal(redisServers.length, 2, 'a master and a replica');
    assert.equal(redisReplicas.length, 1);
    assert.equal(sentinelServices.length, 3);
  });

  test('every dependency is a service; every file it mounts exists', () => {
    for (const name of serviceNames) {
      for (const d of dependsOn(name)) assert.ok(serviceNames.includes(d), `${name} depends on ${d}, which is not a service`);
      for (const m of mountsOf(name))
        if (m.source.startsWith('.')) assert.ok(existsSync(resolve(at('docker'), m.source)), `${name} mounts ${m.source}, which does not exist`);
    }
    // The replica's master, and the master the sentinels watch, are servers of this file.
    for (const r of redisReplicas) assert.ok(redisServers.includes(commandOf(r)[2]!), `${r} replicates ${commandOf(r)[2]}`);
    assert.ok(redisServers.includes(sentinelConf().host), `sentinel.conf monitors ${sentinelConf().host}, a Redis server of compose`);
  });

  test('every ${VARIABLE} has a default, and the gateways get the S3 user that minio-init creates', () => {
    for (const name of serviceNames) environmentOf(name); // throws on a variable without a default
    const init = environmentOf('minio-init');
    for (const gw of gatewayServices) {
      const env = environmentOf(gw);
      assert.equal(env.AFPGW_OBJECTS__ACCESS_KEY_ID, init.GW_S3_ACCESS_KEY, `${gw}'s access key is the user minio-init creates`);
      assert.equal(env.AFPGW_OBJECTS__SECRET_ACCESS_KEY, init.GW_S3_SECRET_KEY, `${gw}'s secret key`);
      for (const r of [...redisServers, ...sentinelServices])
        assert.equal(env.AFPGW_METADATA__PASSWORD, environmentOf(r).REDIS_PASSWORD, `${gw} uses ${r}'s Redis password`);
    }
  });

  test('the sentinels can reach a quorum: quorum <= sentinels, and a failover has a majority', () => {
    const { quorum } = sentinelConf();
    assert.ok(quorum >= 1 && quorum <= sentinelServices.length, `quorum ${quorum} with ${sentinelServices.length} sentinels`);
    assert.ok(sentinelServices.length >= 3, 'three sentinels, so that one may die and two still agree');
  });

  for (const gw of ['gw-a', 'gw-b']) {
    test(`${gw}: its config loads through the real loader, names the sentinels, and waits for a replica`, async () => {
      const cfg = await gatewayConfig(gw);
      const closure = dependencyClosure(gw);
      const sc = sentinelConf();

      assert.equal(cfg.metadata.backend, 'redis');
      if (cfg.metadata.backend !== 'redis') return;
      assert.equal(cfg.metadata.url, undefined);
      const sentinels = cfg.metadata.sentinels ?? [];
      assert.deepEqual(sentinels.map((s) => s.host).sort(), [...sentinelServices].sort(), 'every sentinel of compose, and only those');
      for (const s of sentinels) {
        assert.equal(s.port, sc.listenPort, `${s.host} listens on ${sc.listenPort}`);
        assert.ok(closure.has(s.host), `${gw} starts after ${s.host}`);
      }
      assert.equal(cfg.metadata.sentinelName, sc.name, 'sentinelName is the name sentinel.conf monitors');
      assert.equal(cfg.metadata.waitReplicas, 1);
      assert.ok(cfg.metadata.waitReplicas <= redisReplicas.length, 'no more replicas to WAIT for than there are');
      for (const r of redisReplicas) assert.ok(closure.has(r), `${gw} starts after the replica ${r}`);
      assert.ok(cfg.metadata.password, 'the Redis password comes from the environment');

      assert.equal(cfg.objects.backend, 's3');
      if (cfg.objects.backend !== 's3') return;
      const endpoint = new URL(cfg.objects.endpoint ?? '');
      assert.ok(serviceNames.includes(endpoint.hostname), `the S3 endpoint ${endpoint.hostname} is a service`);
      assert.ok(closure.has(endpoint.hostname) && closure.has('minio-init'), `${gw} starts after MinIO and its bucket`);
      assert.equal(cfg.objects.forcePathStyle, true, 'MinIO needs path-style requests');
      assert.equal(cfg.objects.bucket, initBucket(), 'the bucket minio-init creates');
      assert.ok(cfg.objects.accessKeyId && cfg.objects.secretAccessKey);

      // The container port that compose publishes and probes is the one the gateway listens on.
      const ports = containerPorts(gw);
      assert.equal(ports.length, 1);
      assert.equal(ports[0]!.target, cfg.listen.port);
      assert.equal(ports[0]!.published, gw === 'gw-a' ? 548 : 549);
      const check = strings(mapping(service(gw).healthcheck, `${gw}.healthcheck`).test, `${gw}.healthcheck.test`);
      assert.ok(check.includes('probe') && check.includes(`127.0.0.1:${cfg.listen.port}`), `healthcheck probes 127.0.0.1:${cfg.listen.port}`);
      const entry = /^ENTRYPOINT \["node", "([^"]+)"\]/m.exec(text('docker', 'Dockerfile'));
      assert.ok(entry && check.includes(entry[1]!), 'the healthcheck runs the image’s afp-gateway');

      // The cache (blocks not yet uploaded) is on the service's volume, so a restart keeps it.
      const data = mountsOf(gw).find((m) => !m.source.startsWith('.') && cfg.cache.dir.startsWith(m.target + '/'));
      assert.ok(data, `${cfg.cache.dir} is on a named volume`);
      assert.equal(cfg.bonjour.enabled, false, 'no Bonjour from a bridge network');
    });
  }
});

describe('docs/ha.md', () => {
  test('the node config in "Setting up a pair" is valid and matches infra/', () => {
    const doc = text('docs', 'ha.md');
    const section = doc.slice(doc.indexOf('## Setting up a pair'));
    const block = /^( *)```yaml\n([\s\S]*?)^\1```/m.exec(section);
    assert.ok(block, 'a yaml block in "Setting up a pair"');
    const indent = block[1]!.length;
    const yaml = block[2]!.split('\n').map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join('\n');
    const cfg = parseConfig(parseYaml(yaml), { source: 'docs/ha.md', baseDir: '/etc/afp-gateway' });
    assert.equal(cfg.metadata.backend, 'redis');
    if (cfg.metadata.backend !== 'redis') return;
    assert.equal(cfg.metadata.sentinelName, sentinelConf().name);
    assert.equal(cfg.metadata.sentinels?.length, 3);
    assert.equal(cfg.dataDir, '/var/lib/afp-gateway', 'the state directory of the systemd unit');
    assert.match(text('infra', 'systemd', 'afp-gateway.service'), /^StateDirectory=afp-gateway$/m);
    const objects = cfg.objects;
    if (objects.backend !== 's3') assert.fail('the example uses S3');
    const arn = `arn:aws:s3:::${objects.bucket}/${objects.prefix}/*`;
    assert.ok(policyStatements().some((st) => st.Resource.includes(arn)), 'the IAM policy covers the example bucket and prefix');
  });
});

// ---- Redis --------------------------------------------------------------------------------

describe('infra/redis', () => {
  const children: ChildProcess[] = [];
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'afpgw-infra-redis-'));
  });

  after(async () => {
    for (const c of children)
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit');
      }
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts redis-server on a copy of `conf` (Redis may rewrite its config file) and connects. */
  async function start(conf: string, args: string[]): Promise<Redis> {
    const port = await freePort();
    const child = spawn('redis-server', [conf, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    for (let attempt = 0; ; attempt++) {
      assert.ok(child.exitCode === null, `redis-server ${basename(conf)} exited:\n${output}`);
      const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return client;
      } catch {
        client.disconnect();
        if (attempt > 200) assert.fail(`redis-server ${basename(conf)} did not come up:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  test('redis.conf: a real redis-server accepts it; AOF every second, no eviction', async (t: TestContext) => {
    if (!needRedis(t)) return;
    const conf = join(dir, 'redis.conf');
    await copyFile(at('infra', 'redis', 'redis.conf'), conf);
    const r = await start(conf, ['--appenddirname', 'aof-redis']);
    try {
      const get = async (key: string): Promise<string> => ((await r.config('GET', key)) as string[])[1] ?? '';
      assert.equal(await get('appendonly'), 'yes');
      assert.equal(await get('appendfsync'), 'everysec');
      assert.equal(await get('maxmemory-policy'), 'noeviction');
      assert.equal(await get('protected-mode'), 'yes');
      // One replica in the example setup: refusing writes without it would stop every backup.
      assert.equal(await get('min-replicas-to-write'), '0');
    } finally {
      r.disconnect();
    }
  });

  test('sentinel.conf: a real sentinel accepts it and watches the master with its quorum', async (t: TestContext) => {
    if (!needRedis(t)) return;
    const sc = sentinelConf();
    // A master to watch: a plain redis-server (an empty config file: all defaults).
    await writeFile(join(dir, 'master.conf'), '');
    const master = await start(join(dir, 'master.conf'), ['--save', '']);
    const masterPort = master.options.port!;
    // The monitored host is a compose service name; here the master is on loopback.
    const conf = join(dir, 'sentinel.conf');
    const original = text('infra', 'redis', 'sentinel.conf');
    await writeFile(conf, original.replace(/^sentinel monitor (\S+) \S+ \d+ (\d+)/m, `sentinel monitor $1 127.0.0.1 ${masterPort} $2`));
    const s = await start(conf, ['--sentinel']);
    try {
      const reply = (await s.call('SENTINEL', 'MASTER', sc.name)) as string[];
      const info = new Map<string, string>();
      for (let i = 0; i + 1 < reply.length; i += 2) info.set(reply[i]!, reply[i + 1]!);
      assert.equal(info.get('port'), String(masterPort));
      assert.equal(info.get('quorum'), String(sc.quorum));
      const downAfter = Number(/^sentinel down-after-milliseconds \S+ (\d+)/m.exec(original)?.[1]);
      assert.equal(info.get('down-after-milliseconds'), String(downAfter));
      // A master must be declared down well before a gateway gives up waiting for Redis.
      assert.ok(downAfter <= 10_000, `down-after-milliseconds ${downAfter}`);
    } finally {
      s.disconnect();
      master.disconnect();
    }
  });
});

// ---- keepalived ---------------------------------------------------------------------------

describe('infra/keepalived', () => {
  const script = at('infra', 'keepalived', 'check-afp-gateway.sh');
  let gateway: TestGateway;
  let silent: Server;
  const held: Socket[] = [];

  before(async () => {
    gateway = await startTestGateway();
    // Accepts connections and never answers, like a gateway whose event loop is stuck.
    silent = createServer((socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
  });

  after(async () => {
    for (const s of held) s.destroy();
    silent.close();
    await gateway.stop();
  });

  function runCheck(address: string, timeoutSeconds: number): Promise<{ code: number | null; stderr: string }> {
    const command = `${process.execPath} ${BIN} probe`;
    assert.ok(!/\s/.test(process.execPath + BIN), 'the script splits its command on spaces; these paths have none');
    return new Promise((resolveRun, reject) => {
      const child = spawn('sh', [script], {
        env: {
          ...process.env,
          CHECK_AFP_GATEWAY_COMMAND: command,
          CHECK_AFP_GATEWAY_ADDRESS: address,
          CHECK_AFP_GATEWAY_TIMEOUT: String(timeoutSeconds),
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolveRun({ code, stderr }));
    });
  }

  test('the check script is executable, and keepalived.conf runs it and tracks it', () => {
    assert.ok((statSync(script).mode & 0o111) !== 0, 'keepalived runs it directly: it must be executable');
    assert.match(readFileSync(script, 'utf8'), /^#!\/bin\/sh\n/);
    const conf = text('infra', 'keepalived', 'keepalived.conf').replace(/#.*$/gm, '');
    const block = /vrrp_script\s+(\S+)\s*\{([^}]*)\}/.exec(conf);
    assert.ok(block, 'a vrrp_script block');
    assert.equal(basename(/script\s+"([^"]+)"/.exec(block[2]!)?.[1] ?? ''), 'check-afp-gateway.sh');
    assert.match(conf, new RegExp(`track_script\\s*\\{\\s*${block[1]}\\s*\\}`), 'the instance tracks it');
    // keepalived's own limit must leave the script time to give up by itself.
    const keepalivedTimeout = Number(/\btimeout\s+(\d+)/.exec(block[2]!)?.[1]);
    const scriptTimeout = Number(/CHECK_AFP_GATEWAY_TIMEOUT:-(\d+)/.exec(readFileSync(script, 'utf8'))?.[1]);
    assert.ok(scriptTimeout > 0 && keepalivedTimeout > scriptTimeout, `script ${scriptTimeout} s < keepalived ${keepalivedTimeout} s`);
    // nopreempt works only with state BACKUP.
    assert.match(conf, /^\s*nopreempt\s*$/m);
    assert.match(conf, /^\s*state\s+BACKUP\s*$/m);
  });

  test('exits 0 when the gateway answers', async () => {
    const r = await runCheck(`${gateway.host}:${gateway.port}`, 30);
    assert.equal(r.code, 0, r.stderr);
  });

  test('exits non-zero when nothing listens', async () => {
    const r = await runCheck(`127.0.0.1:${await freePort()}`, 30);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /probe of 127\.0\.0\.1:\d+ failed/);
  });

  test('exits non-zero when the gateway accepts but never answers', async () => {
    const address = silent.address();
    assert.ok(address !== null && typeof address === 'object');
    const r = await runCheck(`127.0.0.1:${address.port}`, 1);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no answer from/);
  });
});

// ---- systemd ------------------------------------------------------------------------------

describe('infra/systemd', () => {
  test('systemd-analyze verify accepts the unit without a warning', async (t: TestContext) => {
    const analyze = onPath('systemd-analyze');
    if (analyze === undefined) {
      if (process.env.CI === 'true') throw new Error('systemd-analyze is required under CI but is not on PATH');
      t.skip('systemd-analyze not installed (apt-get install systemd)');
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'afpgw-unit-'));
    try {
      // verify checks that ExecStart's program exists; use this machine's node if it is
      // not where the unit expects it.
      let unit = text('infra', 'systemd', 'afp-gateway.service');
      if (!existsSync('/usr/bin/node')) unit = unit.replace('/usr/bin/node ', `${process.execPath} `);
      const path = join(dir, 'afp-gateway.service');
      await writeFile(path, unit);
      const r = spawnSync(analyze, ['verify', path], { encoding: 'utf8' });
      const about = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('afp-gateway'));
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(about, [], 'no warning about the unit (an unknown key is only a warning)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---- S3 -----------------------------------------------------------------------------------

/** IAM actions for each S3 API call, and whether they apply to objects or to the bucket. */
const ACTION_FOR: Record<string, { action: string; on: 'object' | 'bucket' }> = {
  PutObject: { action: 's3:PutObject', on: 'object' },
  GetObject: { action: 's3:GetObject', on: 'object' },
  HeadObject: { action: 's3:GetObject', on: 'object' },
  DeleteObject: { action: 's3:DeleteObject', on: 'object' },
  DeleteObjects: { action: 's3:DeleteObject', on: 'object' },
  CreateMultipartUpload: { action: 's3:PutObject', on: 'object' },
  UploadPart: { action: 's3:PutObject', on: 'object' },
  CompleteMultipartUpload: { action: 's3:PutObject', on: 'object' },
  AbortMultipartUpload: { action: 's3:AbortMultipartUpload', on: 'object' },
  ListObjectsV2: { action: 's3:ListBucket', on: 'bucket' },
  ListObjects: { action: 's3:ListBucket', on: 'bucket' },
  HeadBucket: { action: 's3:ListBucket', on: 'bucket' },
};

describe('infra/s3', () => {
  test('the IAM policy allows exactly the actions of the S3 calls in src/objects, on the configured bucket and prefix', async () => {
    const used = new Set<string>();
    const dir = at('src', 'objects');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts')))
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/new\s+(\w+)Command\s*\(/g)) used.add(m[1]!);
    assert.ok(used.size > 0, 'src/objects makes S3 calls');

    const cfg = await gatewayConfig('gw-a');
    if (cfg.objects.backend !== 's3') assert.fail('the gateways use S3');
    const bucketArn = `arn:aws:s3:::${cfg.objects.bucket}`;
    const prefix = cfg.objects.prefix === '' || cfg.objects.prefix.endsWith('/') ? cfg.objects.prefix : `${cfg.objects.prefix}/`;
    const objectArn = `${bucketArn}/${prefix}*`;

    const need = { object: new Set<string>(), bucket: new Set<string>() };
    for (const call of used) {
      const a = ACTION_FOR[call];
      assert.ok(a, `src/objects sends ${call}Command, unknown here: add it to ACTION_FOR with its IAM action, and the action to infra/s3/iam-policy.json`);
      need[a.on].add(a.action);
    }
    const granted = { object: new Set<string>(), bucket: new Set<string>() };
    for (const s of policyStatements()) {
      assert.equal(s.Effect, 'Allow');
      for (const r of s.Resource) {
        const on = r === bucketArn ? 'bucket' : r === objectArn ? 'object' : undefined;
        assert.ok(on, `${r} is neither the bucket ${bucketArn} nor its prefix ${objectArn}`);
        for (const a of s.Action) {
          assert.ok(!a.includes('*'), `no wildcard actions (${a})`);
          granted[on].add(a);
        }
      }
    }
    assert.deepEqual([...granted.object].sort(), [...need.object].sort(), `object actions for ${[...used].join(', ')}`);
    assert.deepEqual([...granted.bucket].sort(), [...need.bucket].sort(), `bucket actions for ${[...used].join(', ')}`);
  });

  test('the lifecycle aborts stale multipart uploads and never expires or archives a live object', () => {
    const doc = mapping(JSON.parse(text('infra', 's3', 'lifecycle.json')), 'lifecycle.json');
    assert.ok(Array.isArray(doc.Rules));
    const rules = doc.Rules.map((r, i) => mapping(r, `Rules[${i}]`));
    assert.ok(
      rules.some((r) => r.Status === 'Enabled' && Number(mapping(r.AbortIncompleteMultipartUpload ?? {}, 'abort').DaysAfterInitiation) >= 1),
      'a rule aborts incomplete multipart uploads',
    );
    for (const r of rules) {
      const expiration = mapping(r.Expiration ?? {}, 'Expiration');
      assert.equal(expiration.Days, undefined, `${String(r.ID)}: live objects must not expire (the gateway's GC deletes blocks)`);
      assert.equal(expiration.Date, undefined, `${String(r.ID)}: live objects must not expire`);
      // A block moved to an archive class cannot be read without a restore.
      assert.equal(r.Transitions, undefined, `${String(r.ID)}: no transitions`);
      assert.equal(r.Transition, undefined, `${String(r.ID)}: no transitions`);
    }
  });
});

// ---- the image ----------------------------------------------------------------------------

describe('docker/Dockerfile', () => {
  test('ships the compiled src/ and bin/ only, as a non-root user, where tsconfig puts them', () => {
    const dockerfile = text('docker', 'Dockerfile');
    const last = dockerfile.split(/^FROM /m).at(-1) ?? '';
    for (const m of last.matchAll(/^COPY\s+(.+)$/gm)) assert.doesNotMatch(m[1]!, /\b(test|bench)\b/, `the runtime stage copies ${m[1]}`);
    assert.match(last, /^USER\s+(?!root\b|0\b)\S+/m, 'the runtime stage runs as a non-root user');
    const ignored = text('.dockerignore').split('\n').map((l) => l.trim());
    for (const d of ['test', 'bench', 'node_modules', 'dist', '.git']) assert.ok(ignored.includes(d), `.dockerignore leaves out ${d}`);
    // The build copies dist/src: that is where tsc writes src/ with this tsconfig.
    const ts = mapping(mapping(JSON.parse(text('tsconfig.json')), 'tsconfig.json').compilerOptions, 'compilerOptions');
    assert.equal(resolve(ROOT, String(ts.rootDir)), ROOT);
    assert.match(dockerfile, new RegExp(`COPY --from=build /src/${String(ts.outDir)}/src \\./dist/src`));
    assert.match(text('bin', 'afp-gateway.js'), /\.\.\/dist\/src\/cli\/main\.js/);
  });
});
