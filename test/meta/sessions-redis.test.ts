import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Redis } from 'ioredis';
import { MetaConflictError } from '../../src/meta/meta-store.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { lasting } from '../helpers/redis-keys.js';
import { needRedis } from '../helpers/redis-server.js';
import { redisMetaFixture } from '../helpers/redis-meta.js';
import { rec, reply, sessionsContract } from './sessions-contract.js';

const { redisServer, freshPrefix, open } = redisMetaFixture('ss');

sessionsContract('RedisSessionStore', async (t) => {
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

it('RedisSessionStore: two nodes see each other\'s sessions and replies', async (t) => {
  if (!needRedis(t)) return;
  const { url } = await redisServer();
  const keyPrefix = freshPrefix();
  const nodeA = await RedisMetaStore.connect({ url, keyPrefix });
  const nodeB = await RedisMetaStore.connect({ url, keyPrefix });
  try {
    const a = nodeA.sessions();
    const b = nodeB.sessions();
    await a.putSession(rec('A-1', { node: 'A', token: 'feed' }), 60_000);
    await a.putReply('A-1', 16, reply(9, 40, Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef])), 60_000);
    // The Mac reconnects to node B with its token: B finds the session and its cached reply.
    const found = await b.sessionByToken('feed');
    assert.deepEqual(found, rec('A-1', { node: 'A', token: 'feed' }));
    assert.deepEqual(await b.replies('A-1', 16), [reply(9, 40, Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]))]);
    // B takes the session over under a new token; A sees the move.
    await b.putSession({ ...found!, node: 'B', token: 'beef' }, 60_000);
    assert.equal((await a.session('A-1'))?.node, 'B');
    assert.equal(await a.sessionByToken('feed'), undefined);
    await assert.rejects(a.putSession(rec('A-2', { node: 'A', token: 'beef' }), 60_000), MetaConflictError);
    assert.deepEqual((await a.sessionsOfUser('alice')).map((r) => r.node), ['B']);
    await a.dropSession('A-1');
    assert.equal(await b.session('A-1'), undefined);
    assert.deepEqual(await b.replies('A-1', 16), []);
  } finally {
    await nodeA.close();
    await nodeB.close();
  }
});

it('RedisSessionStore keeps every key under the {sess} hash tag and leaves none behind', async (t) => {
  if (!needRedis(t)) return;
  const { url, port } = await redisServer();
  const keyPrefix = freshPrefix();
  const store = await RedisMetaStore.connect({ url, keyPrefix });
  const admin = new Redis({ port, host: '127.0.0.1' });
  const scan = async (): Promise<string[]> => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return lasting(admin, found);
  };
  try {
    const s = store.sessions();
    // Braces and colons in ids, tokens and users must not move the hash tag.
    await s.putSession(rec('s{1}', { token: 't}{', user: 'u:{x}' }), 60_000);
    await s.putSession(rec('s:2', { token: 'ab' }), 60_000);
    await s.putReply('s{1}', 8, reply(1, 1), 60_000);
    await s.putReply('s:2', 8, reply(1, 1), 60_000);
    const written = await scan();
    assert.deepEqual(written, [
      `${keyPrefix}:{sess}:rp:s:2`,
      `${keyPrefix}:{sess}:rp:s{1}`,
      `${keyPrefix}:{sess}:s:s:2`,
      `${keyPrefix}:{sess}:s:s{1}`,
      `${keyPrefix}:{sess}:t:ab`,
      `${keyPrefix}:{sess}:t:t}{`,
      `${keyPrefix}:{sess}:u:alice`,
      `${keyPrefix}:{sess}:u:u:{x}`,
    ].sort());
    // Redis Cluster hashes the text between the first '{' and the next '}'.
    for (const key of written) {
      const open = key.indexOf('{');
      assert.equal(key.slice(open + 1, key.indexOf('}', open + 1)), 'sess', key);
    }
    // Every key expires: nothing of a session outlives it in Redis.
    for (const key of written) assert.ok((await admin.pttl(key)) > 0, key);
    await s.dropSession('s{1}');
    await s.dropSession('s:2');
    assert.deepEqual(await scan(), []);
  } finally {
    admin.disconnect();
    await store.close();
  }
});
