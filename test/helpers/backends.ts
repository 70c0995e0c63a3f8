import { after, before } from 'node:test';
import { redisAvailable, startRedis, type RedisServer } from './redis-server.js';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from './gateway.js';

export type Backend = 'embedded' | 'redis';
export const BACKENDS: readonly Backend[] = ['embedded', 'redis'];

/**
 * Starts a gateway on the given metadata backend for the enclosing describe block. The
 * getter returns undefined only when Redis is missing outside CI (tests then skip).
 */
export function gatewayFor(backend: Backend, opts: TestGatewayOptions = {}): () => TestGateway | undefined {
  let g: TestGateway | undefined;
  let redis: RedisServer | undefined;
  before(async () => {
    let metadata: Record<string, unknown> = { backend: 'embedded' };
    if (backend === 'redis') {
      if (!redisAvailable()) {
        if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
        return;
      }
      redis = await startRedis();
      metadata = { backend: 'redis', url: redis.url, keyPrefix: 'nstest' };
    }
    g = await startTestGateway({ ...opts, config: { ...opts.config, metadata } });
  });
  after(async () => {
    await g?.stop();
    await redis?.stop();
  });
  return () => g;
}

export const SKIP_REASON = 'redis-server not installed (apt-get install redis-server)';
