import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MetaUnavailableError } from '../../src/meta/meta-store.js';
import { openMetaStore } from '../../src/meta/open.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { needRedis, startRedis } from '../helpers/redis-server.js';
import { redisMetaFixture } from '../helpers/redis-meta.js';
import { metaStoreContract, password } from './contract.js';

const { redisServer, freshPrefix, open } = redisMetaFixture('t');

metaStoreContract('RedisMetaStore', async (t) => {
  const fx = await open(t);
  if (!fx) return undefined;
  const { connect } = fx;
  return {
    store: await connect(),
    reopen: connect,
    cleanup: fx.cleanup,
  };
});

describe('RedisMetaStore specifics', () => {
  it('rejects with MetaUnavailableError, naming the address, when nothing listens', async () => {
    const port = await closedPort();
    const started = Date.now();
    await assert.rejects(RedisMetaStore.connect({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 1000 }), (err: unknown) => {
      assert.ok(err instanceof MetaUnavailableError, String(err));
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      return true;
    });
    assert.ok(Date.now() - started < 1500, 'gave up within the timeout');
  });

  it('rejects with MetaUnavailableError after the timeout when the server never answers', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      await assert.rejects(RedisMetaStore.connect({ url: `redis://127.0.0.1:${silent.port}`, connectTimeoutMs: 500 }), MetaUnavailableError);
      const took = Date.now() - started;
      assert.ok(took >= 450 && took < 1500, `took ${took} ms`);
    } finally {
      await silent.close();
    }
  });

  it('rejects with MetaUnavailableError when the password is wrong or missing', async (t) => {
    if (!needRedis(t)) return;
    const guarded = await startRedis({ extraArgs: ['--requirepass', 'sekrit'] });
    try {
      for (const password of ['wrong', undefined]) {
        await assert.rejects(RedisMetaStore.connect({ url: guarded.url, password, connectTimeoutMs: 1000 }), MetaUnavailableError);
      }
      const store = await RedisMetaStore.connect({ url: guarded.url, password: 'sekrit', connectTimeoutMs: 1000 });
      await store.close();
    } finally {
      await guarded.stop();
    }
  });

  it('rejects a key prefix that would move the hash tag', async () => {
    await assert.rejects(RedisMetaStore.connect({ url: 'redis://127.0.0.1:1', keyPrefix: 'a{b}' }), RangeError);
  });

  it('keeps every key it writes under one hash tag', async (t) => {
    if (!needRedis(t)) return;
    const { url, port } = await redisServer();
    const keyPrefix = freshPrefix();
    const store = await RedisMetaStore.connect({ url, keyPrefix });
    const admin = new Redis({ port, host: '127.0.0.1' });
    try {
      await store.createUser({ name: 'Alice', password: password() });
      await store.createUser({ name: 'bob{x}', password: password() });
      await store.deleteUser('bob{x}');
      await store.createUser({ name: 'carol', password: password() });
      await store.setUserPassword('carol', password());
      await store.serverIdentity();
      await store.registerNode({ id: 'n1', host: 'h', port: 548, version: 'v', startedAt: 1 }, 10_000);
      await store.renewNode('n1', 10_000);
      await store.registerNode({ id: 'n2', host: 'h', port: 548, version: 'v', startedAt: 1 }, 10_000);
      await store.listUsers();
      await store.listNodes();
      await store.claimLease('advertiser', 'n1', 10_000);
      await store.leaseHolder('advertiser');

      const written = (await admin.keys(`${keyPrefix}:*`)).sort();
      assert.ok(written.length >= 8, `keys: ${written.join(' ')}`);
      for (const key of written) assert.ok(key.startsWith(`${keyPrefix}:{global}:`), key);
      assert.deepEqual(
        written.filter((k) => !k.includes(':user:') && !k.includes(':node:')).map((k) => k.slice(keyPrefix.length)),
        [':{global}:counter:uid', ':{global}:identity', ':{global}:lease:advertiser', ':{global}:nodes', ':{global}:uids', ':{global}:users'],
      );
      // Leases expire on their own.
      assert.ok((await admin.pttl(`${keyPrefix}:{global}:node:n1`)) > 0);
      assert.ok((await admin.pttl(`${keyPrefix}:{global}:lease:advertiser`)) > 0);
    } finally {
      admin.disconnect();
      await store.close();
    }
  });

  it('uses the prefix afpgw by default, and openMetaStore picks Redis', async (t) => {
    if (!needRedis(t)) return;
    const { url, port } = await redisServer();
    const admin = new Redis({ port, host: '127.0.0.1' });
    const store = await openMetaStore({ backend: 'redis', url });
    try {
      assert.equal(store.kind, 'redis');
      await store.serverIdentity();
      assert.equal(await admin.exists('afpgw:{global}:identity'), 1);
    } finally {
      await admin.del('afpgw:{global}:identity');
      admin.disconnect();
      await store.close();
    }
  });

  it('reports a lost connection as MetaUnavailableError', async (t) => {
    if (!needRedis(t)) return;
    const own = await startRedis();
    const store = await RedisMetaStore.connect({ url: own.url, connectTimeoutMs: 1000, failoverWaitMs: 1000 });
    try {
      await own.stop();
      await assert.rejects(store.getUser('alice'), MetaUnavailableError);
    } finally {
      await store.close();
    }
  });
});

/** A loopback port with nothing listening on it. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Accepts connections and never says a word, like a hung server. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const s: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const address = s.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        s.close(() => resolve());
      }),
  };
}
