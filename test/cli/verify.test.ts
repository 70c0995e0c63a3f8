/**
 * `afp-gateway verify` end to end, on both metadata stores with s3rver: files written by a
 * Mac-like client through a real gateway process, a check alongside it, then damage to the
 * bucket and the namespace with the gateway stopped, a repair, and what is left afterwards.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { RootDatabase } from 'lmdb';
import { stringify } from 'yaml';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { Ticker } from '../../src/cli/progress.js';
import { namespaceKeys } from '../../src/meta/embedded-namespace.js';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import { ROOT_ID } from '../../src/meta/namespace.js';
import { sortKey } from '../../src/meta/namespace-records.js';
import { S3ObjectStore } from '../../src/objects/s3-store.js';
import { BACKENDS } from '../helpers/backends.js';
import { runCli, startServe } from '../helpers/cli.js';
import { TEST_SCRYPT } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';

const USER = { name: 'carol', password: 'carol-pw' };
const BLOCK = 64 * 1024;
const VOLUME = 'Backups';
/** volumeKey() of the volume: its name, case-folded. */
const KEY = 'backups';
const PREFIX = 'vfy';
const RW = ForkMode.Read | ForkMode.Write;

interface Problem {
  kind: string;
  path: string;
  what: string;
  repairable: boolean;
  fixed?: boolean;
}

for (const backend of BACKENDS) {
  describe(`afp-gateway verify (${backend} metadata, S3 objects)`, () => {
    let work: string;
    let s3: S3Server;
    let redis: RedisServer | undefined;
    let configFile: string;
    let port: number;
    let gateway: ChildProcess | undefined;

    const skip = backend === 'redis' && !redisAvailable() && process.env.CI !== 'true' ? 'redis-server not installed' : false;

    before(async () => {
      if (skip) return;
      work = await mkdtemp(join(tmpdir(), 'afpgw-verify-cli-'));
      s3 = await startS3({ bucket: 'verify' });
      if (backend === 'redis') redis = await startRedis();
      port = await freePort();
      const metadata = backend === 'redis' ? { backend: 'redis', url: redis!.url, keyPrefix: PREFIX } : { backend: 'embedded', path: join(work, 'meta') };
      configFile = join(work, 'gateway.yaml');
      await writeFile(
        configFile,
        stringify({
          serverName: `verify-${backend}`,
          dataDir: work,
          listen: { host: '127.0.0.1', port, fallbackPort: null },
          metadata,
          // No grace: the GC deletes what verify --repair queues on its next pass.
          objects: s3Config(s3, { gcGraceSeconds: 0, gcIntervalSeconds: 1 }),
          cache: { dir: join(work, 'cache'), dirtyLimit: '64MiB' },
          volumes: [{ name: VOLUME, blockSize: '64KiB', timeMachine: false }],
          auth: { scrypt: TEST_SCRYPT },
          ops: { metricsListen: null },
          log: { level: 'info' },
        }),
      );
      const added = await runCli(['user', 'add', USER.name, '--config', configFile], `${USER.password}\n${USER.password}\n`);
      assert.equal(added.code, 0, added.stderr);
    });

    after(async () => {
      if (gateway && gateway.exitCode === null) {
        gateway.kill('SIGKILL');
        await once(gateway, 'exit');
      }
      await redis?.stop();
      await s3?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    async function startGateway(): Promise<void> {
      gateway = (await startServe(['--config', configFile])).child;
    }

    async function stopGateway(): Promise<void> {
      const g = gateway!;
      g.kill('SIGTERM');
      if (g.exitCode === null) await once(g, 'exit');
      gateway = undefined;
    }

    async function session() {
      const c = await AfpClient.connect('127.0.0.1', port);
      await c.login({ user: USER.name, password: USER.password });
      return { c, v: await c.openVolume(VOLUME) };
    }

    const verify = (...args: string[]) => runCli(['verify', VOLUME, '--config', configFile, ...args]);

    async function problems(): Promise<{ code: number | null; problems: Problem[] }> {
      const r = await verify('--json');
      return { code: r.code, problems: (JSON.parse(r.stdout) as { problems: Problem[] }).problems };
    }

    const report = randomBytes(3 * BLOCK + 5000);
    const notes = Buffer.from('remember the milk\n');

    test('clean while the gateway runs; damage found, repaired, and what cannot be repaired stays reported', { skip }, async () => {
      await startGateway();
      {
        const { c, v } = await session();
        await v.createDir(ROOT, 'docs');
        for (const [path, bytes] of [[['docs', 'report.bin'], report], [['notes.txt'], notes]] as const) {
          await v.createFile(ROOT, [...path]);
          const f = await v.openFork(ROOT, [...path], { mode: RW });
          await f.write(0, bytes);
          await f.sync();
          await f.close();
        }
        await c.close();
      }

      const clean = await verify();
      assert.equal(clean.code, 0, clean.stdout + clean.stderr);
      assert.match(clean.stdout, /^verify Backups \(key backups\), alongside 1 running gateway\n/);
      assert.match(clean.stdout, /namespace +4 nodes \(2 files, 2 directories\), 3 entries: ok/);
      assert.match(clean.stdout, /block maps +2 maps, 5 blocks: ok/);
      assert.match(clean.stdout, /objects +5 objects, .*: ok/);
      assert.match(clean.stdout, /no problems found\n$/);

      const refused = await verify('--repair');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /--repair needs every gateway on this metadata store stopped; running: .*127\.0\.0\.1:\d+/);
      await stopGateway();

      // The bucket: one of report.bin's objects goes, another is overwritten with too many
      // bytes, and a stray block object appears.
      const bucket = new S3ObjectStore(s3Config(s3));
      const byFile = new Map<string, string[]>();
      for await (const o of bucket.list(`${KEY}/`)) {
        const file = o.key.split('/')[1]!;
        byFile.set(file, [...(byFile.get(file) ?? []), o.key]);
      }
      const reportKeys = [...byFile.values()].find((k) => k.length === 4);
      assert.ok(reportKeys, 'report.bin has four objects');
      const lost = reportKeys.find((k) => /\/d1-/.test(k));
      const bloated = reportKeys.find((k) => /\/d2-/.test(k));
      assert.ok(lost && bloated, 'report.bin has blocks 1 and 2');
      await bucket.delete(lost);
      await bucket.put(bloated, Buffer.alloc(BLOCK + 1));
      const stray = `${KEY}/99999/d0-99999`;
      await bucket.put(stray, Buffer.alloc(100));

      // The namespace: the root loses its entry for notes.txt, so notes.txt is unreachable.
      await removeRootEntry(backend, 'notes.txt');

      const found = await problems();
      assert.equal(found.code, 1);
      const kinds = found.problems.map((p) => p.kind).sort();
      assert.deepEqual(kinds, ['child-count', 'counter', 'counter', 'missing-object', 'object-size', 'orphan-node', 'orphan-object']);
      const missing = found.problems.find((p) => p.kind === 'missing-object')!;
      assert.equal(missing.path, '/docs/report.bin');
      assert.match(missing.what, new RegExp(`block 1 of the data fork: object ${lost} is missing`));
      assert.equal(found.problems.find((p) => p.kind === 'object-size')!.path, '/docs/report.bin');
      assert.equal(found.problems.find((p) => p.kind === 'orphan-object')!.path, stray);
      assert.equal(found.problems.find((p) => p.kind === 'orphan-node')!.path, '(unreachable)/notes.txt');

      const text = await verify();
      assert.equal(text.code, 1);
      assert.match(text.stdout, /objects +5 objects, .*: 3 problems/);
      assert.match(text.stdout, /\n {2}\/docs\/report\.bin\n {6}block 1 of the data fork: object .* is missing from the bucket\n {6}repair: none possible/);
      assert.match(text.stdout, /7 problems found; 5 can be repaired \(stop the gateways and run verify --repair\)\n$/);

      const repaired = await verify('--repair');
      assert.equal(repaired.code, 1, 'the lost and the overwritten bytes cannot come back');
      assert.match(repaired.stdout, /repaired: queue it for GC/);
      assert.match(repaired.stdout, /repaired: move it into \/Recovered files/);
      assert.match(repaired.stdout, /not repairable: none possible/);
      assert.match(repaired.stdout, /7 problems found, 5 repaired, 2 remaining\n$/);

      const left = await problems();
      assert.equal(left.code, 1);
      assert.deepEqual(left.problems.map((p) => [p.kind, p.path]).sort(), [['missing-object', '/docs/report.bin'], ['object-size', '/docs/report.bin']]);

      // Back in service: notes.txt is where the repair put it, and the GC deletes the stray.
      await startGateway();
      const { c, v } = await session();
      const f = await v.openFork(ROOT, ['Recovered files', 'notes.txt'], { mode: ForkMode.Read });
      assert.deepEqual((await f.read(0, 100)).data, notes);
      await f.close();
      await c.close();
      for (let i = 0; i < 100 && (await bucket.head(stray)) !== undefined; i++) await sleep(100);
      assert.equal(await bucket.head(stray), undefined, 'the GC deleted the stray object');
      await bucket.close();
      const still = await verify();
      assert.equal(still.code, 1);
      assert.match(still.stdout, /2 problems found; 0 can be repaired\n$/);
      await stopGateway();
    });

    /** Writes the store's keys directly, as a lost write would leave them. */
    async function removeRootEntry(b: string, name: string): Promise<void> {
      const key = sortKey(name.normalize('NFC').toLowerCase());
      if (b === 'redis') {
        const admin = new Redis(redis!.url);
        await admin.hdel(`${PREFIX}:{v:${KEY}}:dir:${ROOT_ID}`, key);
        await admin.zrem(`${PREFIX}:{v:${KEY}}:ord:${ROOT_ID}`, key);
        admin.disconnect();
        return;
      }
      const store = await EmbeddedMetaStore.open(join(work, 'meta'));
      const db = (store as unknown as { db: RootDatabase<unknown, string> }).db;
      await db.remove(namespaceKeys(KEY).child(ROOT_ID, key));
      await store.close();
    }
  });
}

test('verify\'s progress ticker redraws one line on a terminal and writes nothing to a pipe', () => {
  let t = 0;
  const tty = { isTTY: true, text: '', write(s: string) { this.text += s; } };
  const ticker = new Ticker('verify Backups', tty, () => t);
  t = 1000;
  ticker.update('objects', 1000);
  ticker.update('objects', 2000); // within the redraw interval: skipped
  t = 2000;
  ticker.update('objects', 3000);
  ticker.clear();
  assert.equal(tty.text, '\rverify Backups: objects 1000\x1b[K\rverify Backups: objects 3000\x1b[K\r\x1b[K');
  const pipe = { isTTY: false, text: '', write(s: string) { this.text += s; } };
  const quiet = new Ticker('verify Backups', pipe, () => (t += 1000));
  quiet.update('objects', 1000);
  quiet.clear();
  assert.equal(pipe.text, '');
});
