import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AfpClient, type LoginOptions } from '../../src/client/afp-client.js';
import { encodePath, ROOT, type AfpVolume } from '../../src/client/afp-volume.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { AfpCommand } from '../../src/afp/commands.js';
import { kFPCallNotSupported, kFPDenyConflict, kFPMiscErr, kFPNoErr, kFPObjectExists, kFPParamErr, kFPRangeOverlap } from '../../src/afp/result-codes.js';
import { Access } from '../../src/meta/forks.js';
import { userKey } from '../../src/meta/meta-store.js';
import { Writer } from '../../src/wire/writer.js';
import { BACKENDS, gatewayFor, SKIP_REASON } from '../helpers/backends.js';
import type { TestGateway } from '../helpers/gateway.js';
import { resultCode as code } from '../helpers/afp.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
const RW = ForkMode.Read | ForkMode.Write;
const EXCLUSIVE = RW | ForkMode.DenyRead | ForkMode.DenyWrite;
const MAC_ID = Buffer.from('mac-serial-C02XYZ');
const WINDOW = 32;

function loginOf(who: { name: string; password: string }): LoginOptions {
  return { user: who.name, password: who.password };
}

/** A client that behaves like a Mac on a flaky link: unanswered requests wait for a reconnect. */
async function mac(g: TestGateway, who = ALICE, volume = 'TimeMachine'): Promise<{ c: AfpClient; v: AfpVolume; token: Buffer }> {
  const c = await AfpClient.connect(g.host, g.port, { holdUnanswered: true });
  await c.login(loginOf(who));
  const token = await c.getSessionToken(3, { id: MAC_ID, timestamp: 1000 });
  return { c, v: await c.openVolume(volume), token };
}

async function plain(g: TestGateway, who = ALICE, volume = 'TimeMachine'): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login(loginOf(who));
  return { c, v: await c.openVolume(volume) };
}

function createFileRequest(v: AfpVolume, name: string): Buffer {
  return new Writer(64).u8(AfpCommand.FPCreateFile).u8(0).u16(v.id).u32(ROOT).bytes(encodePath(name)).finish();
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends a request and drops the connection before its reply can be read: the reply is lost. */
async function sendAndLoseReply(c: AfpClient, payload: Buffer, done: () => Promise<boolean>): Promise<{ reply: Promise<{ code: number }> }> {
  c.dsi.socket.pause();
  const reply = c.raw(payload);
  await until('the server to run the request', done);
  c.dsi.socket.destroy();
  // Wrapped: an async function returning the promise itself would wait for it.
  return { reply };
}

for (const backend of BACKENDS) {
  describe(`reconnect, session tokens, replay cache and lock stealing (${backend} store)`, () => {
    const gw = gatewayFor(backend, {
      users: [ALICE, BOB],
      config: {
        volumes: [
          { name: 'TimeMachine', timeMachine: true },
          { name: 'Shared', timeMachine: false },
        ],
        dsi: { replayCacheSize: WINDOW },
      },
    });

    test('DSIOpenSession advertises the replay cache; FPGetSessionToken answers every type it knows', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const c = await AfpClient.connect(g.host, g.port);
      assert.equal(c.session.replayCacheSize, WINDOW);
      assert.equal(await code(c.getSessionToken(0)), kFPCallNotSupported, 'not before login');
      await c.login(loginOf(ALICE));
      const t0 = await c.getSessionToken(0);
      assert.equal(t0.length, 16);
      for (const type of [1, 2, 5, 6, 7]) assert.deepEqual(await c.getSessionToken(type, { id: MAC_ID }), t0, `type ${type}: one token per session`);
      assert.deepEqual(await c.getSessionToken(3, { id: MAC_ID, timestamp: 7 }), t0);
      assert.deepEqual(await c.getSessionToken(4, { id: MAC_ID, timestamp: 7 }), t0);
      assert.equal(await code(c.getSessionToken(8)), kFPCallNotSupported, 'no Kerberos session key');
      assert.equal(await code(c.getSessionToken(99)), kFPCallNotSupported);
      // Truncated: IDLength says 40 bytes, 4 follow; an oversized ID; a type with nothing after it.
      const truncated = new Writer(16).u8(AfpCommand.FPGetSessionToken).u8(0).u16(3).u32(40).u32(1).bytes(Buffer.from('abcd')).finish();
      assert.equal((await c.raw(truncated)).code, kFPParamErr);
      assert.equal(await code(c.getSessionToken(1, { id: Buffer.alloc(81) })), kFPParamErr);
      assert.equal((await c.raw(Buffer.from([AfpCommand.FPGetSessionToken, 0, 0]))).code, kFPParamErr);
      const rec = await g.gw.meta.sessions().sessionByToken(t0.toString('hex'));
      assert.equal(rec?.user, userKey(ALICE.name));
      assert.equal(rec?.clientId, MAC_ID.toString('hex'));
      assert.equal(rec?.timestamp, 7);
      await c.close();
      await until('the record to go with the session', async () => (await g.gw.meta.sessions().sessionByToken(t0.toString('hex'))) === undefined);
    });

    test('primary reconnect after a dropped connection: forks, deny modes, locks and the lost reply carry over', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v, token } = await mac(g);
      const name = `bundle-${backend}.token`;
      await v.createFile(ROOT, name, true);
      const f = await v.openFork(ROOT, name, { mode: EXCLUSIVE });
      await f.write(0, Buffer.from('before the drop'));
      await f.lock(0, 4);
      const other = await plain(g, BOB);
      const probe = await plain(g, ALICE, 'Shared');

      // The Mac creates a file; the server runs it, the reply is lost with the connection.
      const lost = `created-while-dropping-${backend}`;
      const { reply: pending } = await sendAndLoseReply(c, createFileRequest(v, lost), async () => (await code(other.v.getFileDirParms(ROOT, lost))) === 0);
      await until('the server to notice the drop', () => g.gw.ctx.sessions.disconnectedCount === 1);
      // Held through the drop: the deny modes still keep others out.
      assert.equal(await code(other.v.openFork(ROOT, name, { mode: ForkMode.Read })), kFPDenyConflict);

      await c.reconnect(g.host, g.port, loginOf(ALICE), token);
      assert.equal((await pending).code, kFPNoErr, 'the replayed FPCreateFile gets the first answer, not kFPObjectExists');
      assert.equal(g.gw.ctx.sessions.disconnectedCount, 0);
      await c.getSessionToken(4, { id: MAC_ID, timestamp: 1000 });
      // Same refnum, same volume ID, same lock.
      assert.deepEqual((await f.read(0, 15)).data, Buffer.from('before the drop'));
      await f.write(15, Buffer.from(', and after'));
      assert.equal(await code(f.lock(0, 4)), kFPRangeOverlap, 'the lock is still ours');
      assert.equal(await code(other.v.openFork(ROOT, name, { mode: ForkMode.Read })), kFPDenyConflict);
      await f.close();
      const reader = await other.v.openFork(ROOT, name, { mode: ForkMode.Read });
      assert.deepEqual((await reader.read(0, 100)).data, Buffer.from('before the drop, and after'));
      await reader.close();
      // The reconnect's own login session was dropped, and nobody else was touched.
      assert.ok(await probe.v.getParms());
      await c.close();
      await other.c.close();
      await probe.c.close();
    });

    test('replay cache: a replayed request is answered from the cache, never run twice; out of the window it runs again', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await plain(g);
      const name = `replayed-${backend}`;
      const id = c.dsi.peekNextId();
      assert.equal((await c.raw(createFileRequest(v, name))).code, kFPNoErr);
      assert.equal((await c.raw(createFileRequest(v, name), id)).code, kFPNoErr, 'same ID and command: the cached reply');
      assert.equal((await c.raw(createFileRequest(v, name))).code, kFPObjectExists, 'a new ID runs');

      // An append (offset from the end) must not append twice.
      await v.createFile(ROOT, `${name}.log`, true);
      const f = await v.openFork(ROOT, `${name}.log`, { mode: RW });
      const header = new Writer(20).u8(AfpCommand.FPWriteExt).u8(0x80).u16(f.refnum).i64(0n).i64(5n).finish();
      const wid = c.dsi.peekNextId();
      const first = await c.dsi.write(header, Buffer.from('hello'));
      const again = await c.dsi.write(header, Buffer.from('hello'), wid);
      assert.equal(first.code, kFPNoErr);
      assert.deepEqual(again, first);
      assert.equal(await f.length(), 5);

      // An FPOpenFork replay returns the same refnum (the full reply is cached).
      const open = new Writer(64).u8(AfpCommand.FPOpenFork).u8(0).u16(v.id).u32(ROOT).u16(0x0200).u16(ForkMode.Read).bytes(encodePath(name)).finish();
      const oid = c.dsi.peekNextId();
      const o1 = await c.raw(open);
      const o2 = await c.raw(open, oid);
      assert.equal(o1.code, kFPNoErr);
      assert.deepEqual(o2.payload, o1.payload);

      // Same ID, other command: not a replay.
      const sid = c.dsi.peekNextId();
      await c.raw(createFileRequest(v, `${name}-x`));
      assert.equal((await c.raw(new Writer(4).u8(AfpCommand.FPGetVolParms).u8(0).u16(v.id).u16(0x0001).finish(), sid)).code, kFPNoErr);

      // Out of the window: WINDOW requests later the entry is gone, and the request runs again.
      const old = c.dsi.peekNextId();
      await c.raw(createFileRequest(v, `${name}-y`));
      for (let i = 0; i < WINDOW; i++) await c.getSrvrParms();
      assert.equal((await c.raw(createFileRequest(v, `${name}-y`), old)).code, kFPObjectExists);
      await c.close();
    });

    test('replay keeps the order of writes: a write before a truncate is not run again after it', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v, token } = await mac(g);
      const name = `ordered-${backend}.band`;
      await v.createFile(ROOT, name, true);
      const f = await v.openFork(ROOT, name, { mode: RW });
      await f.write(0, Buffer.alloc(1 << 20, 1));
      const watcher = await plain(g, BOB);
      c.dsi.socket.pause();
      // Both run; both replies are lost with the connection.
      const write = f.writeExt(900 * 1024, Buffer.alloc(100 * 1024, 2)).then(() => 'ok', (e: Error) => e.message);
      const shrink = f.setLength(512 * 1024).then(() => 'ok', (e: Error) => e.message);
      await until('the truncate to run', async () => (await watcher.v.getFileDirParms(ROOT, name)).params.dataLength === 512 * 1024);
      c.dsi.socket.destroy();
      await c.reconnect(g.host, g.port, loginOf(ALICE), token);
      assert.deepEqual([await write, await shrink], ['ok', 'ok']);
      assert.equal(await f.length(), 512 * 1024, 'the replayed write did not grow the file back');
      await f.close();
      await watcher.c.close();
      await c.close();
    });

    test('FPDisconnectOldSession: unknown, short, truncated, own, foreign and expired tokens', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const bob = await mac(g, BOB);
      const { c } = await plain(g);
      const own = await c.getSessionToken(0);
      assert.equal(await code(c.disconnectOldSession(randomBytes(16))), kFPMiscErr, 'unknown token');
      assert.equal(await code(c.disconnectOldSession(randomBytes(8))), kFPMiscErr, 'not our token size');
      const truncated = new Writer(16).u8(AfpCommand.FPDisconnectOldSession).u8(0).u16(0).u32(16).bytes(randomBytes(4)).finish();
      assert.equal((await c.raw(truncated)).code, kFPParamErr);
      assert.equal(await code(c.disconnectOldSession(own)), kFPParamErr, 'its own token');
      assert.equal(await code(c.disconnectOldSession(bob.token)), kFPMiscErr, "another user's token");
      assert.ok(await bob.v.getParms(), "bob's session is untouched");
      await bob.c.close();
      await until('bob\'s record to go', async () => (await g.gw.meta.sessions().sessionByToken(bob.token.toString('hex'))) === undefined);
      assert.equal(await code(c.disconnectOldSession(bob.token)), kFPMiscErr, 'an ended session');
      assert.equal((await c.raw(Buffer.from([AfpCommand.FPDisconnectOldSession, 0]))).code, kFPParamErr);
      await c.close();
    });

    test('lock stealing: a new session of the same user ends earlier ones holding a Time Machine volume', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const name = `steal-${backend}.token`;
      const first = await mac(g);
      await first.v.createFile(ROOT, name, true);
      const held = await first.v.openFork(ROOT, name, { mode: EXCLUSIVE });
      await held.lock(0, 1);
      const shared = await plain(g, ALICE, 'Shared');
      const bobs = await mac(g, BOB);

      // A second Mac of the same user: a plain login is refused by the deny modes...
      const second = await plain(g);
      assert.equal(await code(second.v.openFork(ROOT, name, { mode: EXCLUSIVE })), kFPDenyConflict);
      // ...and after it presents its identity (type 3), the first session is gone with its locks.
      await second.c.getSessionToken(3, { id: Buffer.from('another-mac'), timestamp: 5 });
      const f = await second.v.openFork(ROOT, name, { mode: EXCLUSIVE });
      await f.close();
      await until('the stolen session\'s connection to close', () => first.c.dsi.isClosed);
      assert.ok(await shared.v.getParms(), 'a session with only an ordinary volume open is left alone');
      assert.ok(await bobs.v.getParms(), "another user's Time Machine session is left alone");

      // The same Mac after a restart (same ID, new timestamp) also ends a session on an ordinary volume.
      const before = await AfpClient.connect(g.host, g.port);
      await before.login(loginOf(ALICE));
      await before.getSessionToken(3, { id: Buffer.from('restarting-mac'), timestamp: 1 });
      const ordinary = await before.openVolume('Shared');
      const after = await plain(g, ALICE, 'Shared');
      await after.c.getSessionToken(3, { id: Buffer.from('restarting-mac'), timestamp: 2 });
      assert.ok(ordinary.id > 0);
      await until('the pre-restart session to end', () => before.dsi.isClosed);
      assert.ok(await shared.v.getParms(), 'the first ordinary session is still untouched');
      for (const x of [second.c, shared.c, bobs.c, after.c]) await x.close();
      first.c.dsi.destroy();
      before.dsi.destroy();
    });

    test('lock stealing releases the opens a dead process left in the store', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await plain(g);
      const name = `orphan-${backend}.token`;
      await v.createFile(ROOT, name, true);
      const fileId = (await v.getFileDirParms(ROOT, name)).params.nodeId!;
      const tm = g.gw.volumes.byName('TimeMachine')!;
      const dead = { id: randomBytes(8).toString('hex'), node: 'crashed-node-1' };
      await g.gw.meta.sessions().putSession(
        { ...dead, user: userKey(ALICE.name), uid: 1000, token: randomBytes(16).toString('hex'), clientId: MAC_ID.toString('hex'), timestamp: 1000, volumes: [tm.key], tmVolumes: [tm.key], forkVolumes: [tm.key], createdAt: Date.now() },
        60_000,
      );
      await tm.forkStore.open({ openId: `${dead.node}:${dead.id}:1`, session: dead.id, node: dead.node, fileId, fork: 'data', mode: Access.Read | Access.Write | Access.DenyRead | Access.DenyWrite });
      assert.equal(await code(v.openFork(ROOT, name, { mode: EXCLUSIVE })), kFPDenyConflict);
      await c.getSessionToken(3, { id: MAC_ID, timestamp: 2000 });
      const f = await v.openFork(ROOT, name, { mode: EXCLUSIVE });
      await f.close();
      assert.equal(await g.gw.meta.sessions().session(dead.id), undefined);
      await c.close();
    });
  });
}

describe('disconnected sessions expire', () => {
  const gw = gatewayFor('embedded', {
    users: [ALICE],
    config: { volumes: [{ name: 'TimeMachine', timeMachine: true }] },
    tune: (cfg) => {
      cfg.dsi.disconnectedSessionSeconds = 0.3;
    },
  });

  test('after the disconnect window the locks go and the token no longer resumes anything', async (t) => {
    const g = gw()!;
    const { c, v, token } = await mac(g);
    await v.createFile(ROOT, 'expiring.token', true);
    const f = await v.openFork(ROOT, 'expiring.token', { mode: EXCLUSIVE });
    assert.ok(f.refnum > 0);
    c.dsi.destroy();
    await until('the session to be kept', () => g.gw.ctx.sessions.disconnectedCount === 1);
    await until('the session to expire', () => g.gw.ctx.sessions.disconnectedCount === 0);
    const other = await plain(g);
    const again = await other.v.openFork(ROOT, 'expiring.token', { mode: EXCLUSIVE });
    await again.close();
    assert.equal(await code(other.c.disconnectOldSession(token)), kFPMiscErr);
    await other.c.close();
    t.diagnostic('expired as configured');
  });
});

describe('disconnected sessions are bounded', () => {
  const gw = gatewayFor('embedded', {
    users: [ALICE],
    config: { volumes: [{ name: 'TimeMachine', timeMachine: true }], dsi: { maxSessions: 2 } },
  });

  test('beyond dsi.maxSessions waiting sessions, the one waiting longest ends and frees its locks', async () => {
    const g = gw()!;
    const dropped: { token: Buffer; name: string }[] = [];
    for (const name of ['first.band', 'second.band', 'third.band']) {
      const c = await AfpClient.connect(g.host, g.port, { holdUnanswered: true });
      await c.login(loginOf(ALICE));
      // Plain type-0 tokens: no client identity, so nothing is stolen along the way.
      const token = await c.getSessionToken(0);
      const v = await c.openVolume('TimeMachine');
      await v.createFile(ROOT, name, true);
      await v.openFork(ROOT, name, { mode: EXCLUSIVE });
      c.dsi.destroy();
      dropped.push({ token, name });
      await until(`${name}'s session to be kept`, () => g.gw.ctx.sessions.disconnectedCount === Math.min(dropped.length, 2));
    }
    const probe = await plain(g);
    const f = await probe.v.openFork(ROOT, 'first.band', { mode: EXCLUSIVE });
    await f.close();
    assert.equal(await code(probe.v.openFork(ROOT, 'second.band', { mode: EXCLUSIVE })), kFPDenyConflict, 'younger waiting sessions keep their locks');
    assert.equal(await code(probe.c.disconnectOldSession(dropped[0]!.token)), kFPMiscErr);
    await probe.c.close();
  });
});
