/**
 * A Mac's gateway dies (SIGKILL) mid-session; it reconnects to the other gateway of the pair
 * (same Redis, same bucket) with its session token, and the session goes on there: the same
 * fork refnums, deny modes and locks, the synced bytes, and the replies its lost requests
 * already got, answered from the replay cache in Redis instead of being run twice.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AfpCommand } from '../../src/afp/commands.js';
import { kFPDenyConflict, kFPNoErr, kFPRangeOverlap } from '../../src/afp/result-codes.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { encodePath, ROOT } from '../../src/client/afp-volume.js';
import { Writer } from '../../src/wire/writer.js';
import { resultCode } from '../helpers/afp.js';
import { runCli } from '../helpers/cli.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';
import { startPairNode, testKnobsUnset, type PairNode } from './tm-pair.js';

const USER = { name: 'mac', password: 'mac-secret' };
const LOGIN = { user: USER.name, password: USER.password };
/** Another user: lock stealing would end a session of the Mac's own user holding the volume. */
const WATCHER = { user: 'admin', password: 'admin-secret' };
const EXCLUSIVE = ForkMode.Read | ForkMode.Write | ForkMode.DenyRead | ForkMode.DenyWrite;

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('failover: a Mac resumes its session on the surviving gateway', () => {
  let s3: S3Server;
  let redis: RedisServer | undefined;
  let work: string;
  const children = new Set<ChildProcess>();

  const node = (name: string): Promise<PairNode> =>
    startPairNode({ work, name, children, metadata: { backend: 'redis', url: redis!.url, keyPrefix: 'pair' }, objects: s3Config(s3, { prefix: 'pair' }) });

  before(async () => {
    if (!redisAvailable()) {
      if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
      return;
    }
    work = await mkdtemp(join(tmpdir(), 'afpgw-failover-'));
    s3 = await startS3({ bucket: 'pair' });
    redis = await startRedis();
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await redis?.stop();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('forks, deny modes, locks, synced bytes and cached replies survive the death of the node', async (t) => {
    if (!redis) return t.skip('redis-server not installed');
    const a = await node('a');
    const added = await runCli(['user', 'add', USER.name, '--config', a.file], `${USER.password}\n${USER.password}\n`, testKnobsUnset());
    assert.equal(added.code, 0, added.stderr);
    const admin = await runCli(['user', 'add', WATCHER.user, '--config', a.file], `${WATCHER.password}\n${WATCHER.password}\n`, testKnobsUnset());
    assert.equal(admin.code, 0, admin.stderr);
    const b = await node('b');

    const mac = await AfpClient.connect('127.0.0.1', a.port, { holdUnanswered: true });
    await mac.login(LOGIN);
    const token = await mac.getSessionToken(3, { id: Buffer.from('failover-mac'), timestamp: 42 });
    const v = await mac.openVolume('TimeMachine');
    await v.createFile(ROOT, 'token', true);
    const f = await v.openFork(ROOT, 'token', { mode: EXCLUSIVE });
    const synced = Buffer.from('synced before the crash');
    await f.write(0, synced);
    await f.sync();
    await f.lock(100, 10);

    // The Mac creates a band; node A runs it, and dies before the Mac reads the reply.
    const watcher = await AfpClient.connect('127.0.0.1', b.port);
    await watcher.login(WATCHER);
    const wv = await watcher.openVolume('TimeMachine');
    mac.dsi.socket.pause();
    const create = mac.raw(new Writer(64).u8(AfpCommand.FPCreateFile).u8(0).u16(v.id).u32(ROOT).bytes(encodePath('band-0')).finish());
    await until('node A to run the create', async () => (await resultCode(wv.getFileDirParms(ROOT, 'band-0'))) === 0);
    assert.equal(await resultCode(wv.openFork(ROOT, 'token', { mode: ForkMode.Read })), kFPDenyConflict, 'the deny modes hold across nodes');
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    mac.dsi.socket.destroy();

    // Through the shared address the Mac now reaches node B.
    await mac.reconnect('127.0.0.1', b.port, LOGIN, token);
    const firstAnswer = Date.now() - killedAt;
    assert.equal((await create).code, kFPNoErr, 'the lost FPCreateFile is answered from the replay cache, not run again');
    await mac.getSessionToken(4, { id: Buffer.from('failover-mac'), timestamp: 42 });
    assert.deepEqual((await f.read(0, synced.length)).data, synced, 'the same refnum reads the synced bytes on node B');
    assert.equal(await resultCode(f.lock(100, 10)), kFPRangeOverlap, 'the byte-range lock came along (still ours)');
    assert.equal(await resultCode(wv.openFork(ROOT, 'token', { mode: ForkMode.Read })), kFPDenyConflict, 'and so did the deny modes');
    await f.write(synced.length, Buffer.from(', and after'));
    await f.sync();
    await f.close();
    const r = await wv.openFork(ROOT, 'token', { mode: ForkMode.Read });
    assert.deepEqual((await r.read(0, 100)).data, Buffer.from('synced before the crash, and after'));
    await r.close();
    t.diagnostic(`failover: ${firstAnswer} ms from SIGKILL to the reconnected session (waits for the dead node's lease to lapse)`);
    await mac.close();
    await watcher.close();
  });
});
