import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { AfpClient } from '../../src/client/afp-client.js';
import { AfpDesktop } from '../../src/client/afp-desktop.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT, type AfpVolume } from '../../src/client/afp-volume.js';
import type { Params } from '../../src/afp/params.js';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, TEST_SCRYPT, type TestGateway } from '../helpers/gateway.js';
import { needRedis, startRedis, type RedisServer } from '../helpers/redis-server.js';

const DAVE = { name: 'dave', password: 'dave-secret' };
const VOLUME = 'TimeMachine';
/** volumeKey() of VOLUME: the name, case-folded. */
const VOLUME_KEY = 'timemachine';
const FOLD = (s: string) => s.normalize('NFC').toLowerCase();

let server: RedisServer | undefined;
let work: string;
let prefixes = 0;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'afpgw-cli-migrate-'));
});
after(async () => {
  await server?.stop();
  await rm(work, { recursive: true, force: true });
});

async function redis(t: TestContext): Promise<RedisServer | undefined> {
  if (!needRedis(t)) return undefined;
  return (server ??= await startRedis());
}

/** A setup: its embedded store, its objects, and the YAML of its Redis config (own key prefix). */
async function setup(name: string, url: string): Promise<{ dir: string; meta: string; objects: string; yaml: string; keyPrefix: string; config: Record<string, unknown> }> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  const keyPrefix = `m${++prefixes}`;
  const objects = join(dir, 'objects');
  const config = {
    metadata: { backend: 'redis', url, keyPrefix },
    objects: { backend: 'fs', path: objects },
    volumes: [{ name: VOLUME, timeMachine: true }],
  };
  const yaml = join(dir, 'new.yaml');
  await writeFile(
    yaml,
    [`dataDir: ${join(dir, 'new-data')}`, 'metadata:', '  backend: redis', `  url: ${url}`, `  keyPrefix: ${keyPrefix}`, 'objects:', '  backend: fs', `  path: ${objects}`, 'volumes:', `  - name: ${VOLUME}`, ''].join('\n'),
  );
  return { dir, meta: join(dir, 'meta'), objects, yaml, keyPrefix, config };
}

function embeddedGateway(s: { meta: string; objects: string }, users: { name: string; password: string }[] = []): Promise<TestGateway> {
  return startTestGateway({ users, config: { metadata: { backend: 'embedded', path: s.meta }, objects: { backend: 'fs', path: s.objects }, volumes: [{ name: VOLUME, timeMachine: true }] } });
}

async function login(g: TestGateway): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: DAVE.name, password: DAVE.password });
  return { c, v: await c.openVolume(VOLUME) };
}

/** Every entry of the volume by path, with all the parameters AFP reports for it. */
async function walk(v: AfpVolume, dirId = ROOT, path = ''): Promise<Map<string, Params>> {
  const out = new Map<string, Params>();
  for (const e of await v.enumerateAll(dirId, [])) {
    const p = `${path}/${e.params.utf8Name ?? e.params.longName}`;
    out.set(p, e.params);
    if (e.isDir) for (const [k, x] of await walk(v, e.params.nodeId!, p)) out.set(k, x);
  }
  return out;
}

async function writeFork(v: AfpVolume, dirId: number, name: string, data: Buffer, rsrc = false): Promise<void> {
  const f = await v.openFork(dirId, name, { mode: ForkMode.Read | ForkMode.Write, rsrc });
  await f.write(0, data);
  await f.sync();
  await f.close();
}

async function readFork(v: AfpVolume, dirId: number, name: string, length: number, rsrc = false): Promise<Buffer> {
  const f = await v.openFork(dirId, name, { mode: ForkMode.Read, rsrc });
  const { data } = await f.read(0, length);
  await f.close();
  return data;
}

async function keysOf(url: string, keyPrefix: string): Promise<string[]> {
  const admin = new Redis(url);
  try {
    return (await admin.keys(`${keyPrefix}:*`)).filter((k) => !/:op:/.test(k)).sort();
  } finally {
    admin.disconnect();
  }
}

describe('afp-gateway migrate', () => {
  it('moves a gateway from the embedded store to Redis: the same tree, bytes, xattrs, users and server', async (t) => {
    const r = await redis(t);
    if (!r) return;
    const s = await setup('full', r.url);
    const big = randomBytes(9 * 1024 * 1024 + 321); // three 4 MiB blocks, the last one short
    const small = randomBytes(1000);
    const rsrc = randomBytes(77);

    // 1. The embedded gateway, used as a Mac would.
    const g1 = await embeddedGateway(s, [DAVE]);
    let signature: Buffer;
    let before: Map<string, Params>;
    let volParams: Params;
    let fileId: number;
    let bundleId: number;
    try {
      const { c, v } = await login(g1);
      signature = (await c.getSrvrInfo()).signature;
      bundleId = await v.createDir(ROOT, 'Mac.sparsebundle');
      const bands = await v.createDir(bundleId, 'bands');
      await v.createFile(bands, '0');
      await writeFork(v, bands, '0', randomBytes(big.length)); // replaced below: its objects go onto the GC queue
      await writeFork(v, bands, '0', big);
      await v.createFile(bands, '1');
      await writeFork(v, bands, '1', small);
      await writeFork(v, bands, '1', rsrc, true);
      await v.createFile(bundleId, 'Info.plist');
      await v.setXattr(bundleId, 'Info.plist', 'com.apple.TextEncoding', Buffer.from('UTF-8;134217984'));
      await v.setXattr(ROOT, 'Mac.sparsebundle', 'com.apple.backupd.BackupMachineAddress', Buffer.from([0, 1, 2, 0xfe]));
      fileId = (await v.createId(bands, '0')).id;
      const dt = await AfpDesktop.open(v);
      await dt.addComment(bundleId, 'Info.plist', 'a Finder comment');
      await dt.close();
      await v.setBackupDate(1_700_000_000_000);
      before = await walk(v);
      volParams = await v.getParms();
      await c.close();
    } finally {
      await g1.stop();
    }
    assert.equal(before.get('/Mac.sparsebundle/bands/0')?.dataLength, big.length);
    assert.equal(before.get('/Mac.sparsebundle/bands/0')?.nodeId, fileId, 'the file id is the CNID');
    const source = await EmbeddedMetaStore.open(s.meta, { readOnly: true });
    const gcPending = await source.dump().namespace(VOLUME_KEY).gcPending();
    await source.close();
    assert.ok(gcPending >= 3, `the overwritten blocks wait on the GC queue (${gcPending})`);

    // 2. The migration.
    const run = await runCli(['migrate', '--config', s.yaml, '--from', s.meta]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^migrating the embedded store .*meta to Redis 127\.0\.0\.1:\d+ \(key prefix m\d+\)\n/);
    assert.match(run.stderr, /copy volume timemachine: [\d,]+ records in \d+\.\d s/);
    assert.match(run.stderr, /verify volume timemachine: [\d,]+ records in \d+\.\d s/);
    assert.match(run.stdout, /^migrated [\d,]+ records in \d+\.\d s, and read every one back from Redis unchanged\n/);
    assert.match(run.stdout, /server identity {2}copied/);
    assert.match(run.stdout, /users {12}1\n/);
    assert.match(run.stdout, new RegExp(`volume "timemachine"  ${before.size + 1} files and folders, 2 xattrs, 5 blocks, 1 desktop record, ${gcPending} pending deletions \\(\\d+ records\\)`));
    assert.doesNotMatch(run.stdout, /note:/, 'the config lists the volume that was copied');

    // 3. A gateway on Redis with the same objects section.
    const g2 = await startTestGateway({ config: s.config });
    try {
      const { c, v } = await login(g2);
      assert.deepEqual((await c.getSrvrInfo()).signature, signature, 'Macs recognise the server by its signature');
      assert.deepEqual(await walk(v), before, 'every CNID, name, date, Finder info, length and permission is the same');
      assert.deepEqual(await v.getParms(), volParams, 'volume parameters (dates, backup date, space used) are the same');
      assert.equal((await v.resolveId(fileId)).utf8Name, '0', 'the file id resolves to the same file');
      const bands = before.get('/Mac.sparsebundle/bands')!.nodeId!;
      assert.ok((await readFork(v, bands, '0', big.length)).equals(big), 'the bytes in the bucket are reachable through the copied block maps');
      assert.ok((await readFork(v, bands, '1', small.length)).equals(small));
      assert.ok((await readFork(v, bands, '1', rsrc.length, true)).equals(rsrc), 'and the resource fork');
      assert.deepEqual(await v.getXattr(bundleId, 'Info.plist', 'com.apple.TextEncoding'), Buffer.from('UTF-8;134217984'));
      assert.deepEqual(await v.getXattr(ROOT, 'Mac.sparsebundle', 'com.apple.backupd.BackupMachineAddress'), Buffer.from([0, 1, 2, 0xfe]));
      const dt = await AfpDesktop.open(v);
      assert.equal((await dt.getComment(bundleId, 'Info.plist')).toString(), 'a Finder comment');
      await dt.close();
      // New files continue the CNID sequence instead of reusing an old one.
      await v.createFile(ROOT, 'after-migration');
      const fresh = (await v.getFileDirParms(ROOT, 'after-migration')).params.nodeId!;
      assert.ok(fresh > Math.max(...[...before.values()].map((p) => p.nodeId!)), `new CNID ${fresh}`);
      await c.close();
      const target = await RedisMetaStore.connect({ url: r.url, keyPrefix: s.keyPrefix });
      try {
        assert.equal(await target.namespace(VOLUME_KEY, { fold: FOLD }).gcPending(), gcPending, 'the GC queue came along');
      } finally {
        await target.close();
      }
    } finally {
      await g2.stop();
    }

    // 4. Again, onto the Redis that now holds it all: refused, unless --force replaces it.
    const target = await RedisMetaStore.connect({ url: r.url, keyPrefix: s.keyPrefix });
    try {
      await target.createUser({ name: 'made-on-redis', password: (await target.getUser(DAVE.name))!.password });
      const again = await runCli(['migrate', '--config', s.yaml, '--from', s.meta]);
      assert.equal(again.code, 1, again.stderr);
      assert.match(again.stderr, /refused: the target Redis already holds \d+ server-wide keys \(users, server identity, leases\), \d+ keys of volume "timemachine"; a migration does not merge/);
      assert.match(again.stderr, /nothing was written/);
      assert.ok(await target.getUser('made-on-redis'), 'a refused migration leaves the target alone');
      assert.ok((await target.namespace(VOLUME_KEY, { fold: FOLD }).lookup(ROOT, 'after-migration')) !== undefined);

      const forced = await runCli(['migrate', '--config', s.yaml, '--from', s.meta, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /replaced {9}[\d,]+ keys the target held before \(--force\)/);
      assert.equal(await target.getUser('made-on-redis'), undefined, '--force replaces, it does not merge');
      assert.equal(await target.namespace(VOLUME_KEY, { fold: FOLD }).lookup(ROOT, 'after-migration'), undefined);
      assert.ok(await target.getUser(DAVE.name));
    } finally {
      await target.close();
    }
  });

  it('refuses while a gateway runs on the embedded store, and writes nothing', async (t) => {
    const r = await redis(t);
    if (!r) return;
    const s = await setup('live', r.url);
    const g = await embeddedGateway(s, [DAVE]);
    try {
      const run = await runCli(['migrate', '--config', s.yaml, '--from', s.meta]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /refused: a gateway is running on the embedded store: node \S+ on 127\.0\.0\.1:\d+ \(version [^,]+, started [^,]+, lease until [^)]+\)\. Stop it first/);
      assert.deepEqual(await keysOf(r.url, s.keyPrefix), []);
    } finally {
      await g.stop();
    }
    // Stopped, it releases its lease: now the migration goes ahead.
    const run = await runCli(['migrate', '--config', s.yaml, '--from', s.meta]);
    assert.equal(run.code, 0, run.stderr);
    assert.notDeepEqual(await keysOf(r.url, s.keyPrefix), []);
  });

  it('migrates an empty store found at dataDir/meta of the new config', async (t) => {
    const r = await redis(t);
    if (!r) return;
    const s = await setup('empty', r.url);
    const store = await EmbeddedMetaStore.open(join(s.dir, 'new-data', 'meta'));
    await store.close();
    const run = await runCli(['migrate', '--config', s.yaml]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`migrating the embedded store ${join(s.dir, 'new-data', 'meta').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} to Redis`));
    assert.match(run.stdout, /^migrated 0 records in /);
    assert.match(run.stdout, /server identity {2}none yet/);
    assert.match(run.stdout, /users {12}0\n/);
    assert.match(run.stdout, /volumes {10}none/);
    assert.match(run.stdout, /note: the config's volume "TimeMachine" \(key timemachine\) had no data in the embedded store: it starts empty/);
    assert.deepEqual(await keysOf(r.url, s.keyPrefix), []);
  });

  it('finds the store from its data directory or the old config; says what is wrong with bad input', async (t) => {
    const r = await redis(t);
    if (!r) return;
    const s = await setup('input', r.url);
    const store = await EmbeddedMetaStore.open(s.meta);
    await store.createUser({ name: 'erin', password: { algo: 'scrypt', ...TEST_SCRYPT, salt: 'cw==', hash: 'aA==' } });
    await store.close();
    const oldYaml = join(s.dir, 'old.yaml');
    await writeFile(oldYaml, `dataDir: ${s.dir}\n`);

    const fromConfig = await runCli(['migrate', '--config', s.yaml, '--from', oldYaml]);
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    assert.match(fromConfig.stdout, /users {12}1\n/);
    const fromDataDir = await runCli(['migrate', '--config', s.yaml, '--from', s.dir, '--force']);
    assert.equal(fromDataDir.code, 0, fromDataDir.stderr);
    assert.match(fromDataDir.stderr, new RegExp(`migrating the embedded store ${s.meta.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} to`));

    const notRedis = await runCli(['migrate', '--config', oldYaml]);
    assert.equal(notRedis.code, 78, notRedis.stderr);
    assert.match(notRedis.stderr, /metadata\.backend: must be "redis": migrate copies into the Redis this config names/);
    const missing = await runCli(['migrate', '--config', s.yaml, '--from', join(s.dir, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--from .*nope: no such file or directory/);
    await mkdir(join(s.dir, 'elsewhere'));
    const noStore = await runCli(['migrate', '--config', s.yaml, '--from', join(s.dir, 'elsewhere')]);
    assert.equal(noStore.code, 1);
    assert.match(noStore.stderr, /no embedded store there \(no data\.mdb in it, nor in /);
    const noDefault = await runCli(['migrate', '--config', s.yaml]);
    assert.equal(noDefault.code, 1);
    assert.match(noDefault.stderr, /no embedded store at .*new-data\/meta \(the default, dataDir\/meta of this config\)/);
    const redisAsSource = await runCli(['migrate', '--config', s.yaml, '--from', s.yaml]);
    assert.equal(redisAsSource.code, 1);
    assert.match(redisAsSource.stderr, /its metadata\.backend is redis, not embedded/);
    const usage = await runCli(['migrate', '--from', s.meta]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: afp-gateway migrate --config NEW\.yaml/);
    assert.equal((await runCli(['migrate', 'extra', '--config', s.yaml])).code, 2);
  });
});
