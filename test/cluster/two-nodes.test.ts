/**
 * Two gateways in one process over one redis-server and one bucket, each with its own cache:
 * what one node's clients do to a file (deny modes, byte-range locks, open forks, synced
 * bytes) is what the other node's clients see. The clients are of different users, so no
 * lock stealing between them ends either session.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kFPDenyConflict, kFPLockErr, kFPRangeNotLocked } from '../../src/afp/result-codes.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT, type AfpVolume } from '../../src/client/afp-volume.js';
import { resultCode as code } from '../helpers/afp.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
const RW = ForkMode.Read | ForkMode.Write;
const D_OPEN = 0x0008;
const R_OPEN = 0x0010;
const PREFIX = 'two-nodes';
/** FPSetFileDirParms bit for UnixPrivs. */
const UNIX_PRIVS = 0x8000;

type Client = { c: AfpClient; v: AfpVolume };

async function session(g: TestGateway, who: { name: string; password: string }): Promise<Client> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: who.name, password: who.password });
  return { c, v: await c.openVolume('TimeMachine') };
}

describe('two gateways over one Redis and one bucket', () => {
  let redis: RedisServer | undefined;
  let s3: S3Server | undefined;
  let work: string | undefined;
  let nodeA: TestGateway | undefined;
  let nodeB: TestGateway | undefined;
  /** Alice on node A, bob on node B. */
  let a: Client;
  let b: Client;

  before(async () => {
    if (!redisAvailable()) {
      if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
      return;
    }
    work = await mkdtemp(join(tmpdir(), 'afpgw-two-nodes-'));
    s3 = await startS3({ bucket: PREFIX });
    redis = await startRedis();
    const config = (name: string) => ({
      metadata: { backend: 'redis', url: redis!.url, keyPrefix: PREFIX },
      objects: s3Config(s3!, { prefix: PREFIX }),
      cache: { dir: join(work!, `cache-${name}`) },
      volumes: [{ name: 'TimeMachine', timeMachine: true }],
    });
    // The users live in Redis: created once, through the first node.
    nodeA = await startTestGateway({ users: [ALICE, BOB], config: config('a') });
    nodeB = await startTestGateway({ config: config('b') });
    a = await session(nodeA, ALICE);
    b = await session(nodeB, BOB);
  });

  after(async () => {
    await a?.c.close().catch(() => {});
    await b?.c.close().catch(() => {});
    await nodeA?.stop();
    await nodeB?.stop();
    await redis?.stop();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Alice's new file on node A, writable by everyone (so bob may open it for Write), content synced. */
  async function shared(name: string, content: Buffer = Buffer.alloc(0)): Promise<string> {
    await a.v.createFile(ROOT, name, true);
    await a.v.setParms('file', ROOT, name, UNIX_PRIVS, { unixPrivs: { uid: 0, gid: 0, mode: 0o100666, accessRights: 0 } });
    if (content.length > 0) {
      const f = await a.v.openFork(ROOT, name, { mode: RW });
      await f.write(0, content);
      await f.sync();
      await f.close();
    }
    return name;
  }

  test('deny modes hold across nodes', async (t) => {
    if (!nodeA) return t.skip('redis-server not installed');
    const name = await shared('deny.bin', Buffer.from('abc'));
    const writer = await a.v.openFork(ROOT, name, { mode: RW | ForkMode.DenyWrite });
    const refused = await b.v.openForkReply(ROOT, name, { mode: ForkMode.Write });
    assert.equal(refused.code, kFPDenyConflict, 'Write against a DenyWrite open on the other node');
    assert.equal(refused.refnum, 0);
    assert.equal(refused.params.dataLength, 3, 'the parameter block comes with the error');
    const reader = await b.v.openFork(ROOT, name, { mode: ForkMode.Read });
    assert.ok(reader.refnum > 0);
    assert.equal((await reader.readExt(0, 3)).data.toString(), 'abc');
    assert.equal(await code(b.v.openFork(ROOT, name, { mode: ForkMode.Read | ForkMode.DenyWrite })), kFPDenyConflict, 'DenyWrite against the writer on A');
    assert.equal(await code(b.v.openFork(ROOT, name, { mode: ForkMode.DenyRead })), kFPDenyConflict, 'DenyRead against the reader on A');
    await writer.close();
    const now = await b.v.openFork(ROOT, name, { mode: ForkMode.Write });
    assert.ok(now.refnum > 0, 'once A closes, B opens for Write');
    // ... and B's own reader still keeps a DenyRead open out, also from node A.
    assert.equal(await code(a.v.openFork(ROOT, name, { mode: ForkMode.Read | ForkMode.DenyRead })), kFPDenyConflict, 'DenyRead against the reader on B');
    await now.close();
    await reader.close();
    const excl = await a.v.openFork(ROOT, name, { mode: RW | ForkMode.DenyRead | ForkMode.DenyWrite });
    await excl.close();
  });

  test('byte-range locks hold across nodes', async (t) => {
    if (!nodeA) return t.skip('redis-server not installed');
    const name = await shared('locks.bin', Buffer.alloc(200, 0x61));
    const fa = await a.v.openFork(ROOT, name, { mode: RW });
    const fb = await b.v.openFork(ROOT, name, { mode: RW });
    assert.equal(await fa.lock(0, 100), 0);
    assert.equal(await code(fb.lock(50, 10)), kFPLockErr, 'overlapping a lock held on the other node');
    assert.equal(await code(fb.readExt(0, 5)), kFPLockErr, 'reading inside the range');
    assert.equal(await code(fb.readExt(95, 10)), kFPLockErr, 'reading across the range end');
    assert.equal(await code(fb.writeExt(60, Buffer.from('zz'))), kFPLockErr, 'writing inside the range');
    assert.equal(await code(fb.setLength(50)), kFPLockErr, 'truncating into the range');
    assert.deepEqual((await fb.readExt(100, 10)).data, Buffer.alloc(10, 0x61), 'outside the range reads');
    assert.equal(await fb.writeExt(150, Buffer.from('bb')), 152, 'outside the range writes');
    assert.equal((await fa.readExt(0, 5)).data.length, 5, 'the owner reads its own range');
    assert.equal(await code(fb.unlock(0, 100)), kFPRangeNotLocked, 'B cannot unlock the lock A holds');
    assert.equal(await fa.unlock(0, 100), 0);
    assert.equal(await fb.lock(50, 10), 50, 'once A unlocks, B locks');
    assert.equal(await code(fa.lock(55, 1)), kFPLockErr, 'and now A is refused');
    assert.equal(await fb.unlock(50, 10), 50);
    await fb.close();
    await fa.close();
  });

  test('the fork-open attribute bits show on the other node', async (t) => {
    if (!nodeA) return t.skip('redis-server not installed');
    const name = await shared('bits.bin', Buffer.from('x'));
    assert.equal((await b.v.getFileDirParms(ROOT, name)).params.attributes! & (D_OPEN | R_OPEN), 0);
    const data = await a.v.openFork(ROOT, name, { mode: ForkMode.Read });
    assert.equal((await b.v.getFileDirParms(ROOT, name)).params.attributes! & (D_OPEN | R_OPEN), D_OPEN, 'data fork open on A');
    const rsrc = await a.v.openFork(ROOT, name, { rsrc: true, mode: ForkMode.Read });
    assert.equal((await b.v.getFileDirParms(ROOT, name)).params.attributes! & (D_OPEN | R_OPEN), D_OPEN | R_OPEN, 'both forks open on A');
    await data.close();
    assert.equal((await b.v.getFileDirParms(ROOT, name)).params.attributes! & (D_OPEN | R_OPEN), R_OPEN, 'data fork closed on A');
    await rsrc.close();
    assert.equal((await b.v.getFileDirParms(ROOT, name)).params.attributes! & (D_OPEN | R_OPEN), 0);
  });

  test('bytes synced on one node read back exactly on the other', async (t) => {
    if (!nodeA) return t.skip('redis-server not installed');
    const name = await shared('synced.bin');
    const content = randomBytes(3 * 1024 * 1024 + 4321);
    const fa = await a.v.openFork(ROOT, name, { mode: RW });
    assert.equal(await fa.write(0, content), content.length);
    await fa.sync();
    await fa.close();
    const fb = await b.v.openFork(ROOT, name, { mode: ForkMode.Read });
    assert.equal(fb.params.dataLength, content.length);
    const got = await fb.read(0, content.length + 100);
    assert.equal(got.eof, true);
    assert.equal(got.data.length, content.length);
    assert.ok(got.data.equals(content), 'the bytes A synced');
    await fb.close();
  });
});
