import { randomBytes } from 'node:crypto';
import { after, type TestContext } from 'node:test';
import type { MetaStore } from '../../src/meta/meta-store.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { needRedis, startRedis, type RedisServer } from './redis-server.js';

/**
 * The Redis side of the metadata contract tests: one redis-server for the whole test file
 * (started by the first test that needs it, stopped after the file), a fresh key prefix
 * per test, and connections that the test's cleanup closes.
 */
export function redisMetaFixture(prefixTag: string) {
  let server: Promise<RedisServer> | undefined;
  after(async () => {
    if (server) await (await server).stop();
  });
  const redisServer = (): Promise<RedisServer> => (server ??= startRedis());
  const freshPrefix = (): string => `${prefixTag}${randomBytes(6).toString('hex')}`;

  /** Connections under one fresh prefix; undefined when Redis is missing outside CI (the test skipped). */
  async function open(t: TestContext): Promise<{ connect(): Promise<MetaStore>; cleanup(): Promise<void> } | undefined> {
    if (!needRedis(t)) return undefined;
    const { url } = await redisServer();
    const keyPrefix = freshPrefix();
    const opened: MetaStore[] = [];
    return {
      async connect() {
        const s = await RedisMetaStore.connect({ url, keyPrefix, connectTimeoutMs: 2000 });
        opened.push(s);
        return s;
      },
      async cleanup() {
        for (const s of opened) await s.close();
      },
    };
  }

  return { redisServer, freshPrefix, open };
}
