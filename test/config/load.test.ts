import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { defaultBonjourHostName } from '../../src/config/schema.js';
import { GiB, KiB, MiB, TiB } from '../../src/config/size.js';
import { scratch } from './fixture.js';

test('no file and no env: the embedded default', async () => {
  const cwd = '/srv/try-out';
  const cfg = await loadConfig({ env: {}, cwd });
  const short = [...(hostname().split('.')[0] ?? '')].slice(0, 31).join('') || 'afp-gateway';
  assert.deepEqual(cfg, {
    serverName: short,
    dataDir: '/srv/try-out/afp-data',
    listen: { host: '0.0.0.0', port: 548, fallbackPort: 10548 },
    volumes: [{ name: 'TimeMachine', timeMachine: true, sizeLimit: null, users: [], blockSize: 4 * MiB, allowGuest: false, caseSensitive: false }],
    metadata: { backend: 'embedded', path: '/srv/try-out/afp-data/meta', sync: 'periodic', syncIntervalMs: 1000 },
    objects: { backend: 'fs', path: '/srv/try-out/afp-data/objects', gcGraceSeconds: 900, gcIntervalSeconds: 60 },
    cache: { dir: '/srv/try-out/afp-data/cache', size: 10 * GiB, dirtyLimit: 2 * GiB, uploadConcurrency: 8, uploadDelayMs: 2000, syncTimeoutSeconds: 60, shutdownDrainSeconds: 30 },
    auth: {
      uams: ['DHX2', 'DHCAST128'],
      loginThrottle: { freeFailures: 3, maxDelayMs: 10000 },
      scrypt: { N: 32768, r: 8, p: 1 },
    },
    dsi: {
      requestQuantum: MiB,
      replayCacheSize: 128,
      tickleSeconds: 30,
      idleTimeoutSeconds: 120,
      maxSessions: 256,
      maxConnectionsPerAddress: 32,
      disconnectedSessionSeconds: 86400,
      sleepHours: 10,
    },
    ops: { metricsListen: { host: '127.0.0.1', port: 9548 }, controlSocket: '/srv/try-out/afp-data/control.sock' },
    bonjour: { enabled: true, interfaces: null, model: 'TimeCapsule8,119', hostName: defaultBonjourHostName() },
    log: { level: 'info' },
  });
});

test('an empty file gives the defaults too', async () => {
  const s = await scratch();
  try {
    const file = await s.write('empty.yaml', '# nothing here\n');
    const fromFile = await loadConfig({ file, env: {} });
    const bare = await loadConfig({ env: {}, cwd: s.dir });
    assert.deepEqual(fromFile, bare);
  } finally {
    await s.done();
  }
});

const FULL = `
serverName: Büro Backup
dataDir: /var/lib/afp-gateway
listen: { host: "::", port: 10548, fallbackPort: null }
volumes:
  - name: TimeMachine
    sizeLimit: 2TiB
    users: [alice, bob]
    blockSize: 8MiB
    password: s3cret
  - name: Scratch
    timeMachine: false
    sizeLimit: 500GB
    blockSize: 65536
    allowGuest: true
metadata:
  backend: redis
  sentinels:
    - host: s1.example
      port: 26379
    - host: s2.example
  sentinelName: afp
  password: hunter2
  keyPrefix: office
  waitReplicas: 1
  waitTimeoutMs: 2500
objects:
  backend: s3
  endpoint: https://minio.example:9000
  region: eu-central-1
  bucket: tm-backups
  prefix: branch-7/
  forcePathStyle: true
  requestChecksumCalculation: WHEN_REQUIRED
  responseChecksumValidation: WHEN_REQUIRED
  accessKeyId: AKIAEXAMPLE
  secretAccessKey: wJalrXUtnFEMI
  maxAttempts: 3
  timeoutMs: 60000
cache:
  dir: /var/cache/afp-gateway
  size: 1.5TiB
  dirtyLimit: 64 GiB
  uploadConcurrency: 16
auth:
  uams: [DHX2, Cleartxt Passwrd, No User Authent]
  loginThrottle: { freeFailures: 5, maxDelayMs: 30000 }
  scrypt: { N: 16384, r: 8, p: 2 }
dsi:
  requestQuantum: 128KiB
  replayCacheSize: 512
  tickleSeconds: 15
  idleTimeoutSeconds: 60
  maxSessions: 32
  maxConnectionsPerAddress: 4
  disconnectedSessionSeconds: 3600
ops:
  metricsListen: null
  controlSocket: run/ctl.sock
log:
  level: debug
`;

test('a full file: every key read, sizes in bytes', async () => {
  const s = await scratch();
  try {
    const file = await s.write('config.yaml', FULL);
    const cfg = await loadConfig({ file, env: {} });
    assert.equal(cfg.serverName, 'Büro Backup');
    assert.equal(cfg.dataDir, '/var/lib/afp-gateway');
    assert.deepEqual(cfg.listen, { host: '::', port: 10548, fallbackPort: null });
    assert.deepEqual(cfg.volumes, [
      { name: 'TimeMachine', timeMachine: true, sizeLimit: 2 * TiB, users: ['alice', 'bob'], blockSize: 8 * MiB, password: 's3cret', allowGuest: false, caseSensitive: false },
      { name: 'Scratch', timeMachine: false, sizeLimit: 500e9, users: [], blockSize: 64 * KiB, allowGuest: true, caseSensitive: false },
    ]);
    assert.deepEqual(cfg.metadata, {
      backend: 'redis',
      sentinels: [
        { host: 's1.example', port: 26379 },
        { host: 's2.example', port: 26379 },
      ],
      sentinelName: 'afp',
      password: 'hunter2',
      keyPrefix: 'office',
      waitReplicas: 1,
      waitTimeoutMs: 2500,
      failoverWaitSeconds: 30,
    });
    assert.deepEqual(cfg.objects, {
      backend: 's3',
      endpoint: 'https://minio.example:9000',
      region: 'eu-central-1',
      bucket: 'tm-backups',
      prefix: 'branch-7/',
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI',
      maxAttempts: 3,
      timeoutMs: 60000,
      gcGraceSeconds: 900,
      gcIntervalSeconds: 60,
    });
    assert.deepEqual(cfg.cache, { dir: '/var/cache/afp-gateway', size: 1.5 * TiB, dirtyLimit: 64 * GiB, uploadConcurrency: 16, uploadDelayMs: 2000, syncTimeoutSeconds: 60, shutdownDrainSeconds: 30 });
    assert.deepEqual(cfg.auth, {
      uams: ['DHX2', 'Cleartxt Passwrd', 'No User Authent'],
      loginThrottle: { freeFailures: 5, maxDelayMs: 30000 },
      scrypt: { N: 16384, r: 8, p: 2 },
    });
    assert.deepEqual(cfg.dsi, {
      requestQuantum: 128 * KiB,
      replayCacheSize: 512,
      tickleSeconds: 15,
      idleTimeoutSeconds: 60,
      maxSessions: 32,
      maxConnectionsPerAddress: 4,
      disconnectedSessionSeconds: 3600,
      sleepHours: 10,
    });
    assert.deepEqual(cfg.ops, { metricsListen: null, controlSocket: join(s.dir, 'run/ctl.sock') }, 'relative to the file');
    assert.deepEqual(cfg.log, { level: 'debug' });
  } finally {
    await s.done();
  }
});

test('redis by url, with derived default paths still under dataDir', async () => {
  const cfg = parseConfig({ dataDir: '/d', metadata: { backend: 'redis', url: 'rediss://:pw@redis:6380/2' } });
  assert.equal(cfg.metadata.backend, 'redis');
  if (cfg.metadata.backend === 'redis') assert.equal(cfg.metadata.url, 'rediss://:pw@redis:6380/2');
  assert.deepEqual(cfg.objects, { backend: 'fs', path: '/d/objects', gcGraceSeconds: 900, gcIntervalSeconds: 60 });
  assert.equal(cfg.cache.dir, '/d/cache');
});

test('dirtyLimit defaults to the cache size when the cache is under 2 GiB', () => {
  assert.equal(parseConfig({ cache: { size: '1GiB' } }).cache.dirtyLimit, GiB);
  assert.equal(parseConfig({ cache: { size: '3GiB' } }).cache.dirtyLimit, 2 * GiB);
});

test('precedence: file < env < CLI override', async () => {
  const s = await scratch();
  try {
    const file = await s.write('config.yaml', 'listen:\n  port: 1548\n  host: 127.0.0.1\nlog:\n  level: warn\n');
    const fileOnly = await loadConfig({ file, env: {} });
    assert.equal(fileOnly.listen.port, 1548);

    const env = { AFPGW_LISTEN__PORT: '10548', AFPGW_LOG__LEVEL: 'debug', PATH: '/usr/bin', AFPGW_CONFIG: '/ignored.yaml' };
    const withEnv = await loadConfig({ file, env });
    assert.equal(withEnv.listen.port, 10548);
    assert.equal(withEnv.listen.host, '127.0.0.1', 'keys the env does not name stay from the file');
    assert.equal(withEnv.log.level, 'debug');

    const withCli = await loadConfig({ file, env, overrides: { port: 2548, dataDir: '/tmp/elsewhere' } });
    assert.equal(withCli.listen.port, 2548);
    assert.equal(withCli.dataDir, '/tmp/elsewhere');
    assert.equal(withCli.cache.dir, '/tmp/elsewhere/cache');
  } finally {
    await s.done();
  }
});

test('env: UPPER_SNAKE segments map to camelCase keys; values are YAML scalars', async () => {
  const cfg = await loadConfig({
    cwd: '/w',
    env: {
      AFPGW_SERVER_NAME: 'Branch 7',
      AFPGW_METADATA__BACKEND: 'redis',
      AFPGW_METADATA__URL: 'redis://redis:6379',
      AFPGW_METADATA__WAIT_REPLICAS: '1',
      AFPGW_OBJECTS__BACKEND: 's3',
      AFPGW_OBJECTS__BUCKET: 'tm',
      AFPGW_OBJECTS__FORCE_PATH_STYLE: 'true',
      AFPGW_OBJECTS__ACCESS_KEY_ID: 'AKIA',
      AFPGW_OBJECTS__SECRET_ACCESS_KEY: '0123',
      AFPGW_LISTEN__FALLBACK_PORT: 'null',
      AFPGW_AUTH__UAMS: '[DHX2, Cleartxt Passwrd]',
      AFPGW_AUTH__SCRYPT__N: '16384',
      AFPGW_VOLUMES__0__NAME: 'Backups',
      AFPGW_VOLUMES__0__SIZE_LIMIT: '2TB',
      AFPGW_VOLUMES__0__PASSWORD: '00001234',
      AFPGW_CACHE__SIZE: '20GiB',
    },
  });
  assert.equal(cfg.serverName, 'Branch 7');
  assert.deepEqual(cfg.metadata, {
    backend: 'redis',
    url: 'redis://redis:6379',
    sentinelName: 'mymaster',
    keyPrefix: 'afpgw',
    waitReplicas: 1,
    waitTimeoutMs: 1000,
    failoverWaitSeconds: 30,
  });
  assert.equal(cfg.objects.backend, 's3');
  if (cfg.objects.backend === 's3') {
    assert.equal(cfg.objects.bucket, 'tm');
    assert.equal(cfg.objects.forcePathStyle, true);
    assert.equal(cfg.objects.accessKeyId, 'AKIA');
    // A string field keeps the text as written: YAML would have made 0123 the number 123.
    assert.equal(cfg.objects.secretAccessKey, '0123');
  }
  assert.equal(cfg.listen.fallbackPort, null);
  assert.deepEqual(cfg.auth.uams, ['DHX2', 'Cleartxt Passwrd']);
  assert.equal(cfg.auth.scrypt.N, 16384);
  assert.deepEqual(cfg.volumes, [
    { name: 'Backups', timeMachine: true, sizeLimit: 2e12, users: [], blockSize: 4 * MiB, password: '00001234', allowGuest: false, caseSensitive: false },
  ]);
  assert.equal(cfg.cache.size, 20 * GiB);
});

test('env: a whole section as a YAML flow mapping, refined by a key inside it', async () => {
  const cfg = await loadConfig({ env: { AFPGW_LISTEN: '{host: 10.0.0.5, port: 1548}', AFPGW_LISTEN__PORT: '2548' } });
  assert.deepEqual(cfg.listen, { host: '10.0.0.5', port: 2548, fallbackPort: 10548 });
});

test('relative paths: from the file against its directory; from env and CLI against the cwd', async () => {
  const s = await scratch();
  try {
    const file = await s.write('etc/afp/config.yaml', 'dataDir: data\ncache:\n  dir: ../cache\nobjects:\n  backend: fs\n  path: /abs/objects\n');
    const etc = join(s.dir, 'etc/afp');
    const cfg = await loadConfig({ file, env: {} });
    assert.equal(cfg.dataDir, join(etc, 'data'));
    assert.equal(cfg.cache.dir, join(s.dir, 'etc/cache'));
    assert.equal(cfg.objects.backend === 'fs' && cfg.objects.path, '/abs/objects');
    assert.equal(cfg.metadata.backend === 'embedded' && cfg.metadata.path, join(etc, 'data/meta'));

    // A relative --config is itself taken from the cwd.
    const rel = await loadConfig({ file: 'etc/afp/config.yaml', cwd: s.dir, env: {} });
    assert.equal(rel.dataDir, join(etc, 'data'));

    const cwd = join(s.dir, 'work');
    const over = await loadConfig({ file, cwd, env: { AFPGW_CACHE__DIR: 'c' }, overrides: { dataDir: 'd' } });
    assert.equal(over.dataDir, join(cwd, 'd'));
    assert.equal(over.cache.dir, join(cwd, 'c'));
    assert.equal(over.metadata.backend === 'embedded' && over.metadata.path, join(cwd, 'd/meta'));

    // With no file, relative paths are taken from the cwd.
    const bare = await loadConfig({ cwd, env: { AFPGW_DATA_DIR: 'x' } });
    assert.equal(bare.dataDir, join(cwd, 'x'));

    // A default dataDir is next to the config file.
    const file2 = await s.write('srv/config.yaml', 'log: { level: warn }\n');
    assert.equal((await loadConfig({ file: file2, env: {} })).dataDir, join(s.dir, 'srv/afp-data'));
  } finally {
    await s.done();
  }
});

test('defaults are fresh objects: changing one loaded config does not leak into the next', async () => {
  const a = await loadConfig({ env: {} });
  a.volumes[0]!.users.push('mallory');
  a.auth.uams.push('No User Authent');
  const b = await loadConfig({ env: {} });
  assert.deepEqual(b.volumes[0]!.users, []);
  assert.deepEqual(b.auth.uams, ['DHX2', 'DHCAST128']);
});

test('parseConfig reports problems under the given source name', () => {
  assert.throws(
    () => parseConfig({ listen: { port: 70000 } }, { source: 'generated.yaml' }),
    (err: unknown) => err instanceof ConfigError && err.message === 'generated.yaml: listen.port: must be an integer between 0 and 65535',
  );
});
