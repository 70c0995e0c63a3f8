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
import { kFPDenyConflict, kFPLockErr, kFPRangeNotLocked, kFPRangeOverlap } from '../../src/afp/result-codes.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT, type AfpVolume } from '../../src/client/afp-volume.js';
import { resultCode as code } from '../helpers/afp.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
/** A Mac's user for the hand-over tests: its sessions are the only ones lock stealing may end. */
const CAROL = { name: 'carol', password: 'carol-pw' };
const CAROL_LOGIN = { user: CAROL.name, password: CAROL.password };
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
    nodeA = await startTestGateway({ users: [ALICE, BOB, CAROL], config: config('a') });
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
  test('a node that holds a file open sees what the other node synced into it', async (t) => {
    if (!nodeA) return t.skip('redis-server not installed');
    const bs = 4 * 1024 * 1024;
    const before = randomBytes(bs + 1000);
    const name = await shared('coherent.bin', before);
    // B holds the file open and has read it, so its cache holds the old blocks.
    const held = await b.v.openFork(ROOT, name, { mode: ForkMode.Read });
    assert.ok((await held.read(0, before.length)).data.equals(before));

    // A overwrites the start of both blocks and extends the file, then syncs.
    const after = Buffer.from(before);
    const patch = randomBytes(5000);
    const tail = randomBytes(bs);
    const fa = await a.v.openFork(ROOT, name, { mode: RW });
    await fa.write(0, patch);
    await fa.write(bs, patch);
    await fa.write(before.length, tail);
    await fa.sync();
    patch.copy(after, 0);
    patch.copy(after, bs);
    const expected = Buffer.concat([after, tail]);

    // What B serves from now on is what A synced. FPGetFileDirParms reads the store. The fork
    // B held open all along is reloaded on A's change notice, published with A's commit: it
    // sat in B's socket before A even answered the sync, so B has read it by the time it
    // answers the request above (which waits on a Redis round trip of its own).
    assert.equal((await b.v.getFileDirParms(ROOT, name)).params.dataLength, expected.length, 'FPGetFileDirParms on B has the new length');
    assert.equal(await held.length(), expected.length, 'the fork B held open has the new length');
    assert.ok((await held.read(0, expected.length)).data.equals(expected), 'the fork B held open reads the new bytes');
    const fresh = await b.v.openFork(ROOT, name, { mode: ForkMode.Read });
    assert.equal(fresh.params.dataLength, expected.length, 'a new open on B has the new length');
    assert.ok((await fresh.read(0, expected.length)).data.equals(expected), 'a new open on B reads the new bytes');

    // And the other way round: B truncates, A (still holding the file) follows.
    const fb = await b.v.openFork(ROOT, name, { mode: RW });
    await fb.setLength(1000);
    await fb.sync();
    await fb.close();
    assert.equal(await fa.length(), 1000, 'A, holding the file open, sees the truncate B made');
    assert.ok((await fa.read(0, 2000)).data.equals(expected.subarray(0, 1000)));
    await fa.close();
    await fresh.close();
    await held.close();
  });
  test('a Mac that reaches the other node while its own lives is handed over, unsynced writes and all', async (t) => {
    if (!nodeA) return t.skip('redis-server not installed');
    const name = await shared('handover.bin');
    const mac = await AfpClient.connect(nodeA.host, nodeA.port, { holdUnanswered: true });
    await mac.login(CAROL_LOGIN);
    const token = await mac.getSessionToken(3, { id: Buffer.from('carol-mac'), timestamp: 7 });
    const v = await mac.openVolume('TimeMachine');
    const f = await v.openFork(ROOT, name, { mode: RW | ForkMode.DenyWrite });
    const written = randomBytes(100_000);
    await f.write(0, written); // acknowledged by node A, never synced by the Mac
    await f.lock(0, 10);

    // The shared address moves to node B; node A lives on.
    const started = Date.now();
    await mac.reconnect(nodeB!.host, nodeB!.port, CAROL_LOGIN, token);
    const took = Date.now() - started;
    assert.deepEqual((await f.read(0, written.length)).data, written, 'B serves the bytes A acknowledged (A synced them when it let go)');
    assert.equal(await code(f.lock(0, 10)), kFPRangeOverlap, 'the lock came along, still this session\'s');
    assert.equal(await code(b.v.openFork(ROOT, name, { mode: ForkMode.Write })), kFPDenyConflict, 'and the deny modes, for others');
    await f.write(written.length, Buffer.from('more'));
    await f.sync();
    await f.close();
    const check = await a.v.openFork(ROOT, name, { mode: ForkMode.Read });
    assert.equal(check.params.dataLength, written.length + 4, 'what the Mac wrote on both nodes');
    await check.close();
    t.diagnostic(`hand-over from a live node: ${took} ms from the reconnect to the resumed session (no lease wait)`);
    await mac.close();
  });

  test('lock stealing ends the session of the same Mac held by the other, live node', async (t) => {
    if (!nodeA) return t.skip('redis-server not installed');
    const name = await shared('steal.bin', Buffer.from('x'));
    const before = await AfpClient.connect(nodeA.host, nodeA.port);
    await before.login(CAROL_LOGIN);
    await before.getSessionToken(3, { id: Buffer.from('carol-mac-2'), timestamp: 1 });
    const bv = await before.openVolume('TimeMachine');
    await bv.openFork(ROOT, name, { mode: RW | ForkMode.DenyWrite | ForkMode.DenyRead });

    // The Mac restarts and comes back through node B: its old session on A keeps it out ...
    const after = await AfpClient.connect(nodeB!.host, nodeB!.port);
    await after.login(CAROL_LOGIN);
    const av = await after.openVolume('TimeMachine');
    assert.equal(await code(av.openFork(ROOT, name, { mode: RW })), kFPDenyConflict);
    // ... until it presents its identity with a new boot time: node A ends the old session.
    await after.getSessionToken(3, { id: Buffer.from('carol-mac-2'), timestamp: 2 });
    const now = await av.openFork(ROOT, name, { mode: RW | ForkMode.DenyWrite });
    assert.ok(now.refnum > 0, 'the deny modes of the session on A are gone');
    await now.close();
    await before.close().catch(() => {});
    await after.close();
  });
});
