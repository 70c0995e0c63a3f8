import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { open } from 'lmdb';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import { migrateToRedis, verifyMigration, MigrationMismatchError, MigrationRefusedError, type MigrationStep } from '../../src/meta/migrate.js';
import { ROOT_ID, type NodeRecord } from '../../src/meta/namespace.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { redisMetaFixture } from '../helpers/redis-meta.js';
import { needRedis } from '../helpers/redis-server.js';
import { FOLD } from './namespace-contract.js';

const { redisServer, freshPrefix } = redisMetaFixture('mig');
const PW = { algo: 'scrypt' as const, N: 1024, r: 8, p: 1, salt: 'c2FsdA==', hash: 'aGFzaA==' };
const OWNER = { uid: 501, gid: 20, mode: 0o755 };
const BLOCK = 4096;

interface Fixture {
  dir: string;
  url: string;
  port: number;
  keyPrefix: string;
  cleanup(): Promise<void>;
}

async function fixture(t: TestContext): Promise<Fixture | undefined> {
  if (!needRedis(t)) return undefined;
  const { url, port } = await redisServer();
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-migrate-'));
  return { dir, url, port, keyPrefix: freshPrefix(), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** What a store holds that the test checks afterwards: the nodes by path. */
type Tree = Map<string, NodeRecord>;

/**
 * A store with something of every kind: users (one deleted, so the uid counter runs ahead),
 * the identity, two volumes with names that stress the sort keys, finder info, backup dates,
 * xattrs on files and folders, a desktop database, block maps on both forks (one far out),
 * an exchange, GC entries, and transient state (an open fork, a session, a lapsed lease).
 */
async function populate(path: string): Promise<{ tree: Tree; other: Tree }> {
  const store = await EmbeddedMetaStore.open(path);
  await store.createUser({ name: 'Alice', password: PW });
  await store.createUser({ name: 'gone', password: PW });
  await store.createUser({ name: 'Bob', password: { ...PW, salt: 'b3RoZXI=' }, gid: 77 });
  await store.deleteUser('gone');
  await store.serverIdentity();

  const tree: Tree = new Map();
  const ns = store.namespace('tm', { fold: FOLD });
  tree.set('', await ns.init('Backups', OWNER));
  await ns.fixBlockSize(BLOCK);
  const add = async (t: Tree, n: typeof ns, parentPath: string, name: string, kind: 'dir' | 'file'): Promise<NodeRecord> => {
    const parent = t.get(parentPath)!;
    const rec = await n.create(parent.id, name, kind, { ...OWNER, finderInfo: Buffer.alloc(32, name.length) }, 1_700_000_000_000 + t.size);
    t.set(parentPath === '' ? name : `${parentPath}/${name}`, rec);
    return rec;
  };
  const names = ['Mac.sparsebundle', 'bands', 'Ünïcödé', 'ctl\u0001\u0004name', '📁 emoji', '\uE000private', 'Zebra', 'zz'];
  await add(tree, ns, '', names[0]!, 'dir');
  await add(tree, ns, names[0]!, names[1]!, 'dir');
  const bands = `${names[0]}/${names[1]}`;
  for (let i = 0; i < 40; i++) await add(tree, ns, bands, i.toString(16), 'file');
  for (const name of names.slice(2)) await add(tree, ns, '', name, name === 'Zebra' ? 'dir' : 'file');
  await add(tree, ns, 'Zebra', 'inner', 'file');

  const file = tree.get(`${bands}/0`)!;
  const gens = await ns.reserveGenerations(10);
  await ns.commitFork(file.id, 'data', { changes: [0, 1, 2].map((index) => ({ index, expect: null, next: { file: file.id, gen: gens + index } })), length: 3 * BLOCK - 100, now: 1000 });
  // Replaced: the old object goes onto the GC queue.
  await ns.commitFork(file.id, 'data', { changes: [{ index: 1, expect: { file: file.id, gen: gens + 1 }, next: { file: file.id, gen: gens + 5 } }], now: 2000 });
  const far = 2 ** 40;
  await ns.commitFork(file.id, 'rsrc', { changes: [{ index: far, expect: null, next: { file: file.id, gen: gens + 6 } }], length: far * BLOCK + 1, now: 3000 });
  const other = tree.get(`${bands}/1`)!;
  await ns.commitFork(other.id, 'data', { changes: [{ index: 0, expect: null, next: { file: other.id, gen: gens + 7 } }], length: 10, now: 3000 });
  // A file removed with its blocks: two more GC entries at the same instant.
  const doomed = tree.get(`${bands}/2`)!;
  await ns.commitFork(doomed.id, 'data', { changes: [0, 1].map((index) => ({ index, expect: null, next: { file: doomed.id, gen: gens + 8 + index } })), length: 2 * BLOCK, now: 3000 });
  await ns.remove(doomed.id, 4000);
  tree.delete(`${bands}/2`);
  // The bytes move with FPExchangeFiles; refs keep the file they were written for.
  const [a, b] = await ns.exchange(tree.get(`${bands}/1`)!.id, tree.get(`${bands}/3`)!.id);
  tree.set(`${bands}/1`, a);
  tree.set(`${bands}/3`, b);

  await ns.setXattr(file.id, 'com.apple.metadata:_kMDItemUserTags', Buffer.from([0, 1, 2, 255]), 'create');
  await ns.setXattr(file.id, 'ünï', Buffer.alloc(0), 'create');
  await ns.setXattr(tree.get('Zebra')!.id, 'com.apple.TimeMachine.MachineMACAddress', Buffer.from('aa:bb'), 'create');
  await ns.kvSet('icon:ttxt', Buffer.from([9, 8, 7]));
  await ns.kvSet('comment:42', Buffer.from('hello'));
  const zz = await ns.update(tree.get('zz')!.id, { backupAt: 1_600_000_000_000, attributes: 0x20 });
  tree.set('zz', zz);
  for (const [path, rec] of tree) tree.set(path, (await ns.get(rec.id))!);

  const other2: Tree = new Map();
  const ns2 = store.namespace('other-vol', { fold: (s) => s });
  other2.set('', await ns2.init('Other', OWNER));
  await add(other2, ns2, '', 'Case', 'file');
  await add(other2, ns2, '', 'case', 'file');

  // Transient state: none of it may reach Redis.
  await store.forks('tm').open({ openId: 'n1:s1:1', session: 's1', node: 'n1', fileId: file.id, fork: 'data', mode: 3 });
  await store.sessions().putSession({ id: 's1', node: 'n1', user: 'alice', uid: 1000, token: 'ab', clientId: '', timestamp: null, volumes: ['tm'], tmVolumes: ['tm'], forkVolumes: ['tm'], createdAt: 1 }, 600_000);
  await store.registerNode({ id: 'dead', host: 'h', port: 548, version: '0', startedAt: 1 }, 1);
  await store.claimLease('advertiser', 'dead', 1);
  await new Promise((r) => setTimeout(r, 5));
  await store.close();
  return { tree, other: other2 };
}

describe('migrating the embedded store to Redis', () => {
  it('copies every record, and Redis answers as the embedded store did', async (t) => {
    const fx = await fixture(t);
    if (!fx) return;
    const path = join(fx.dir, 'meta');
    const { tree, other } = await populate(path);
    const before = await EmbeddedMetaStore.open(path, { readOnly: true });
    const identity = await before.serverIdentity();
    const users = await before.listUsers();
    const gcBefore = await before.namespace('tm', { fold: FOLD }).gcDue(Number.MAX_SAFE_INTEGER, 100);
    const statsBefore = await before.namespace('tm', { fold: FOLD }).stats();
    const steps: [MigrationStep, string, number][] = [];
    let advanced = 0;
    const target = await RedisMetaStore.connect({ url: fx.url, keyPrefix: fx.keyPrefix });
    const admin = new Redis({ host: '127.0.0.1', port: fx.port });
    try {
      const summary = await migrateToRedis(before, target, {
        listener: { begin: (s, v, n) => steps.push([s, v, n]), advance: (n) => (advanced += n), end: () => undefined },
      });
      assert.equal(summary.users, 2);
      assert.equal(summary.identity, true);
      assert.deepEqual(summary.volumes.map((v) => v.key), ['other-vol', 'tm']);
      const tm = summary.volumes.find((v) => v.key === 'tm')!;
      assert.deepEqual(tm.copied, { nodes: tree.size, xattrs: 3, kv: 2, blocks: 5, gc: gcBefore.length });
      assert.equal(gcBefore.length, 3, 'the replaced and the removed blocks wait on the GC queue');
      assert.ok(summary.transient > 0, 'transient keys were seen and left behind');
      assert.equal(summary.orphans, 0);
      assert.deepEqual(steps.map(([s, v]) => `${s} ${v}`), ['copy other-vol', 'copy tm', 'verify other-vol', 'verify tm']);
      assert.equal(advanced, 2 * steps.slice(0, 2).reduce((sum, [, , n]) => sum + n, 0), 'progress reaches every total, copying and verifying');

      // Server-wide records.
      assert.deepEqual(await target.serverIdentity(), identity);
      assert.deepEqual(await target.listUsers(), users);
      assert.equal((await target.getUserByUid(1002))?.name, 'Bob');
      assert.equal((await target.createUser({ name: 'carol', password: PW })).uid, 1003, 'the uid counter came along: a deleted uid is not reused');

      // The namespace, read through the Redis backend with the volume's fold.
      const ns = target.namespace('tm', { fold: FOLD });
      for (const [p, rec] of tree) {
        assert.deepEqual(await ns.get(rec.id), rec, `record of ${p}`);
        if (p === '') continue;
        const parent = tree.get(p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '')!;
        assert.equal((await ns.lookup(parent.id, p.slice(p.lastIndexOf('/') + 1).toUpperCase()))?.id, rec.id, `lookup of ${p} through the fold`);
      }
      const rootList = await ns.children(ROOT_ID, { limit: 100 });
      const embeddedList = await before.namespace('tm', { fold: FOLD }).children(ROOT_ID, { limit: 100 });
      assert.deepEqual(rootList, embeddedList, 'the root lists the same entries in the same order');
      const file = tree.get('Mac.sparsebundle/bands/0')!;
      assert.equal((await ns.blockMap(file.id, 'data')).size, 3);
      assert.deepEqual(await ns.blockRef(file.id, 'rsrc', 2 ** 40), { file: file.id, gen: (await ns.blockRef(file.id, 'data', 0))!.gen + 6 });
      assert.deepEqual(await ns.getXattr(file.id, 'com.apple.metadata:_kMDItemUserTags'), Buffer.from([0, 1, 2, 255]));
      assert.deepEqual(await ns.listXattrs(file.id), ['com.apple.metadata:_kMDItemUserTags', 'ünï']);
      assert.deepEqual(await ns.kvGet('icon:ttxt'), Buffer.from([9, 8, 7]));
      assert.deepEqual(await ns.gcDue(Number.MAX_SAFE_INTEGER, 100), gcBefore);
      assert.deepEqual(await ns.stats(), statsBefore);
      assert.equal(await ns.fixBlockSize(BLOCK * 2), BLOCK, 'the block size stays fixed');
      assert.equal(tm.counters.gen, 10);
      assert.equal(await ns.reserveGenerations(1), 11, 'generations go on where they stopped');
      const next = await ns.create(ROOT_ID, 'new', 'file', OWNER, Date.now());
      assert.equal(next.id, statsBefore.lastId + 1, 'CNIDs go on where they stopped');

      const ns2 = target.namespace('other-vol', { fold: (s) => s });
      for (const [p, rec] of other) if (p !== '') assert.equal((await ns2.lookup(ROOT_ID, p))?.id, rec.id, `case-sensitive ${p}`);

      // Nothing transient, and every key under the volume's or the server's hash tag.
      const keys = await admin.keys(`${fx.keyPrefix}:*`);
      assert.deepEqual(keys.filter((k) => /:fk:|\{sess\}|:node:dead|:lease:/.test(k)), []);
      assert.deepEqual(keys.filter((k) => !/^[^{]+:\{(global|v:tm|v:other-vol)\}:/.test(k)), []);
    } finally {
      admin.disconnect();
      await target.close();
      await before.close();
      await fx.cleanup();
    }
  });

  it('the verification finds a record that Redis reads back differently', async (t) => {
    const fx = await fixture(t);
    if (!fx) return;
    const path = join(fx.dir, 'meta');
    const { tree } = await populate(path);
    const source = await EmbeddedMetaStore.open(path, { readOnly: true });
    const target = await RedisMetaStore.connect({ url: fx.url, keyPrefix: fx.keyPrefix });
    const admin = new Redis({ host: '127.0.0.1', port: fx.port });
    try {
      const summary = await migrateToRedis(source, target);
      const globals = source.dump().globals();
      await verifyMigration(source, target, { globals, volumes: summary.volumes });
      const zebra = tree.get('Zebra')!;
      const file = tree.get('Mac.sparsebundle/bands/0')!;
      await admin.hset(`${fx.keyPrefix}:{v:tm}:node:${zebra.id}`, 'modifiedAt', '1');
      await admin.hdel(`${fx.keyPrefix}:{v:tm}:blk:${file.id}:d`, '2');
      await admin.zrem(`${fx.keyPrefix}:{v:tm}:ord:${ROOT_ID}`, (await admin.zrange(`${fx.keyPrefix}:{v:tm}:ord:${ROOT_ID}`, '0', '0'))[0]!);
      const inner = tree.get('Zebra/inner')!;
      await admin.del(`${fx.keyPrefix}:{v:tm}:node:${inner.id}`);
      await admin.hset(`${fx.keyPrefix}:{global}:user:bob`, 'password', JSON.stringify({ ...PW, hash: 'd3Jvbmc=' }));
      await assert.rejects(verifyMigration(source, target, { globals, volumes: summary.volumes }), (err: unknown) => {
        assert.ok(err instanceof MigrationMismatchError, String(err));
        assert.match(err.message, new RegExp(`node ${zebra.id} \\("Zebra"\\): its record differs`));
        assert.match(err.message, new RegExp(`node ${file.id}: the data fork's block map differs \\(2 blocks instead of 3\\)`));
        assert.match(err.message, new RegExp(`node ${ROOT_ID}: its listing differs`));
        assert.match(err.message, new RegExp(`node ${inner.id} \\("inner"\\) is missing`));
        assert.match(err.message, new RegExp(`node ${zebra.id}: reading it back failed: .*inconsistent`));
        assert.match(err.message, /users: .* or their records differ/);
        assert.match(err.message, /do not start a gateway on it/);
        return true;
      });
    } finally {
      admin.disconnect();
      await target.close();
      await source.close();
      await fx.cleanup();
    }
  });

  it('refuses a source with records of a kind it does not know, before writing anything', async (t) => {
    const fx = await fixture(t);
    if (!fx) return;
    const path = join(fx.dir, 'meta');
    await populate(path);
    const raw = open({ path, noSubdir: false, encoding: 'msgpack' });
    await raw.put('zz:future-kind', 1);
    await raw.put('ns:tm:w:1', 1);
    await raw.close();
    const source = await EmbeddedMetaStore.open(path, { readOnly: true });
    const target = await RedisMetaStore.connect({ url: fx.url, keyPrefix: fx.keyPrefix });
    const admin = new Redis({ host: '127.0.0.1', port: fx.port });
    try {
      await assert.rejects(migrateToRedis(source, target), (err: unknown) => {
        assert.ok(err instanceof MigrationRefusedError, String(err));
        assert.match(err.message, /records of a kind this version cannot migrate \("ns:tm:w:1", "zz:future-kind"\)/);
        return true;
      });
      assert.deepEqual(await admin.keys(`${fx.keyPrefix}:*`), []);
    } finally {
      admin.disconnect();
      await target.close();
      await source.close();
      await fx.cleanup();
    }
  });

  it('a read-only source cannot be changed by accident', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'afpgw-migrate-ro-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'meta');
    const writable = await EmbeddedMetaStore.open(path);
    await writable.createUser({ name: 'alice', password: PW });
    await writable.close();
    const ro = await EmbeddedMetaStore.open(path, { readOnly: true });
    try {
      await assert.rejects(ro.createUser({ name: 'mallory', password: PW }));
      assert.deepEqual((await ro.listUsers()).map((u) => u.name), ['alice']);
    } finally {
      await ro.close();
    }
    await assert.rejects(EmbeddedMetaStore.open(join(dir, 'nowhere'), { readOnly: true }), 'no store is made where there was none');
  });
});
