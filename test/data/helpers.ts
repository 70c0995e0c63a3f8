/**
 * Shared parts of the end-to-end data tests: a pool of random bytes to cut writes from (so
 * a gigabyte of test data costs no gigabyte of randomBytes), a client session, and reading
 * a whole fork back in pipelined pieces.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode, type AfpFork } from '../../src/client/afp-fork.js';
import type { AfpVolume } from '../../src/client/afp-volume.js';
import type { Backend } from '../helpers/backends.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startS3, type S3Server } from '../helpers/s3-server.js';

export const MiB = 1024 * 1024;
export const USER = { name: 'tm', password: 'tm-secret' };
export const RW = ForkMode.Read | ForkMode.Write;

export class BytePool {
  private readonly pool = randomBytes(16 * MiB + 1);
  /** `n` (≤ 8 MiB) pseudo-random bytes; consecutive calls give different slices. */
  take(n: number): Buffer {
    const at = Math.floor(Math.random() * (this.pool.length - n));
    return this.pool.subarray(at, at + n);
  }
}

export async function session(host: string, port: number, volume = 'TimeMachine'): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(host, port);
  await c.login({ user: USER.name, password: USER.password });
  return { c, v: await c.openVolume(volume) };
}

/**
 * Compares the whole fork with `model`, reading `pieceBytes` at a time with `parallel`
 * reads in flight; returns the first differing offset, or -1.
 */
export async function firstDifference(fork: AfpFork, model: Buffer, length = model.length, pieceBytes = MiB, parallel = 4): Promise<number> {
  let first = -1;
  let next = 0;
  const worker = async () => {
    while (next < length) {
      const at = next;
      next += pieceBytes;
      const want = model.subarray(at, Math.min(at + pieceBytes, length));
      const got = (await fork.read(at, want.length)).data;
      if (!got.equals(want)) {
        let i = 0;
        while (i < want.length && got[i] === want[i]) i++;
        if (first === -1 || at + i < first) first = at + i;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return first;
}

/**
 * What a heavy data suite needs around its gateways: s3rver, the metadata store of the given
 * backend (a redis-server, or an embedded store in the work directory), a work directory,
 * and gateways over them that `after` stops. Each gateway gets its own cache directory, so
 * a second one sees only what reached S3 and the metadata store.
 */
export function dataWorld(backend: Backend, tag: string, config: (name: string, w: { s3: S3Server; work: string }) => Record<string, unknown>) {
  let s3: S3Server | undefined;
  let redis: RedisServer | undefined;
  let work: string | undefined;
  let metadata: Record<string, unknown> = {};
  const gateways: TestGateway[] = [];

  before(async () => {
    if (backend === 'redis' && !redisAvailable()) {
      if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
      return;
    }
    work = await mkdtemp(join(tmpdir(), `afpgw-${tag}-`));
    s3 = await startS3({ bucket: tag });
    if (backend === 'redis') {
      redis = await startRedis();
      metadata = { backend: 'redis', url: redis.url, keyPrefix: tag };
    } else metadata = { backend: 'embedded', path: join(work, 'meta') };
  });

  after(async () => {
    for (const g of gateways) await g.stop();
    await redis?.stop();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  return {
    /** False only when Redis is missing outside CI (the test then skips). */
    get ready(): boolean {
      return s3 !== undefined;
    },
    get s3(): S3Server {
      return s3!;
    },
    get work(): string {
      return work!;
    },
    async start(name: string): Promise<TestGateway> {
      const g = await startTestGateway({ config: { metadata, ...config(name, { s3: s3!, work: work! }) } });
      gateways.push(g);
      return g;
    },
  };
}
