import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Redis } from 'ioredis';
import { ROOT_ID } from '../../src/meta/namespace.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { lastingKeys } from '../helpers/redis-keys.js';
import { needRedis } from '../helpers/redis-server.js';
import { redisMetaFixture } from '../helpers/redis-meta.js';
import { FOLD, namespaceContract } from './namespace-contract.js';

const { redisServer, freshPrefix, open } = redisMetaFixture('ns');

namespaceContract(
  'RedisNamespace',
  async (t) => {
    const fx = await open(t);
    if (!fx) return undefined;
    const { connect } = fx;
    return {
      store: await connect(),
      // A second connection, as the other node of a pair would have.
      peer: await connect(),
      reopen: connect,
      cleanup: fx.cleanup,
    };
  },
  { bigDirectory: 100_000 },
);

it('RedisNamespace keeps every key a volume writes under that volume\'s hash tag', async (t) => {
  if (!needRedis(t)) return;
  const { url, port } = await redisServer();
  const keyPrefix = freshPrefix();
  const store = await RedisMetaStore.connect({ url, keyPrefix });
  const admin = new Redis({ port, host: '127.0.0.1' });
  try {
    const tag = (v: string) => `${keyPrefix}:{v:${v}}:`;
    for (const volume of ['tm', 'tm:2']) {
      const ns = store.namespace(volume, { fold: FOLD });
      await ns.init('root', { uid: 0, gid: 0, mode: 0o755 });
      const d = await ns.create(ROOT_ID, 'd', 'dir', { uid: 1, gid: 1, mode: 0o755 }, 1);
      const f = await ns.create(d.id, 'f{x}', 'file', { uid: 1, gid: 1, mode: 0o644 }, 1);
      const g = await ns.create(ROOT_ID, 'g', 'file', { uid: 1, gid: 1, mode: 0o644 }, 1);
      await ns.update(f.id, { dataLength: 5 });
      await ns.setXattr(f.id, 'x', Buffer.from('1'), 'create');
      await ns.setXattr(g.id, 'y', Buffer.from('2'), 'any');
      await ns.exchange(f.id, g.id);
      await ns.exchange(f.id, g.id);
      await ns.removeXattr(g.id, 'y');
      await ns.move(f.id, ROOT_ID, 'f2', 2);
      await ns.kvSet('k', Buffer.from('v'));
      await ns.kvSet('k2', Buffer.from('v'));
      await ns.kvDelete('k2');
      await ns.children(ROOT_ID, { limit: 10 });
      await ns.lookup(ROOT_ID, 'g');
      await ns.listXattrs(f.id);
      await ns.getXattr(f.id, 'x');
      await ns.kvList('');
      await ns.stats();
    }
    const written = (await admin.keys(`${keyPrefix}:*`)).sort();
    assert.ok(written.length >= 20, written.join(' '));
    for (const key of written) {
      assert.ok(key.startsWith(tag('tm')) || key.startsWith(tag('tm:2')), key);
      // Redis Cluster hashes only what lies between the first '{' and the next '}'.
      assert.match(hashTag(key), /^v:tm(:2)?$/, key);
    }

    // Removing everything leaves the root, the counters and the kv area.
    const ns = store.namespace('tm', { fold: FOLD });
    for (const e of (await ns.children(ROOT_ID, { limit: 10 })).entries) {
      for (const c of e.kind === 'dir' ? (await ns.children(e.id, { limit: 10 })).entries : []) await ns.remove(c.id, 3);
      await ns.remove(e.id, 3);
    }
    const left = (await lastingKeys(admin, `${tag('tm')}*`)).map((k) => k.slice(tag('tm').length)).sort();
    assert.deepEqual(left, ['kv', 'kvkeys', 'meta', 'node:2']);
  } finally {
    admin.disconnect();
    await store.close();
  }
});

it('RedisNamespace refuses a volume key that would break the hash tag', async (t) => {
  if (!needRedis(t)) return;
  const { url } = await redisServer();
  const store = await RedisMetaStore.connect({ url, keyPrefix: freshPrefix() });
  try {
    assert.throws(() => store.namespace('a}b', { fold: FOLD }), RangeError);
  } finally {
    await store.close();
  }
});

/** The part of a key Redis Cluster hashes to pick its slot. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}
