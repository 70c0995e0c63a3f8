/**
 * S3ObjectStore against s3rver over real HTTP (no SDK mocks), and through a fault proxy for the
 * outage cases. s3rver is a dev dependency, so these tests always run: there is no skip path.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ObjectNotFoundError, ObjectStoreError, ObjectStoreUnavailableError } from '../../src/objects/errors.js';
import { openObjectStore } from '../../src/objects/open.js';
import { S3ObjectStore } from '../../src/objects/s3-store.js';
import type { S3ObjectsConfig } from '../../src/config/schema.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';
import { keysOf, objectStoreContract } from './object-store-contract.js';

// One server for the whole file, started by the first test that needs it.
let server: Promise<S3Server> | undefined;
const s3 = () => (server ??= startS3());
after(async () => {
  if (server) await (await server).stop();
});

const freshPrefix = () => `t${randomBytes(6).toString('hex')}`;

objectStoreContract('S3ObjectStore', async () => {
  const store = new S3ObjectStore(s3Config(await s3(), { prefix: freshPrefix() }));
  return { store, cleanup: () => store.close() };
});

/** Lists the raw bucket, past our store, to see where objects really landed. */
async function rawKeys(srv: S3Server, prefix: string): Promise<string[]> {
  const client = new S3Client({
    endpoint: srv.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: srv.accessKeyId, secretAccessKey: srv.secretAccessKey },
  });
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: srv.bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key ?? '');
  } finally {
    client.destroy();
  }
}

describe('S3ObjectStore specifics', () => {
  it('keeps keys under its prefix, with or without a trailing slash', async () => {
    const srv = await s3();
    const p = freshPrefix();
    const a = new S3ObjectStore(s3Config(srv, { prefix: `${p}/one` }));
    const b = new S3ObjectStore(s3Config(srv, { prefix: `${p}/two/` }));
    try {
      await a.put('k/1', Buffer.from('a'));
      await b.put('k/1', Buffer.from('b'));
      assert.deepEqual(await rawKeys(srv, `${p}/`), [`${p}/one/k/1`, `${p}/two/k/1`]);
      assert.deepEqual(await keysOf(a, ''), ['k/1']);
      assert.deepEqual(await a.get('k/1'), Buffer.from('a'));
      assert.deepEqual(await b.get('k/1'), Buffer.from('b'));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('works with either checksum setting', async () => {
    const srv = await s3();
    for (const mode of ['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as const) {
      const s = new S3ObjectStore(s3Config(srv, { prefix: freshPrefix(), requestChecksumCalculation: mode, responseChecksumValidation: mode }));
      try {
        const body = randomBytes(300_000);
        await s.put('c', body);
        assert.ok((await s.get('c')).equals(body), mode);
        assert.deepEqual(await s.head('c'), { size: body.length });
      } finally {
        await s.close();
      }
    }
  });

  it('opens from config without touching the network', async () => {
    const s = await openObjectStore(s3Config(await s3(), { endpoint: 'http://127.0.0.1:1', prefix: freshPrefix() }));
    assert.ok(s instanceof S3ObjectStore);
    await s.close();
  });

  it('tells a missing bucket apart from a missing key', async () => {
    const s = new S3ObjectStore(s3Config(await s3(), { bucket: 'no-such-bucket', maxAttempts: 1 }));
    try {
      await assert.rejects(s.get('k'), (err: unknown) => {
        assert.ok(err instanceof ObjectStoreError && !(err instanceof ObjectNotFoundError) && !(err instanceof ObjectStoreUnavailableError), String(err));
        assert.match(err.message, /no-such-bucket/);
        return true;
      });
      await assert.rejects(s.put('k', Buffer.from('x')), ObjectStoreError);
    } finally {
      await s.close();
    }
  });

  it('reports bad credentials as a plain ObjectStoreError, not as unavailable', async () => {
    // s3rver checks only the access key id (it does not verify SigV4 signatures).
    const s = new S3ObjectStore(s3Config(await s3(), { accessKeyId: 'NOBODY', maxAttempts: 1 }));
    try {
      await assert.rejects(s.put('k', Buffer.from('x')), (err: unknown) => {
        assert.ok(err instanceof ObjectStoreError && !(err instanceof ObjectStoreUnavailableError), String(err));
        return true;
      });
    } finally {
      await s.close();
    }
  });
});

describe('S3ObjectStore through a failing network', () => {
  let proxy: FaultProxy;
  before(async () => {
    const srv = await s3();
    proxy = await startFaultProxy({ host: '127.0.0.1', port: srv.port });
  });
  after(async () => {
    await proxy?.close();
  });

  const storeVia = async (overrides: Partial<S3ObjectsConfig>) =>
    new S3ObjectStore(s3Config(await s3(), { endpoint: proxy.endpoint, prefix: freshPrefix(), ...overrides }));

  it('gives up on a refused endpoint after the configured attempts, promptly', async () => {
    const s = await storeVia({ maxAttempts: 3, timeoutMs: 2000 });
    try {
      proxy.mode = 'pass';
      await s.put('warm', Buffer.from('x')); // leaves a pooled keep-alive connection
      proxy.mode = 'refuse';
      proxy.dropAll();
      // Let the client see the reset, so the first attempt opens a connection rather than
      // writing into the dead pooled one (which would also be retried, but not counted here).
      await new Promise((r) => setTimeout(r, 50));
      const refusedBefore = proxy.refused;
      const started = Date.now();
      await assert.rejects(s.put('k', randomBytes(100_000)), (err: unknown) => {
        assert.ok(err instanceof ObjectStoreUnavailableError, String(err));
        assert.ok(err.cause !== undefined, 'keeps the cause');
        assert.equal((err.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts, 3);
        return true;
      });
      const took = Date.now() - started;
      assert.equal(proxy.refused - refusedBefore, 3, 'one connection per attempt');
      assert.ok(took < 3000, `took ${took} ms`);
      await assert.rejects(s.get('warm'), ObjectStoreUnavailableError);
      await assert.rejects(s.head('warm'), ObjectStoreUnavailableError);
      await assert.rejects(s.delete('warm'), ObjectStoreUnavailableError);
      await assert.rejects(keysOf(s, ''), ObjectStoreUnavailableError);

      proxy.mode = 'pass';
      await s.put('k', Buffer.from('back'));
      assert.deepEqual(await s.get('k'), Buffer.from('back'));
      assert.deepEqual(await keysOf(s, ''), ['k', 'warm']);
    } finally {
      proxy.mode = 'pass';
      await s.close();
    }
  });

  it('times out on a blackholed endpoint instead of hanging, then recovers', async () => {
    const timeoutMs = 400;
    const s = await storeVia({ maxAttempts: 2, timeoutMs });
    try {
      proxy.mode = 'pass';
      await s.put('k', Buffer.from('before'));
      proxy.mode = 'blackhole';
      for (const op of [() => s.get('k'), () => s.put('k2', randomBytes(1024 * 1024))]) {
        const started = Date.now();
        await assert.rejects(op(), (err: unknown) => {
          assert.ok(err instanceof ObjectStoreUnavailableError, String(err));
          assert.match(err.message, /time/i);
          return true;
        });
        const took = Date.now() - started;
        // Two attempts of timeoutMs each, plus backoff between them, and no more.
        assert.ok(took >= 2 * timeoutMs - 50 && took < 2 * timeoutMs + 2000, `took ${took} ms`);
      }
      proxy.mode = 'pass';
      assert.deepEqual(await s.get('k'), Buffer.from('before'));
      await s.put('k2', Buffer.from('after'));
      assert.deepEqual(await s.get('k2'), Buffer.from('after'));
    } finally {
      proxy.mode = 'pass';
      await s.close();
    }
  });

  it('retries a request whose connection is reset mid-flight', async () => {
    const s = await storeVia({ maxAttempts: 3, timeoutMs: 3000 });
    try {
      const body = randomBytes(512 * 1024);
      proxy.mode = 'pass';
      await s.put('big', body);
      proxy.latencyMs = 300;
      proxy.mode = 'latency';
      const reading = s.get('big');
      await new Promise((r) => setTimeout(r, 100));
      proxy.dropAll(); // the request is on its way; the answer cannot have come yet
      proxy.mode = 'pass';
      assert.ok((await reading).equals(body));
    } finally {
      proxy.mode = 'pass';
      await s.close();
    }
  });

  it('works, slower, through added latency', async () => {
    const s = await storeVia({ maxAttempts: 1, timeoutMs: 3000 });
    try {
      proxy.latencyMs = 150;
      proxy.mode = 'latency';
      const started = Date.now();
      await s.put('slow', Buffer.from('tortoise'));
      assert.deepEqual(await s.get('slow'), Buffer.from('tortoise'));
      assert.ok(Date.now() - started >= 2 * 2 * 150 - 20, 'two round trips, each delayed both ways');
    } finally {
      proxy.mode = 'pass';
      await s.close();
    }
  });
});
