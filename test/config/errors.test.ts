import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { scratch } from './fixture.js';

/** Loads `yaml` as config.yaml (with `env`) and returns the lines of the ConfigError. */
async function problems(yaml: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const s = await scratch();
  try {
    const file = yaml === undefined ? undefined : await s.write('config.yaml', yaml);
    await loadConfig({ file: file === undefined ? undefined : 'config.yaml', cwd: s.dir, env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.message.split('\n').length, err.problems.length);
    return err.message.split('\n');
  } finally {
    await s.done();
  }
  assert.fail('expected the config to be rejected');
}

async function rejects(yaml: string | undefined, line: string, env?: NodeJS.ProcessEnv): Promise<void> {
  const got = await problems(yaml, env);
  assert.ok(got.includes(line), `expected\n  ${line}\namong\n  ${got.join('\n  ')}`);
}

test('unknown key, with a hint when it is close to a real one', async () => {
  await rejects('listen:\n  prot: 548\n', 'config.yaml: listen.prot: unknown key (did you mean "port"?)');
  await rejects('colour: blue\n', 'config.yaml: colour: unknown key');
  await rejects('volumes:\n  - name: TM\n    block_size: 1MiB\n', 'config.yaml: volumes[0].block_size: unknown key (did you mean "blockSize"?)');
});

test('a key of the other backend says so', async () => {
  await rejects('metadata:\n  backend: embedded\n  url: redis://x\n', 'config.yaml: metadata.url: is not a setting of backend "embedded"');
});

test('wrong type', async () => {
  await rejects('listen:\n  port: "548x"\n', 'config.yaml: listen.port: must be a number, not a string');
  await rejects('volumes:\n  - name: TM\n    timeMachine: yes\n', 'config.yaml: volumes[0].timeMachine: must be true or false, not a string');
  await rejects('volumes: TM\n', 'config.yaml: volumes: must be a list, not a string');
  await rejects('cache: 10GiB\n', 'config.yaml: cache: must be a mapping, not a string');
  await rejects('- a\n- b\n', 'config.yaml: (root): must be a mapping of settings');
});

test('impossible or malformed sizes', async () => {
  await rejects('cache:\n  size: lots\n', 'config.yaml: cache.size: "lots" is not a size (use a byte count or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB)');
  await rejects('cache:\n  size: 0.1KiB\n', 'config.yaml: cache.size: "0.1KiB" is not a whole number of bytes');
  await rejects('cache:\n  size: 0\n', 'config.yaml: cache.size: must be greater than 0');
  await rejects('cache:\n  size: -5\n', 'config.yaml: cache.size: -5 is negative');
  await rejects('cache:\n  size: true\n', 'config.yaml: cache.size: must be a byte count or a size such as "4MiB"');
  await rejects('dsi:\n  requestQuantum: 1KiB\n', 'config.yaml: dsi.requestQuantum: must be between 32000 bytes and 16 MiB');
  await rejects('volumes:\n  - name: TM\n    sizeLimit: 0\n', 'config.yaml: volumes[0].sizeLimit: must be greater than 0 (leave it out or use null for no limit)');
});

test('dirtyLimit larger than the cache', async () => {
  await rejects('cache:\n  size: 1GiB\n  dirtyLimit: 2GiB\n', 'config.yaml: cache.dirtyLimit: must not exceed size (2 GiB > 1 GiB)');
});

test('dirtyLimit smaller than one block', async () => {
  await rejects(
    'volumes:\n  - name: TM\n    blockSize: 64MiB\ncache:\n  dirtyLimit: 32MiB\n',
    'config.yaml: cache.dirtyLimit: must be at least the largest volume blockSize (32 MiB < 64 MiB)',
  );
});

test('block size not a power of two, or out of range', async () => {
  const why = 'must be a power of two between 64 KiB and 64 MiB';
  await rejects('volumes:\n  - name: TM\n    blockSize: 3MiB\n', `config.yaml: volumes[0].blockSize: ${why}`);
  await rejects('volumes:\n  - name: TM\n    blockSize: 32KiB\n', `config.yaml: volumes[0].blockSize: ${why}`);
  await rejects('volumes:\n  - name: TM\n    blockSize: 128MiB\n', `config.yaml: volumes[0].blockSize: ${why}`);
});

test('bad UAM, duplicate UAM, empty UAM list', async () => {
  await rejects(
    'auth:\n  uams: [DHX2, Kerberos]\n',
    'config.yaml: auth.uams[1]: must be one of "DHX2", "DHCAST128", "Cleartxt Passwrd", "No User Authent"',
  );
  await rejects('auth:\n  uams: [DHX2, DHX2]\n', 'config.yaml: auth.uams[1]: lists "DHX2" twice');
  await rejects('auth:\n  uams: []\n', 'config.yaml: auth.uams: must list at least one UAM');
});

test('duplicate volume names, ignoring case', async () => {
  await rejects(
    'volumes:\n  - name: Backups\n  - name: BACKUPS\n',
    'config.yaml: volumes[1].name: duplicates the name of volumes[0] (names are compared ignoring case)',
  );
});

test('volume name and password limits', async () => {
  await rejects(`volumes:\n  - name: ${'x'.repeat(28)}\n`, 'config.yaml: volumes[0].name: must be 1 to 27 characters (got 28)');
  await rejects('volumes:\n  - name: "a:b"\n', 'config.yaml: volumes[0].name: must not contain ":"');
  await rejects('volumes:\n  - name: TM\n    password: "123456789"\n', 'config.yaml: volumes[0].password: must be 1 to 8 bytes (AFP volume passwords are 8 bytes)');
  await rejects('volumes: []\n', 'config.yaml: volumes: must list at least one volume');
  await rejects('volumes:\n  - timeMachine: true\n', 'config.yaml: volumes[0].name: is required');
});

test('redis needs exactly one of url or sentinels', async () => {
  const why = 'config.yaml: metadata: exactly one of url or sentinels must be given';
  await rejects('metadata:\n  backend: redis\n', why);
  await rejects('metadata:\n  backend: redis\n  url: redis://r\n  sentinels: [{host: s}]\n', why);
  await rejects('metadata:\n  backend: redis\n  url: http://r\n', 'config.yaml: metadata.url: must be a URL starting with redis:// or rediss://');
  await rejects('metadata:\n  backend: memcached\n', 'config.yaml: metadata.backend: must be one of "embedded", "redis"');
  await rejects('metadata:\n  url: redis://r\n', 'config.yaml: metadata.backend: is required (one of "embedded", "redis")');
});

test('s3 needs a bucket', async () => {
  await rejects('objects:\n  backend: s3\n', 'config.yaml: objects.bucket: is required');
  await rejects('objects:\n  backend: s3\n  bucket: b\n  secretAccessKey: x\n', 'config.yaml: objects.accessKeyId: accessKeyId and secretAccessKey must be given together');
  await rejects('objects:\n  backend: s3\n  bucket: b\n  endpoint: minio:9000\n', 'config.yaml: objects.endpoint: must be a URL starting with http:// or https://');
});

test('other ranges', async () => {
  await rejects('listen:\n  port: 70000\n', 'config.yaml: listen.port: must be an integer between 0 and 65535');
  await rejects('auth:\n  scrypt:\n    N: 1000\n', 'config.yaml: auth.scrypt.N: must be a power of two between 1024 and 1048576');
  await rejects('dsi:\n  idleTimeoutSeconds: 30\n', 'config.yaml: dsi.idleTimeoutSeconds: must be greater than tickleSeconds (30)');
  await rejects('dsi:\n  replayCacheSize: 8\n', 'config.yaml: dsi.replayCacheSize: must be an integer between 32 and 65535');
  await rejects('log:\n  level: loud\n', 'config.yaml: log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal"');
  await rejects(`serverName: "${'n'.repeat(32)}"\n`, 'config.yaml: serverName: must be 1 to 31 characters (got 32)');
  await rejects('metadata:\n  backend: redis\n  url: redis://r\n  keyPrefix: "{afp}"\n', 'config.yaml: metadata.keyPrefix: must not contain "{" or "}"');
});

test('every problem is reported, not just the first', async () => {
  const got = await problems('listen:\n  port: x\nlog:\n  level: loud\ncache:\n  nope: 1\n');
  assert.deepEqual(got.sort(), [
    'config.yaml: cache.nope: unknown key',
    'config.yaml: listen.port: must be a number, not a string',
    'config.yaml: log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal"',
  ]);
});

test('YAML syntax errors and duplicate keys name the line', async () => {
  await rejects('listen:\n  port: 548\n  port: 549\n', 'config.yaml: line 3, column 3: duplicate key');
  const got = await problems('listen: [548\n');
  assert.ok(got.every((l) => l.startsWith('config.yaml: line ')), got.join('\n'));
});

test('a missing file is named', async () => {
  await assert.rejects(loadConfig({ file: '/nonexistent/afp.yaml', env: {} }), (err: unknown) => {
    return err instanceof ConfigError && err.message === '/nonexistent/afp.yaml: config file not found';
  });
});

test('env: an unknown key names the variable', async () => {
  await rejects(undefined, 'AFPGW_LISTEN__PROT: listen.prot: unknown key (did you mean "port"?)', { AFPGW_LISTEN__PROT: '548' });
  await rejects(undefined, 'AFPGW_COLOUR: colour: unknown key', { AFPGW_COLOUR: 'blue' });
  await rejects(undefined, 'AFPGW_LISTEN___PORT: not a setting name (UPPER_SNAKE words joined by "__", e.g. AFPGW_LISTEN__PORT)', {
    AFPGW_LISTEN___PORT: '1',
  });
});

test('env: a bad value names the variable, not the file', async () => {
  await rejects('listen:\n  port: 548\n', 'AFPGW_LISTEN__PORT: listen.port: must be a number, not a string', { AFPGW_LISTEN__PORT: 'high' });
  await rejects(undefined, 'AFPGW_CACHE__DIRTY_LIMIT: cache.dirtyLimit: must not exceed size (20 GiB > 10 GiB)', {
    AFPGW_CACHE__DIRTY_LIMIT: '20GiB',
  });
  // The file has no metadata section, so the variable that chose redis is to blame.
  await rejects('log: { level: info }\n', 'AFPGW_METADATA__BACKEND: metadata: exactly one of url or sentinels must be given', {
    AFPGW_METADATA__BACKEND: 'redis',
  });
  await rejects(undefined, 'AFPGW_VOLUMES__0__PASSWORD: volumes[0].name: is required', { AFPGW_VOLUMES__0__PASSWORD: 'pw' });
  // The wording after the prefix is the yaml package's.
  const got = await problems(undefined, { AFPGW_AUTH__UAMS: '[DHX2' });
  assert.ok(got.some((l) => l.startsWith('AFPGW_AUTH__UAMS: auth.uams: not a valid YAML value: line 1')), got.join('\n'));
});

test('CLI overrides are named as flags', async () => {
  const s = await scratch();
  try {
    await assert.rejects(loadConfig({ cwd: s.dir, env: {}, overrides: { port: -1 } }), (err: unknown) => {
      return err instanceof ConfigError && err.message === '--port: listen.port: must be an integer between 0 and 65535';
    });
  } finally {
    await s.done();
  }
});
