/**
 * The bucket goes away for a while (a TCP proxy between the gateway and s3rver refuses and
 * drops connections): writes go on into the cache until the dirty limit, then wait; a sync
 * answers an error after its timeout, never a false success; when the bucket comes back
 * everything drains, the waiting write completes, and a node with an empty cache reads
 * every byte.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashPassword } from '../../src/auth/password.js';
import { kFPMiscErr } from '../../src/afp/result-codes.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { resultCode } from '../helpers/afp.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startTestGateway, TEST_SCRYPT, type TestGateway } from '../helpers/gateway.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';
import { BytePool, firstDifference, MiB, RW, session, USER } from './helpers.js';

const BLOCK = 4 * MiB;
const DIRTY_LIMIT = 4 * BLOCK;

describe('S3 outage', () => {
  let s3: S3Server;
  let proxy: FaultProxy;
  let work: string;
  const gateways: TestGateway[] = [];

  const start = async (name: string, endpoint: string): Promise<TestGateway> => {
    const g = await startTestGateway({
      config: {
        metadata: { backend: 'embedded', path: join(work, 'meta') },
        objects: s3Config(s3, { endpoint, prefix: 'outage', maxAttempts: 2, timeoutMs: 1000 }),
        cache: { dir: join(work, `cache-${name}`), size: '64MiB', dirtyLimit: DIRTY_LIMIT, syncTimeoutSeconds: 2 },
      },
      // Fast tickles, to see them arrive while a sync waits on the bucket.
      tune: (cfg) => {
        cfg.dsi.tickleSeconds = 0.2;
      },
    });
    gateways.push(g);
    return g;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'afpgw-outage-'));
    s3 = await startS3({ bucket: 'outage' });
    proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
  });

  after(async () => {
    for (const g of gateways) await g.stop();
    await proxy?.close();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('writes wait at the dirty limit, syncs fail after their timeout, and nothing is lost', async () => {
    const a = await start('a', proxy.endpoint);
    await a.gw.meta.createUser({ name: USER.name, password: await hashPassword(USER.password, TEST_SCRYPT) });
    const { c, v } = await session(a.host, a.port);
    await v.createFile(ROOT, 'band', true);
    const fork = await v.openFork(ROOT, 'band', { mode: RW });
    const pool = new BytePool();
    const model = Buffer.alloc(8 * BLOCK);
    const write = async (at: number, n: number) => {
      const d = pool.take(n);
      d.copy(model, at);
      await fork.write(at, d);
    };

    await write(0, BLOCK);
    await fork.sync();

    proxy.mode = 'refuse';
    proxy.dropAll();
    // Room for the dirty limit's worth of blocks: these writes do not need the bucket.
    for (let b = 1; b <= 4; b++) await write(b * BLOCK, BLOCK);
    const t0 = Date.now();
    const tickles = c.dsi.ticklesReceived;
    assert.equal(await resultCode(fork.sync()), kFPMiscErr, 'a sync while the bucket is away fails');
    const waited = Date.now() - t0;
    // A Mac drops a connection silent for ~60 s with a request outstanding: the server tickles on.
    assert.ok(c.dsi.ticklesReceived - tickles >= 4, `tickles during the sync: ${c.dsi.ticklesReceived - tickles}`);
    assert.ok(waited >= 1500 && waited < 15_000, `the sync gave up after its timeout (${waited} ms)`);

    // The cache is at its limit: the next block's write waits for an upload.
    let done = false;
    const blocked = write(5 * BLOCK, BLOCK).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(done, false, 'a write past the dirty limit waits');
    assert.equal(a.gw.dirtyBytes, DIRTY_LIMIT, 'the cache holds exactly its dirty limit');

    proxy.mode = 'pass';
    await blocked;
    await write(6 * BLOCK, BLOCK);
    await fork.sync();
    assert.equal(await firstDifference(fork, model, 7 * BLOCK), -1);
    await fork.close();
    await c.close();

    // Only the stores speak: a second node (the first stopped: one LMDB environment).
    await a.stop();
    gateways.splice(gateways.indexOf(a), 1);
    const b = await start('b', s3.endpoint);
    const s = await session(b.host, b.port);
    const cold = await s.v.openFork(ROOT, 'band', { mode: RW });
    assert.equal(await cold.length(), 7 * BLOCK);
    assert.equal(await firstDifference(cold, model, 7 * BLOCK), -1, 'every byte reached the bucket');
    await cold.close();
    await s.c.close();
  });
});
