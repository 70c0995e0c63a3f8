/**
 * Primary reconnect while the old session is still running a request: an FPSyncFork waiting
 * on a bucket that is away (a fault proxy in front of s3rver refuses connections, so the sync
 * answers kFPMiscErr after cache.syncTimeoutSeconds). FPDisconnectOldSession waits up to
 * ctx.resumeWaitMs for that request; when it is still running, the reconnect is refused
 * (kFPMiscErr) and the session stays disconnected for a later attempt; once it answered, the
 * session is taken over and the replayed FPSyncFork gets the reply the server produced, from
 * the replay cache, never a second execution. Other sessions carry on meanwhile.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AfpCommand } from '../../src/afp/commands.js';
import { kFPMiscErr, kFPNoErr } from '../../src/afp/result-codes.js';
import type { AfpSession } from '../../src/afp/session.js';
import { AfpClient, type LoginOptions } from '../../src/client/afp-client.js';
import { ForkMode, type AfpFork } from '../../src/client/afp-fork.js';
import { ROOT, type AfpVolume } from '../../src/client/afp-volume.js';
import { resultCode as code } from '../helpers/afp.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
const RW = ForkMode.Read | ForkMode.Write;
const MAC_ID = Buffer.from('mac-serial-C02BUSY');
const WINDOW = 32;
const SYNC_TIMEOUT_MS = 2000;

const loginOf = (who: { name: string; password: string }): LoginOptions => ({ user: who.name, password: who.password });

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves to whether `p` settled within `ms`, without consuming its outcome. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return r;
}

describe('primary reconnect while the old session is busy (embedded store, S3 behind a fault proxy)', () => {
  let s3: S3Server;
  let proxy: FaultProxy;
  let work: string;
  let g: TestGateway;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'afpgw-busy-'));
    s3 = await startS3({ bucket: 'busy' });
    proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
    g = await startTestGateway({
      users: [ALICE, BOB],
      config: {
        metadata: { backend: 'embedded', path: join(work, 'meta') },
        volumes: [{ name: 'TimeMachine', timeMachine: true }],
        objects: s3Config(s3, { endpoint: proxy.endpoint, prefix: 'busy', maxAttempts: 2, timeoutMs: 1000 }),
        // Nothing uploads by itself: the bucket is only asked by the syncs (and closes).
        cache: { dir: join(work, 'cache'), size: '64MiB', uploadDelayMs: 600_000 },
        dsi: { replayCacheSize: WINDOW },
      },
      tune: (cfg) => {
        cfg.cache.syncTimeoutSeconds = SYNC_TIMEOUT_MS / 1000;
      },
    });
    // The gateway's own setting (sync timeout + 10 s) is what the second case relies on.
    assert.equal(g.gw.ctx.resumeWaitMs, SYNC_TIMEOUT_MS + 10_000);
  });

  after(async () => {
    // A failed case may leave writes in the cache: let the stop's drain reach the bucket.
    if (proxy) proxy.mode = 'pass';
    await g?.stop();
    await proxy?.close();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /**
   * A Mac-like client (replies lost with a dropped connection are held for the reconnect)
   * with a token and a file whose first bytes are in the bucket and whose next bytes are
   * only in the cache; the bucket then goes away.
   */
  const setUp = async (name: string): Promise<{ c: AfpClient; v: AfpVolume; f: AfpFork; token: Buffer; model: Buffer; session: AfpSession }> => {
    proxy.mode = 'pass';
    const c = await AfpClient.connect(g.host, g.port, { holdUnanswered: true });
    await c.login(loginOf(ALICE));
    const token = await c.getSessionToken(3, { id: MAC_ID, timestamp: 1000 });
    const v = await c.openVolume('TimeMachine');
    await v.createFile(ROOT, name, true);
    const f = await v.openFork(ROOT, name, { mode: RW });
    const model = randomBytes(700 * 1024);
    await f.write(0, model.subarray(0, 300 * 1024));
    await f.sync();
    await f.write(300 * 1024, model.subarray(300 * 1024));
    proxy.mode = 'refuse';
    proxy.dropAll();
    const session = g.gw.ctx.sessions.local(token.toString('hex'));
    assert.ok(session, 'the node holds the session behind the token');
    return { c, v, f, token, model, session };
  };

  /**
   * Sends FPSyncFork with replies no longer read, waits for the server to be running it, and
   * drops the connection: with a FIN (`end`: the server finishes the request under way
   * before it closes, so the session still counts as connected) or a reset (`reset`: the
   * server notices at once and keeps the session for a reconnect while the sync runs on).
   */
  const syncAndDrop = async (c: AfpClient, f: AfpFork, session: AfpSession, how: 'end' | 'reset'): Promise<{ reply: Promise<number>; requestId: number; startedAt: number }> => {
    const refused = proxy.refused;
    c.dsi.socket.pause();
    const requestId = c.dsi.peekNextId();
    const startedAt = Date.now();
    const reply = code(f.sync());
    // The sync asks the bucket for the cached block: the proxy turns the upload away.
    await until('the sync to try the bucket', () => proxy.refused > refused);
    assert.equal(await session.idle(0), false, 'the sync is under way');
    if (how === 'reset') {
      c.dsi.socket.resetAndDestroy();
      await until('the server to notice the drop', () => g.gw.ctx.sessions.disconnectedCount === 1);
      assert.equal(session.state, 'disconnected');
      assert.equal(await session.idle(0), false, 'the sync runs on after the drop');
    } else c.dsi.socket.destroy();
    return { reply, requestId, startedAt };
  };

  /** The code the server cached for a request of the session (what it answered the first time). */
  const cachedCode = async (session: AfpSession, requestId: number): Promise<number | undefined> => {
    const entries = await g.gw.meta.sessions().replies(session.id, WINDOW);
    return entries.find((e) => e.requestId === requestId && e.command === AfpCommand.FPSyncFork)?.code;
  };

  /** Bob works on his own file through the same node: writes and reads back, within a second. */
  const bobWorks = async (bob: { v: AfpVolume }, name: string): Promise<void> => {
    const t = Date.now();
    assert.ok(await bob.v.getParms());
    await bob.v.createFile(ROOT, name, true);
    const f = await bob.v.openFork(ROOT, name, { mode: RW });
    const data = randomBytes(20_000);
    await f.write(0, data);
    assert.deepEqual((await f.read(0, data.length)).data, data);
    await f.close();
    const took = Date.now() - t;
    assert.ok(took < 1000, `another user's requests are answered meanwhile (${took} ms)`);
  };

  const bobSession = async (): Promise<{ c: AfpClient; v: AfpVolume }> => {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login(loginOf(BOB));
    return { c, v: await c.openVolume('TimeMachine') };
  };

  /** The bucket is back: a new sync succeeds, and a fresh session reads what was written. */
  const recovers = async (f: AfpFork, name: string, model: Buffer): Promise<void> => {
    proxy.mode = 'pass';
    assert.equal(await code(f.sync()), kFPNoErr, 'FPSyncFork succeeds once the bucket is back');
    assert.deepEqual((await f.read(0, model.length)).data, model, 'the resumed fork reads back');
    const fresh = await AfpClient.connect(g.host, g.port);
    await fresh.login(loginOf(ALICE));
    const fv = await fresh.openVolume('TimeMachine');
    const rf = await fv.openFork(ROOT, name, { mode: ForkMode.Read });
    assert.equal(await rf.length(), model.length);
    assert.deepEqual((await rf.read(0, model.length)).data, model, 'a fresh session reads the written bytes');
    await rf.close();
    await fresh.close();
  };

  it('refuses a reconnect while the request runs; the next one resumes and the replay gets the cached reply', async () => {
    const name = 'busy-refused.band';
    const { c, f, token, model, session } = await setUp(name);
    const bob = await bobSession();
    const { reply, requestId, startedAt } = await syncAndDrop(c, f, session, 'end');

    // A reconnect that may wait 200 ms: the sync has ~2 s to go, the session is busy.
    g.gw.ctx.resumeWaitMs = 200;
    const t1 = Date.now();
    const attempt = code(c.reconnect(g.host, g.port, loginOf(ALICE), token));
    await bobWorks(bob, 'bob-during-refused-reconnect');
    assert.equal(await attempt, kFPMiscErr, 'the reconnect is refused while the old session runs a request');
    const refusedAfter = Date.now() - t1;
    assert.ok(refusedAfter >= 150 && refusedAfter < SYNC_TIMEOUT_MS - 300, `the reconnect waited resumeWaitMs, not the sync (${refusedAfter} ms)`);
    assert.equal(await session.idle(0), false, 'the sync still runs after the refused reconnect');
    assert.equal(session.state, 'disconnected', 'the old session is kept for another attempt');
    assert.equal(g.gw.ctx.sessions.local(token.toString('hex')), session);
    assert.equal(g.gw.ctx.sessions.disconnectedCount, 1);
    await bobWorks(bob, 'bob-while-sync-hangs');

    // The sync gives up after its timeout, on the server, with nobody to read the reply.
    await until('the sync to answer', () => session.idle(0));
    const syncTook = Date.now() - startedAt;
    assert.ok(syncTook >= SYNC_TIMEOUT_MS - 300, `the sync waited for the bucket (${syncTook} ms)`);
    const first = await cachedCode(session, requestId);
    assert.equal(first, kFPMiscErr, 'the server answered the sync kFPMiscErr (cached for the replay)');

    // Still refused in the bucket: a second execution would wait the whole sync timeout again.
    const t2 = Date.now();
    await c.reconnect(g.host, g.port, loginOf(ALICE), token);
    const replayed = await reply;
    const replayMs = Date.now() - t2;
    assert.equal(replayed, first, 'the replayed FPSyncFork gets the code the server produced');
    assert.ok(replayMs < SYNC_TIMEOUT_MS / 2, `answered from the replay cache, not run again (${replayMs} ms)`);
    assert.equal(g.gw.ctx.sessions.disconnectedCount, 0);
    assert.equal(g.gw.ctx.sessions.local(token.toString('hex')), session, 'the same session, resumed');
    assert.deepEqual(await c.getSessionToken(4, { id: MAC_ID, timestamp: 1000 }), token);

    await recovers(f, name, model);
    await bobWorks(bob, 'bob-after');
    await f.close();
    await c.close();
    await bob.c.close();
  });

  it('a reconnect that may wait long enough waits for the request under way, then resumes', async () => {
    const name = 'busy-waited.band';
    const { c, f, token, model, session } = await setUp(name);
    const bob = await bobSession();
    const { reply, requestId, startedAt } = await syncAndDrop(c, f, session, 'reset');

    g.gw.ctx.resumeWaitMs = 10_000;
    const t1 = Date.now();
    const attempt = c.reconnect(g.host, g.port, loginOf(ALICE), token);
    // The reconnect waits on the sync; the node serves others meanwhile.
    await new Promise((r) => setTimeout(r, 300));
    await bobWorks(bob, 'bob-during-waiting-reconnect');
    assert.equal(await settlesWithin(attempt, 0), false, 'the reconnect waits while the sync runs');
    await attempt;
    const resumedAt = Date.now();
    assert.ok(resumedAt - startedAt >= SYNC_TIMEOUT_MS - 300, `the reconnect completed only after the sync answered (${resumedAt - startedAt} ms after it began)`);
    assert.ok(resumedAt - t1 < SYNC_TIMEOUT_MS + 2000, `and not much later (${resumedAt - t1} ms)`);
    assert.equal(await session.idle(0), true);
    const first = await cachedCode(session, requestId);
    assert.equal(first, kFPMiscErr, 'the server answered the sync kFPMiscErr');
    assert.equal(await settlesWithin(reply, SYNC_TIMEOUT_MS / 2), true, 'the replayed FPSyncFork is answered at once, from the cache');
    assert.equal(await reply, first);
    assert.equal(g.gw.ctx.sessions.local(token.toString('hex')), session, 'the same session, resumed');
    assert.equal(g.gw.ctx.sessions.disconnectedCount, 0);

    await recovers(f, name, model);
    await f.close();
    await c.close();
    await bob.c.close();
  });
});
