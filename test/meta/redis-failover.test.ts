/**
 * The metadata store across a broken Redis connection: a call made while Redis is away
 * waits for it (a restart, a Sentinel failover) instead of failing, and a script whose
 * reply was lost, sent again on the new connection, does its change once and answers as
 * the first run did (src/meta/redis-scripts.ts).
 *
 * The break is made by a TCP proxy between the store and a real redis-server: 'deaf' lets
 * the script reach Redis and swallows its reply, as a master that dies just after running a
 * command (whose effects reached the replica) would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { MetaCallObserver } from '../../src/meta/call-observer.js';
import { MetaUnavailableError } from '../../src/meta/meta-store.js';
import { ForkError } from '../../src/meta/forks.js';
import { NamespaceError } from '../../src/meta/namespace.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { needRedis, redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { password } from './contract.js';
import { FOLD } from './namespace-contract.js';

const INIT = { uid: 0, gid: 0, mode: 0o755 };

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RedisMetaStore across a broken connection', () => {
  let redis: RedisServer | undefined;
  let proxy: FaultProxy;
  let admin: Redis;
  let n = 0;

  before(async () => {
    if (!redisAvailable()) return;
    redis = await startRedis();
    proxy = await startFaultProxy({ host: '127.0.0.1', port: redis.port });
    admin = new Redis(redis.port, '127.0.0.1');
  });

  after(async () => {
    admin?.disconnect();
    await proxy?.close();
    await redis?.stop();
  });

  /** A store that reaches Redis through the proxy, and one that reaches it directly. */
  async function stores(failoverWaitMs = 10_000, calls?: MetaCallObserver) {
    const prefix = `f${++n}`;
    const viaProxy = await RedisMetaStore.connect({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, failoverWaitMs, ...(calls ? { calls } : {}) });
    const direct = await RedisMetaStore.connect({ url: redis!.url, keyPrefix: prefix });
    return { viaProxy, direct, close: async () => Promise.all([viaProxy.close(), direct.close()]) };
  }

  it('a create whose reply was lost is sent again and answers as it did the first time, once', async (t) => {
    if (!needRedis(t)) return;
    proxy.mode = 'pass';
    const { viaProxy, direct, close } = await stores();
    try {
      const ns = viaProxy.namespace('tm', { fold: FOLD });
      const root = await ns.init('TM', INIT);
      const seen = direct.namespace('tm', { fold: FOLD });

      proxy.mode = 'deaf';
      const created = ns.create(root.id, 'band-0', 'file', INIT, Date.now());
      await until('Redis to run the create', async () => (await seen.lookup(root.id, 'band-0')) !== undefined);
      const stored = (await seen.lookup(root.id, 'band-0'))!;
      // The connection breaks with the reply still owed; ioredis sends the script again.
      proxy.mode = 'pass';
      proxy.dropAll();
      const record = await created;
      assert.equal(record.id, stored.id, 'the resent create answers with the node the first run made, not kFPObjectExists');
      const page = await seen.children(root.id, { limit: 10 });
      assert.deepEqual(page.entries.map((e) => e.name), ['band-0'], 'one node, not two');
      assert.equal((await seen.get(root.id))?.childCount, 1);
      // A new create of the same name is a new operation: that one must fail.
      await assert.rejects(ns.create(root.id, 'band-0', 'file', INIT, Date.now()), (err: unknown) => err instanceof NamespaceError && err.reason === 'exists');
    } finally {
      proxy.mode = 'pass';
      await close();
    }
  });

  it('a byte-range lock whose reply was lost is taken once', async (t) => {
    if (!needRedis(t)) return;
    proxy.mode = 'pass';
    const { viaProxy, direct, close } = await stores();
    try {
      const forks = viaProxy.forks('tm');
      const seen = direct.forks('tm');
      await forks.open({ openId: 'o1', session: 's1', node: 'n1', fileId: 17, fork: 'data', mode: 3 });
      await seen.open({ openId: 'o2', session: 's2', node: 'n1', fileId: 17, fork: 'data', mode: 1 });
      proxy.mode = 'deaf';
      const locked = forks.lock('o1', { start: 0, end: 100 });
      await until('Redis to take the lock', () =>
        seen.checkAccess('o2', { start: 0, end: 1 }).then(
          () => false,
          (err: unknown) => err instanceof ForkError && err.reason === 'range-locked',
        ),
      );
      proxy.mode = 'pass';
      proxy.dropAll();
      await locked; // unguarded, the resend would overlap the lock the first run took: range-overlap
      await assert.rejects(forks.lock('o1', { start: 50, end: 60 }), (err: unknown) => err instanceof ForkError && err.reason === 'range-overlap');
      await forks.unlock('o1', { start: 0, end: 100 });
      await seen.checkAccess('o2', { start: 0, end: 100 });
    } finally {
      proxy.mode = 'pass';
      await close();
    }
  });

  it('a call made while Redis is unreachable waits for it and then succeeds', async (t) => {
    if (!needRedis(t)) return;
    proxy.mode = 'pass';
    const { viaProxy, close } = await stores();
    try {
      await viaProxy.createUser({ name: 'before', password: password() });
      proxy.mode = 'refuse';
      proxy.dropAll();
      const during = viaProxy.getUser('before');
      const refusedAt = proxy.refused;
      await until('ioredis to try reconnecting', async () => proxy.refused > refusedAt + 2);
      proxy.mode = 'pass';
      assert.equal((await during)?.name, 'before');
    } finally {
      proxy.mode = 'pass';
      await close();
    }
  });

  it('a call fails with MetaUnavailableError once Redis has been away for failoverWaitMs', async (t) => {
    if (!needRedis(t)) return;
    proxy.mode = 'pass';
    const { viaProxy, close } = await stores(600);
    try {
      proxy.mode = 'refuse';
      proxy.dropAll();
      await assert.rejects(viaProxy.getUser('nobody'), MetaUnavailableError);
    } finally {
      proxy.mode = 'pass';
      await close();
    }
  });

  it('reports each call to its observer once, across a resend and a wait for Redis, and a failure by its error', async (t) => {
    if (!needRedis(t)) return;
    proxy.mode = 'pass';
    const seen: { op: string; outcome: string }[] = [];
    const calls: MetaCallObserver = { observe: (op, outcome, seconds) => {
      assert.ok(seconds >= 0);
      seen.push({ op, outcome });
    } };
    const count = (op: string, outcome = 'ok') => seen.filter((c) => c.op === op && c.outcome === outcome).length;
    const { viaProxy, direct, close } = await stores(10_000, calls);
    try {
      const ns = viaProxy.namespace('tm', { fold: FOLD });
      const root = await ns.init('TM', INIT);
      const other = direct.namespace('tm', { fold: FOLD });
      assert.equal(count('afpgwNsInit'), 1, 'a script is known by its name');
      proxy.mode = 'deaf';
      const created = ns.create(root.id, 'band-0', 'file', INIT, Date.now());
      await until('Redis to run the create', async () => (await other.lookup(root.id, 'band-0')) !== undefined);
      proxy.mode = 'pass';
      proxy.dropAll();
      await created;
      assert.equal(count('afpgwNsCreate'), 1, 'the resent create is one call');

      await viaProxy.createUser({ name: 'u', password: password() });
      proxy.mode = 'refuse';
      proxy.dropAll();
      const before = count('hgetall');
      const during = viaProxy.getUser('u');
      const refusedAt = proxy.refused;
      await until('ioredis to try reconnecting', async () => proxy.refused > refusedAt + 2);
      proxy.mode = 'pass';
      assert.equal((await during)?.name, 'u');
      assert.equal(count('hgetall') - before, 1, 'a call queued while Redis was away is one call');
    } finally {
      proxy.mode = 'pass';
      await close();
    }

    const failing = await stores(600, calls);
    try {
      proxy.mode = 'refuse';
      proxy.dropAll();
      await assert.rejects(failing.viaProxy.getUser('nobody'), MetaUnavailableError);
      const failed = seen.filter((c) => c.op === 'hgetall' && c.outcome !== 'ok');
      assert.equal(failed.length, 1, `the failure is reported once, by its error (${JSON.stringify(failed)})`);
      assert.match(failed[0]!.outcome, /Error$/);
    } finally {
      proxy.mode = 'pass';
      await failing.close();
    }
  });

  it('rejects a failoverWaitMs that would outlive the kept replies', async () => {
    await assert.rejects(RedisMetaStore.connect({ url: 'redis://127.0.0.1:1', failoverWaitMs: 10 * 60_000 }), RangeError);
  });
});
