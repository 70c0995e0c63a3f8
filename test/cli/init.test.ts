import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { GiB } from '../../src/config/size.js';
import { BIN, runCli } from '../helpers/cli.js';

/** The loader as serve would run it on this file, without this process's AFPGW_* variables. */
const load = (file: string) => loadConfig({ file, env: {} });

const TB = 1000 ** 4;

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

/**
 * Every setting the file sets (a line that is not a comment) sits under a comment saying what
 * it is for; returns the lines that do not.
 */
function uncommentedSettings(text: string): string[] {
  const lines = text.split('\n');
  return lines.filter((l, i) => l.trim() !== '' && !l.trimStart().startsWith('#') && !(lines[i - 1] ?? '').trimStart().startsWith('#'));
}

/** The file with every commented-out key switched on (keys are lower camelCase; notes are sentences). */
function uncommentKeys(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/^(\s*)# (\s*)([a-z][A-Za-z]*:(?: .*)?)$/, '$1$2$3'))
    .join('\n');
}

describe('afp-gateway init', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'afpgw-init-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('flags: embedded metadata and fs objects give a file the loader reads back with those values', async () => {
    const file = join(dir, 'embedded.yaml');
    const r = await runCli(['init', '--config', file, '--server-name', 'Office Backup', '--data-dir', './data', '--cache-size', '20GiB', '--volume', 'Backups', '--size-limit', '2TB', '--bonjour', 'no']);
    assert.equal(r.code, 0, r.stderr);
    const c = await load(file);
    assert.equal(c.serverName, 'Office Backup');
    // Relative to the file, as serve resolves it.
    assert.equal(c.dataDir, join(dir, 'data'));
    assert.equal(c.cache.size, 20 * GiB);
    assert.equal(c.cache.dir, join(dir, 'data', 'cache'));
    assert.deepEqual(c.metadata, { backend: 'embedded', path: join(dir, 'data', 'meta'), sync: 'periodic', syncIntervalMs: 1000 });
    assert.equal(c.objects.backend, 'fs');
    assert.equal(c.objects.backend === 'fs' && c.objects.path, join(dir, 'data', 'objects'));
    assert.deepEqual(
      c.volumes.map((v) => [v.name, v.sizeLimit, v.timeMachine]),
      [['Backups', 2 * TB, true]],
    );
    assert.equal(c.bonjour.enabled, false);
    // The next steps name the file.
    assert.match(r.stdout, new RegExp(`afp-gateway doctor --config ${file}\\n`));
    assert.match(r.stdout, new RegExp(`afp-gateway user add NAME --config ${file}\\n`));
    assert.match(r.stdout, /systemctl enable --now afp-gateway|afp-gateway serve --config/);
    assert.equal(await mode(file), 0o640);
  });

  test('flags: redis with sentinels and s3 give a file the loader reads back with those values', async () => {
    const file = join(dir, 'redis-s3.yaml');
    const r = await runCli([
      'init', '--config', file, '--yes', '--data-dir', '/var/lib/afp-gateway',
      '--redis-sentinels', 'sentinel-1,sentinel-2:26380,[fd00::3]:26379', '--redis-master', 'afpgw',
      '--s3-endpoint', 'http://minio.lan:9000', '--s3-region', 'eu-central-1', '--s3-bucket', 'timemachine', '--s3-prefix', 'office/',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const c = await load(file);
    assert.equal(c.metadata.backend, 'redis');
    assert.ok(c.metadata.backend === 'redis');
    assert.deepEqual(c.metadata.sentinels, [
      { host: 'sentinel-1', port: 26379 },
      { host: 'sentinel-2', port: 26380 },
      { host: 'fd00::3', port: 26379 },
    ]);
    assert.equal(c.metadata.sentinelName, 'afpgw');
    assert.equal(c.metadata.url, undefined);
    assert.equal(c.metadata.password, undefined);
    assert.ok(c.objects.backend === 's3');
    assert.equal(c.objects.endpoint, 'http://minio.lan:9000');
    assert.equal(c.objects.region, 'eu-central-1');
    assert.equal(c.objects.bucket, 'timemachine');
    assert.equal(c.objects.prefix, 'office/');
    // An endpoint means MinIO or the like: path-style unless told otherwise.
    assert.equal(c.objects.forcePathStyle, true);
    assert.equal(c.objects.accessKeyId, undefined);
    assert.equal(c.dataDir, '/var/lib/afp-gateway');
    // No secret in the file: the next steps say where the keys go instead.
    assert.match(r.stdout, /AFPGW_OBJECTS__ACCESS_KEY_ID=/);
    assert.match(r.stdout, /AFPGW_OBJECTS__SECRET_ACCESS_KEY=/);
    assert.match(r.stdout, /AFPGW_METADATA__PASSWORD=/);
    assert.equal(await mode(file), 0o640);
  });

  test('answers piped on stdin, one per line, in the order asked; an empty line or the end takes the default', async () => {
    const file = join(dir, 'piped.yaml');
    const answers = [
      'Branch Office', // serverName
      './state', // dataDir
      '', // cache.dir: under dataDir
      '50GiB', // cache.size
      'redis', // metadata.backend
      'redis://10.0.0.5:6379/2', // metadata.url
      's3', // objects.backend
      '', // objects.endpoint: AWS
      'eu-west-1', // objects.region
      'tm-bucket', // objects.bucket
      // stdin ends: the prefix, path style and everything after take their defaults
    ];
    const r = await runCli(['init', '--config', file], answers.join('\n') + '\n');
    assert.equal(r.code, 0, r.stderr);
    const c = await load(file);
    assert.equal(c.serverName, 'Branch Office');
    assert.equal(c.dataDir, join(dir, 'state'));
    assert.equal(c.cache.size, 50 * GiB);
    assert.ok(c.metadata.backend === 'redis');
    assert.equal(c.metadata.url, 'redis://10.0.0.5:6379/2');
    assert.ok(c.objects.backend === 's3');
    assert.equal(c.objects.endpoint, undefined);
    assert.equal(c.objects.region, 'eu-west-1');
    assert.equal(c.objects.bucket, 'tm-bucket');
    assert.equal(c.objects.prefix, '');
    assert.equal(c.objects.forcePathStyle, false);
    assert.deepEqual(
      c.volumes.map((v) => [v.name, v.sizeLimit, v.timeMachine]),
      [['TimeMachine', null, true]],
    );
    assert.equal(c.bonjour.enabled, true);
  });

  test('a required answer missing from stdin is named, and nothing is written', async () => {
    const file = join(dir, 'no-bucket.yaml');
    const r = await runCli(['init', '--config', file], ['', '', '', '', '', 's3', '', ''].join('\n') + '\n');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /objects\.bucket: an answer is needed/);
    assert.equal(existsSync(file), false);
  });

  test('refuses to overwrite an existing file without --force, and replaces it with --force', async () => {
    const file = join(dir, 'existing.yaml');
    await writeFile(file, 'serverName: Mine\n');
    const r = await runCli(['init', '--config', file, '--yes']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exists; give --force to replace it/);
    assert.equal(await readFile(file, 'utf8'), 'serverName: Mine\n');
    const forced = await runCli(['init', '--config', file, '--yes', '--force', '--server-name', 'Theirs']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal((await load(file)).serverName, 'Theirs');
  });

  test('a bad answer is refused with a message naming the setting, and nothing is written', async () => {
    const cases: { args: string[]; input?: string; says: RegExp }[] = [
      { args: ['--cache-size', 'lots'], says: /--cache-size "lots": cache\.size: "lots" is not a size/ },
      { args: ['--volume', 'Time:Machine'], says: /--volume "Time:Machine": volumes\[0\]\.name: must not contain ":"/ },
      { args: ['--size-limit', '0'], says: /volumes\[0\]\.sizeLimit: must be greater than 0/ },
      { args: ['--redis-url', 'http://redis:6379'], says: /metadata\.url: must be a URL starting with redis:\/\/ or rediss:\/\// },
      { args: ['--redis-url', 'redis://:hunter2@redis:6379'], says: /metadata\.url: holds a password; .*AFPGW_METADATA__PASSWORD/ },
      { args: ['--bonjour', 'maybe'], says: /bonjour\.enabled: answer yes or no/ },
      { args: ['--objects', 's3'], says: /--s3-bucket is required here \(objects\.bucket/ },
      { args: ['--metadata', 'embedded', '--redis-url', 'redis://r:6379'], says: /--redis-url needs --metadata redis/ },
      // Each answer alone is fine; together the cache cannot hold one 4 MiB block.
      { args: ['--cache-size', '1MiB'], says: /cache\.size: cache\.dirtyLimit must be at least the largest volume blockSize/ },
      // Piped: the line is named as well as the setting.
      { args: [], input: 'Office\n\n\nlots\n', says: /line 4 of stdin: cache\.size: "lots" is not a size/ },
      { args: [], input: ['', '', '', '', '', '', '', 'a:b'].join('\n') + '\n', says: /line 8 of stdin: volumes\[0\]\.name: must not contain ":"/ },
    ];
    for (const [i, c] of cases.entries()) {
      const file = join(dir, `bad-${i}.yaml`);
      const r = await runCli(['init', '--config', file, ...c.args], c.input ?? '');
      assert.equal(r.code, 2, `${c.args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, c.says);
      assert.match(r.stderr, /Nothing was written/);
      assert.equal(existsSync(file), false, c.args.join(' '));
    }
  });

  test('every setting it writes has a comment above it; the optional keys are there, commented out, holding the values in effect', async () => {
    for (const [name, args] of [
      ['comments-embedded.yaml', ['--yes', '--data-dir', './d']],
      ['comments-redis.yaml', ['--redis-url', 'redis://r:6379', '--s3-endpoint', 'https://s3.lan', '--s3-bucket', 'b', '--cache-size', '1GiB']],
    ] as const) {
      const file = join(dir, name);
      const r = await runCli(['init', '--config', file, ...args]);
      assert.equal(r.code, 0, r.stderr);
      const text = await readFile(file, 'utf8');
      assert.deepEqual(uncommentedSettings(text), []);
      for (const key of ['dirtyLimit', 'uploadConcurrency', 'syncTimeoutSeconds', 'gcGraceSeconds', 'blockSize', 'users', 'hostName', 'interfaces', 'uams', 'metricsListen', 'level'])
        assert.match(text, new RegExp(`^\\s*#\\s+${key}:`, 'm'), `${name}: ${key} commented out`);
      // Switching every commented-out key on changes nothing: they show what is in effect.
      const on = join(dir, `on-${name}`);
      await writeFile(on, uncommentKeys(text));
      assert.notEqual(uncommentKeys(text), text);
      assert.deepEqual(await load(on), await load(file));
    }
    // The dirty limit shown follows a smaller cache (the default is 2 GiB, or the cache size).
    assert.match(await readFile(join(dir, 'comments-redis.yaml'), 'utf8'), /^ {2}# dirtyLimit: 1GiB$/m);
  });

  test('--write-secrets reads the secret key and Redis password from stdin (never a flag) and writes the file 0600', async () => {
    const file = join(dir, 'secrets.yaml');
    const r = await runCli(
      ['init', '--config', file, '--write-secrets', '--redis-url', 'redis://r:6379', '--s3-bucket', 'b', '--s3-access-key-id', 'AKIAEXAMPLE'],
      'redis-pass\ns3-secret\n',
    );
    assert.equal(r.code, 0, r.stderr);
    const c = await load(file);
    assert.ok(c.metadata.backend === 'redis' && c.objects.backend === 's3');
    assert.equal(c.metadata.password, 'redis-pass');
    assert.equal(c.objects.accessKeyId, 'AKIAEXAMPLE');
    assert.equal(c.objects.secretAccessKey, 's3-secret');
    assert.equal(await mode(file), 0o600);
    assert.match(r.stdout, /mode 0600/);
    // Without --write-secrets a key id has nowhere to go but the environment.
    const refused = await runCli(['init', '--config', join(dir, 'no-secrets.yaml'), '--s3-bucket', 'b', '--s3-access-key-id', 'AKIAEXAMPLE']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--s3-access-key-id goes with --write-secrets/);
  });

  test('as root, the file goes to the service user: its group reads it, or it is the user\'s own when it holds secrets', async () => {
    const plain = join(dir, 'owned.yaml');
    const secret = join(dir, 'owned-secret.yaml');
    const r = await runCli(['init', '--config', plain, '--yes', '--service-user', 'nobody']);
    if (process.getuid?.() !== 0) {
      // Only root can give a file away; anyone else is told so.
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--service-user needs root/);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    const nobody = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
    const nobodyGid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout);
    let s = await stat(plain);
    assert.deepEqual([s.uid, s.gid, s.mode & 0o777], [0, nobodyGid, 0o640]);
    const w = await runCli(['init', '--config', secret, '--write-secrets', '--service-user', 'nobody', '--s3-bucket', 'b', '--s3-access-key-id', 'AKIA'], 'sekrit\n');
    assert.equal(w.code, 0, w.stderr);
    s = await stat(secret);
    assert.deepEqual([s.uid, s.gid, s.mode & 0o777], [Number(nobody.stdout), nobodyGid, 0o600]);
    const missing = await runCli(['init', '--config', join(dir, 'nouser.yaml'), '--yes', '--service-user', 'no-such-user-afpgw']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no user named no-such-user-afpgw/);
  });

  test('on a terminal it asks, shows defaults, asks again after a bad answer, and hides secrets', async (t) => {
    if (spawnSync('script', ['--version']).error) {
      if (process.env.CI === 'true') throw new Error('script (util-linux) is required under CI');
      t.skip('script (util-linux) not installed');
      return;
    }
    const file = join(dir, 'terminal.yaml');
    // Each answer is typed once its prompt shows, as a person would.
    const dialogue: [RegExp, string][] = [
      [/Server name, as Macs show it \[[^\]]+\]: $/, 'Office'],
      [/Data directory[^\n]*: $/, './tty-data'],
      [/Cache directory[^\n]*\[tty-data\/cache\]: $/, ''],
      [/Cache size[^\n]*\[10GiB\]: $/, 'lots'],
      [/"lots" is not a size[^\n]*\n[^\n]*Cache size[^\n]*: $/, '30GiB'],
      [/Metadata store[^\n]*\[embedded\]: $/, ''],
      [/Object store[^\n]*\[fs\]: $/, 's3'],
      [/S3 endpoint URL[^\n]*: $/, 'http://minio:9000'],
      [/S3 region \[us-east-1\]: $/, ''],
      [/S3 bucket[^\n]*: $/, 'tm'],
      [/Key prefix[^\n]*: $/, ''],
      [/Bucket name in the URL path[^\n]*\[yes\]: $/, ''],
      [/S3 access key ID: $/, 'AKIATTY'],
      [/S3 secret access key: $/, 'very-secret'],
      [/Name of the first volume \[TimeMachine\]: $/, 'Backups'],
      [/Its size limit[^\n]*\[none\]: $/, '500GB'],
      [/Offer it to Time Machine[^\n]*\[yes\]: $/, ''],
      [/Advertise it with Bonjour[^\n]*\[yes\]: $/, 'no'],
    ];
    const { code, output } = await converse(['init', '--config', file, '--write-secrets'], dir, dialogue);
    assert.equal(code, 0, output);
    assert.doesNotMatch(output, /very-secret/);
    const c = await load(file);
    assert.equal(c.serverName, 'Office');
    assert.equal(c.dataDir, join(dir, 'tty-data'));
    assert.equal(c.cache.size, 30 * GiB);
    assert.equal(c.metadata.backend, 'embedded');
    assert.ok(c.objects.backend === 's3');
    assert.deepEqual([c.objects.endpoint, c.objects.bucket, c.objects.forcePathStyle, c.objects.accessKeyId, c.objects.secretAccessKey], ['http://minio:9000', 'tm', true, 'AKIATTY', 'very-secret']);
    assert.deepEqual(
      c.volumes.map((v) => [v.name, v.sizeLimit, v.timeMachine]),
      [['Backups', 500_000_000_000, true]],
    );
    assert.equal(c.bonjour.enabled, false);
    assert.equal(await mode(file), 0o600);
  });
});

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`) and types each answer once the
 * output so far matches its prompt. Terminal control sequences are removed before matching.
 */
function converse(args: string[], cwd: string, dialogue: [RegExp, string][]): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'dumb' } });
    let output = '';
    let from = 0;
    let step = 0;
    const onData = (d: Buffer): void => {
      output += d.toString('utf8');
      const plain = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
      const turn = dialogue[step];
      if (turn && turn[0].test(plain.slice(from))) {
        from = plain.length;
        step++;
        child.stdin.write(turn[1] + '\r');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // Only against a hang (a prompt that never matches): the outcome is judged by the answers.
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', () => clearTimeout(guard));
    child.on('close', (code) => resolve({ code: step === dialogue.length ? code : -1, output: `${output}\n(answered ${step} of ${dialogue.length})` }));
  });
}
