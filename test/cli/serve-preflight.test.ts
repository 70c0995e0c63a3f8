/**
 * `serve` refuses to start half-configured: before it starts the gateway it checks that Redis
 * and the bucket answer and accept it, and exits naming the key to fix. 78 (EX_CONFIG, which
 * the systemd unit does not restart) when the configuration must change; 1 (restarted) when
 * the failure may pass by itself, such as a server that is down.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, type CliResult } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { freePort } from '../helpers/ports.js';
import { needRedis, redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';

/** Runs `serve`; one that starts after all is killed, and the test sees "listening on" in its output. */
function serve(file: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--config', file], { env: { ...process.env, AFPGW_BONJOUR__ENABLED: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const started = (): void => {
      if ((stdout + stderr).includes('listening on')) child.kill('SIGKILL');
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      started();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      started();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('serve checks its backends before it starts', () => {
  let work: string;
  let s3: S3Server;
  let redis: RedisServer | undefined;
  let n = 0;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'afpgw-preflight-'));
    s3 = await startS3({ bucket: 'preflight' });
    if (redisAvailable()) redis = await startRedis({ extraArgs: ['--requirepass', 'right-one'] });
  });

  after(async () => {
    await redis?.stop();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function config(metadata: Record<string, unknown>, objects: Record<string, unknown>): Promise<string> {
    const file = join(work, `config-${++n}.yaml`);
    const cfg = { dataDir: join(work, `data-${n}`), listen: { host: '127.0.0.1', port: 0 }, ops: { metricsListen: null }, metadata, objects };
    await writeFile(file, JSON.stringify(cfg));
    return file;
  }
  const embedded = { backend: 'embedded' };
  const bucket = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({ ...s3Config(s3, { prefix: 'preflight' }), ...overrides });

  test('a bucket that does not exist: exit 78, naming objects.bucket', async () => {
    const r = await serve(await config(embedded, bucket({ bucket: 'no-such-bucket' })));
    assert.equal(r.code, 78, r.stdout + r.stderr);
    assert.match(r.stderr, /^afp-gateway: not starting: the configured backends are not usable$/m);
    assert.match(r.stderr, /^ {2}objects\.bucket: bucket "no-such-bucket" \(prefix "preflight"\) at \S+: the bucket does not exist$/m);
    assert.doesNotMatch(r.stdout + r.stderr, /listening on/);
  });

  test('an access key the server refuses: exit 78, naming objects.accessKeyId', async () => {
    const r = await serve(await config(embedded, bucket({ accessKeyId: 'NOT-A-KEY' })));
    assert.equal(r.code, 78, r.stdout + r.stderr);
    assert.match(r.stderr, /^ {2}objects\.accessKeyId: .*the access key id is unknown to the server$/m);
  });

  test('an S3 endpoint where nothing listens: exit 1 (systemd tries again), naming objects.endpoint', async () => {
    const port = await freePort();
    const r = await serve(await config(embedded, bucket({ endpoint: `http://127.0.0.1:${port}` })));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^ {2}objects\\.endpoint: bucket "preflight" \\(prefix "preflight"\\) at http://127\\.0\\.0\\.1:${port}: connection refused`, 'm'));
    assert.match(r.stderr, /this may pass by itself/);
  });

  test('Redis where nothing listens: exit 1, naming metadata.url', async (t) => {
    if (!needRedis(t)) return;
    const port = await freePort();
    const r = await serve(await config({ backend: 'redis', url: `redis://127.0.0.1:${port}` }, { backend: 'fs' }));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^ {2}metadata\\.url: Redis at 127\\.0\\.0\\.1:${port}: connection refused \\(nothing listens there\\)$`, 'm'));
  });

  test('a Redis that accepts connections but never answers: exit 1 after the check, not a hang', async (t) => {
    if (!needRedis(t)) return;
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: redis!.port }, { mode: 'blackhole' });
    try {
      const r = await serve(await config({ backend: 'redis', url: `redis://127.0.0.1:${proxy.port}`, password: 'right-one' }, { backend: 'fs' }));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`^ {2}metadata\\.url: Redis at 127\\.0\\.0\\.1:${proxy.port}: no answer within 3 s$`, 'm'));
    } finally {
      await proxy.close();
    }
  });

  test('Redis refusing the password: exit 78, naming metadata.password', async (t) => {
    if (!needRedis(t)) return;
    const r = await serve(await config({ backend: 'redis', url: redis!.url, password: 'wrong-one' }, { backend: 'fs' }));
    assert.equal(r.code, 78, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^ {2}metadata\\.password: Redis at 127\\.0\\.0\\.1:${redis!.port} refuses the password`, 'm'));
  });

  test('both usable: it starts', async (t) => {
    if (!needRedis(t)) return;
    const r = await serve(await config({ backend: 'redis', url: redis!.url, password: 'right-one' }, bucket()));
    assert.match(r.stdout + r.stderr, /listening on/, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /not starting/);
  });
});
