import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Redis } from 'ioredis';
import { Access, ForkError, LOCK_TO_END } from '../../src/meta/forks.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { lastingKeys } from '../helpers/redis-keys.js';
import { needRedis } from '../helpers/redis-server.js';
import { redisMetaFixture } from '../helpers/redis-meta.js';
import { forksContract } from './forks-contract.js';

const { redisServer, freshPrefix, open } = redisMetaFixture('fk');

forksContract('RedisForkStore', async (t) => {
  const fx = await open(t);
  if (!fx) return undefined;
  const { connect } = fx;
  return {
    store: await connect(),
    // A second connection, as the other node of a pair would have.
    peer: await connect(),
    cleanup: fx.cleanup,
  };
});

it('RedisForkStore: two nodes see each other\'s opens and locks', async (t) => {
  if (!needRedis(t)) return;
  const { url } = await redisServer();
  const keyPrefix = freshPrefix();
  const nodeA = await RedisMetaStore.connect({ url, keyPrefix });
  const nodeB = await RedisMetaStore.connect({ url, keyPrefix });
  try {
    const a = nodeA.forks('tm');
    const b = nodeB.forks('tm');
    const { Read: R, Write: W, DenyWrite: DW } = Access;
    await a.open({ openId: 'A:1:1', session: '1', node: 'A', fileId: 9, fork: 'data', mode: R | W | DW });
    assert.deepEqual(await b.opensOf(9), [{ openId: 'A:1:1', session: '1', node: 'A', fileId: 9, fork: 'data', mode: R | W | DW }]);
    const isReason = (reason: string) => (err: unknown) => err instanceof ForkError && err.reason === reason;
    await assert.rejects(b.open({ openId: 'B:1:1', session: '1', node: 'B', fileId: 9, fork: 'data', mode: W }), isReason('deny-conflict'));
    await b.open({ openId: 'B:1:1', session: '1', node: 'B', fileId: 9, fork: 'data', mode: R });
    await a.lock('A:1:1', { start: 0, end: LOCK_TO_END });
    await assert.rejects(b.checkAccess('B:1:1', { start: 7, end: 8 }), isReason('range-locked'));
    await assert.rejects(b.lock('B:1:1', { start: 7, end: 8 }), isReason('range-locked'));
    await assert.rejects(b.close('A:1:1').then(() => b.close('A:1:1')), isReason('not-open'), 'either node may close an open');
    await b.checkAccess('B:1:1', { start: 7, end: 8 });

    // Node A's lease lapses: B releases everything A held.
    await a.open({ openId: 'A:1:2', session: '1', node: 'A', fileId: 10, fork: 'rsrc', mode: R | W | DW });
    await a.lock('A:1:2', { start: 0, end: 10 });
    assert.equal(await b.releaseNode('A'), 1);
    await b.open({ openId: 'B:2:1', session: '2', node: 'B', fileId: 10, fork: 'rsrc', mode: W | DW });
    await b.lock('B:2:1', { start: 0, end: 10 });
    assert.deepEqual((await a.opensOf(10)).map((o) => o.openId), ['B:2:1']);
  } finally {
    await nodeA.close();
    await nodeB.close();
  }
});

it('RedisForkStore keeps every key under the volume\'s hash tag and leaves none behind', async (t) => {
  if (!needRedis(t)) return;
  const { url, port } = await redisServer();
  const keyPrefix = freshPrefix();
  const store = await RedisMetaStore.connect({ url, keyPrefix });
  const admin = new Redis({ port, host: '127.0.0.1' });
  try {
    const f = store.forks('tm:2');
    await f.open({ openId: 'o{1}', session: 's:{x}', node: 'n}', fileId: 3, fork: 'data', mode: Access.Read });
    await f.open({ openId: 'o2', session: 's:{x}', node: 'n}', fileId: 3, fork: 'rsrc', mode: Access.Write });
    await f.lock('o{1}', { start: 1, end: 2 });
    await f.lock('o2', { start: 1, end: 2 });
    await f.adopt('o2', 'm{2}');
    const written = await admin.keys(`${keyPrefix}:*`);
    assert.ok(written.length >= 6, written.join(' '));
    for (const key of written) assert.ok(key.startsWith(`${keyPrefix}:{v:tm:2}:fk:`), key);
    assert.deepEqual((await admin.smembers(`${keyPrefix}:{v:tm:2}:fk:nodes`)).sort(), ['m{2}', 'n}']);
    assert.deepEqual(await f.nodes(), ['m{2}', 'n}']);
    assert.equal(await f.releaseSession('s:{x}'), 2);
    assert.deepEqual(await lastingKeys(admin, `${keyPrefix}:*`), []);

    // releaseNode and close leave nothing behind either, F:nodes included.
    await f.open({ openId: 'o3', session: 's', node: 'n', fileId: 4, fork: 'data', mode: Access.Read });
    await f.open({ openId: 'o4', session: 's', node: 'n', fileId: 5, fork: 'data', mode: Access.Read });
    await f.lock('o3', { start: 0, end: 1 });
    await f.adopt('o4', 'm');
    assert.equal(await f.releaseNode('n'), 1);
    assert.deepEqual(await admin.smembers(`${keyPrefix}:{v:tm:2}:fk:nodes`), ['m']);
    await f.close('o4');
    assert.deepEqual(await lastingKeys(admin, `${keyPrefix}:*`), []);
  } finally {
    admin.disconnect();
    await store.close();
  }
});

it('RedisForkStore: a survivor restores a dead node\'s session from the store', async (t) => {
  if (!needRedis(t)) return;
  const { url } = await redisServer();
  const keyPrefix = freshPrefix();
  const nodeA = await RedisMetaStore.connect({ url, keyPrefix });
  const nodeB = await RedisMetaStore.connect({ url, keyPrefix });
  try {
    const a = nodeA.forks('tm');
    const b = nodeB.forks('tm');
    const { Read: R, Write: W, DenyWrite: DW } = Access;
    await a.open({ openId: 'A:7:1', session: '7', node: 'A', fileId: 9, fork: 'data', mode: R | W | DW });
    await a.open({ openId: 'A:7:2', session: '7', node: 'A', fileId: 9, fork: 'rsrc', mode: R });
    await a.open({ openId: 'A:8:1', session: '8', node: 'A', fileId: 10, fork: 'data', mode: R });
    await b.open({ openId: 'B:1:1', session: '1', node: 'B', fileId: 9, fork: 'data', mode: R });
    await a.lock('A:7:1', { start: 0, end: 100 });

    // A's lease lapses; B finds it, and its sessions, through the store alone.
    assert.deepEqual(await b.nodes(), ['A', 'B']);
    assert.deepEqual(await b.sessionsOfNode('A'), ['7', '8']);
    const opens = await b.opensOfSession('7');
    assert.deepEqual(opens.map((o) => o.openId), ['A:7:1', 'A:7:2']);
    for (const o of opens) await b.adopt(o.openId, 'B');
    assert.deepEqual(await a.sessionsOfNode('A'), ['8']);
    assert.deepEqual(await a.sessionsOfNode('B'), ['1', '7']);
    // Session 8 was not restored: releasing A ends it alone.
    assert.equal(await b.releaseNode('A'), 1);
    assert.deepEqual(await b.nodes(), ['B']);
    const isReason = (reason: string) => (err: unknown) => err instanceof ForkError && err.reason === reason;
    await assert.rejects(b.checkAccess('B:1:1', { start: 50, end: 51 }), isReason('range-locked'));
    await assert.rejects(a.open({ openId: 'A:9:1', session: '9', node: 'A', fileId: 9, fork: 'data', mode: W }), isReason('deny-conflict'));
    await b.unlock('A:7:1', { start: 0, end: 100 });
    await b.checkAccess('B:1:1', { start: 50, end: 51 });
    assert.equal(await b.releaseNode('B'), 3);
    assert.deepEqual(await a.nodes(), []);
  } finally {
    await nodeA.close();
    await nodeB.close();
  }
});
