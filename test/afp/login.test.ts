import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AfpClient } from '../../src/client/afp-client.js';
import { AfpError } from '../../src/afp/errors.js';
import {
  kFPBadUAM,
  kFPBadVersNum,
  kFPBitmapErr,
  kFPCallNotSupported,
  kFPItemNotFound,
  kFPParamErr,
  kFPUserNotAuth,
} from '../../src/afp/result-codes.js';
import { AfpCommand } from '../../src/afp/commands.js';
import { SrvrFlag } from '../../src/afp/srvr-info.js';
import { Writer } from '../../src/wire/writer.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisAvailable, startRedis } from '../helpers/redis-server.js';

async function rejectsWith(p: Promise<unknown>, code: number): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof AfpError && e.code === code);
}

const ALICE = { name: 'alice', password: 'correct horse battery' };
const BOB = { name: 'Bob', password: 'short' };

function loginSuite(backend: 'embedded' | 'redis'): void {
  describe(`login and session basics (${backend} store)`, () => {
    let g: TestGateway;
    let redis: Awaited<ReturnType<typeof startRedis>> | undefined;

    before(async () => {
      let metadata: Record<string, unknown> = { backend: 'embedded' };
      if (backend === 'redis') {
        if (!redisAvailable()) {
          if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
          return; // each test then skips with a reason
        }
        redis = await startRedis();
        metadata = { backend: 'redis', url: redis.url, keyPrefix: 'logintest' };
      }
      g = await startTestGateway({
        config: {
          metadata,
          // These tests fail logins on purpose; the throttle has its own tests and would only slow them.
          auth: { uams: ['DHX2', 'DHCAST128', 'Cleartxt Passwrd', 'No User Authent'], scrypt: { N: 1024, r: 8, p: 1 }, loginThrottle: { freeFailures: 1000, maxDelayMs: 10000 } },
          volumes: [
            { name: 'TimeMachine', timeMachine: true },
            { name: 'Bob Only', timeMachine: false, users: ['bob'] },
            { name: 'Public', timeMachine: false, allowGuest: true },
          ],
        },
        users: [ALICE, BOB],
      });
    });

    after(async () => {
      await g?.stop();
      await redis?.stop();
    });

    const connect = (): Promise<AfpClient> => AfpClient.connect(g.host, g.port);

    test('DSIGetStatus advertises AFP3.4, DHX2, the flags and a signature', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const info = await AfpClient.serverInfo(g.host, g.port);
      assert.equal(info.serverName, 'Test Gateway');
      assert.equal(info.utf8ServerName, 'Test Gateway');
      assert.ok(info.afpVersions.includes('AFP3.4'));
      assert.equal(info.uams[0], 'DHX2');
      assert.equal(info.signature.length, 16);
      for (const f of [SrvrFlag.ServerSignature, SrvrFlag.TCP, SrvrFlag.UTF8ServerName, SrvrFlag.DirectoryServices, SrvrFlag.CopyFile, SrvrFlag.ServerMessages]) {
        assert.ok(info.flags & f, `flag 0x${f.toString(16)}`);
      }
      // FPDisconnectOldSession exists, so reconnect is promised (Time Machine relies on it).
      assert.ok(info.flags & SrvrFlag.Reconnect);
      assert.deepEqual(info.addresses, [{ kind: 'ipv4', address: '127.0.0.1', port: g.port }]);
      const again = await AfpClient.serverInfo(g.host, g.port);
      assert.deepEqual(again.signature, info.signature);
    });

    test('DSIOpenSession advertises the request quantum and the replay cache', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      assert.equal(c.session.requestQuantum, 1024 * 1024);
      assert.equal(c.session.replayCacheSize, 128, 'the configured depth (netatalk\'s default)');
      await c.close();
    });

    for (const uam of ['DHX2', 'DHCAST128'] as const) {
      for (const ext of [true, false]) {
        test(`${uam} login via ${ext ? 'FPLoginExt' : 'FPLogin'}; wrong password is kFPUserNotAuth`, async (t) => {
          if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
          const c = await connect();
          await c.login({ uam, user: ALICE.name, password: ALICE.password, ext });
          const me = await c.getUserInfo();
          assert.equal(me.uid, (await g.gw.meta.getUser('alice'))!.uid);
          assert.equal(me.gid, me.uid);
          await c.close();

          const bad = await connect();
          await rejectsWith(bad.login({ uam, user: ALICE.name, password: 'wrong', ext }), kFPUserNotAuth);
          await rejectsWith(bad.login({ uam, user: 'nobody-here', password: 'x', ext }), kFPUserNotAuth);
          await bad.close();
        });
      }
    }

    test('user names are matched case-insensitively', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await c.login({ user: 'ALICE', password: ALICE.password });
      await c.close();
    });

    test('cleartext: 8-byte passwords work, longer ones cannot', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await c.login({ uam: 'Cleartxt Passwrd', user: BOB.name, password: BOB.password });
      await c.close();
      const c2 = await connect();
      await assert.rejects(c2.login({ uam: 'Cleartxt Passwrd', user: ALICE.name, password: ALICE.password }), RangeError);
      await rejectsWith(c2.login({ uam: 'Cleartxt Passwrd', user: ALICE.name, password: 'correct ' }), kFPUserNotAuth);
      await c2.close();
    });

    test('guest sees only guest volumes', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await c.login({ uam: 'No User Authent' });
      const parms = await c.getSrvrParms();
      assert.deepEqual(parms.volumes.map((v) => v.name), ['Public']);
      await c.close();
    });

    test('FPGetSrvrParms lists the volumes this user may open', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const a = await connect();
      await a.login({ user: ALICE.name, password: ALICE.password });
      const pa = await a.getSrvrParms();
      assert.deepEqual(pa.volumes.map((v) => v.name), ['TimeMachine', 'Public']);
      assert.ok(Math.abs(pa.serverTime.getTime() - Date.now()) < 5000);
      await a.close();
      const b = await connect();
      await b.login({ user: BOB.name, password: BOB.password });
      assert.deepEqual((await b.getSrvrParms()).volumes.map((v) => v.name), ['TimeMachine', 'Bob Only', 'Public']);
      await b.close();
    });

    test('before login only the login family and server info are served', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      assert.equal((await c.raw(Buffer.from([AfpCommand.FPGetSrvrParms, 0]))).code, kFPCallNotSupported);
      assert.equal((await c.raw(Buffer.from([AfpCommand.FPGetUserInfo, 1, 0, 0, 0, 0, 0, 1]))).code, kFPCallNotSupported);
      const info = await c.getSrvrInfo();
      assert.equal(info.serverName, 'Test Gateway');
      await c.close();
    });

    test('bad versions, unknown UAMs and LoginCont without a login are refused', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await rejectsWith(c.login({ user: ALICE.name, password: ALICE.password, version: 'AFP9.9' }), kFPBadVersNum);
      const badUam = new Writer(64).u8(AfpCommand.FPLogin).pstring(Buffer.from('AFP3.4')).pstring(Buffer.from('Randnum Exchange')).finish();
      assert.equal((await c.raw(badUam)).code, kFPBadUAM);
      assert.equal((await c.raw(Buffer.from([AfpCommand.FPLoginCont, 0, 1, 2]))).code, kFPParamErr);
      await c.close();
    });

    test('after login: unimplemented commands answer kFPCallNotSupported; logout ends it', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await c.login({ user: ALICE.name, password: ALICE.password });
      assert.equal((await c.raw(Buffer.from([76, 0]))).code, kFPCallNotSupported);
      assert.equal((await c.raw(Buffer.from([250, 0]))).code, kFPCallNotSupported);
      await c.logout();
      assert.equal((await c.raw(Buffer.from([AfpCommand.FPGetSrvrParms, 0]))).code, kFPCallNotSupported);
      await c.close();
    });

    test('FPGetUserInfo, FPMapID and FPMapName', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await c.login({ user: ALICE.name, password: ALICE.password });
      const me = await c.getUserInfo(0x7);
      assert.equal(me.bitmap, 0x3, 'the UUID bit is cleared: no UUID support');
      assert.equal(await c.mapId(3, me.uid!), 'alice');
      assert.equal(await c.mapId(1, me.uid!), 'alice');
      assert.equal(await c.mapId(4, me.gid!), 'alice');
      assert.equal(await c.mapId(3, 0), '');
      assert.equal(await c.mapName(1, 'Bob'), (await g.gw.meta.getUser('bob'))!.uid);
      assert.equal(await c.mapName(3, 'alice'), me.uid);
      await rejectsWith(c.mapId(3, 424242), kFPItemNotFound);
      await rejectsWith(c.mapName(1, 'mallory'), kFPItemNotFound);
      // ThisUser flag missing, and bitmap bits we do not know.
      assert.equal((await c.raw(new Writer(8).u8(AfpCommand.FPGetUserInfo).u8(0).u32(0).u16(1).finish())).code, kFPParamErr);
      assert.equal((await c.raw(new Writer(8).u8(AfpCommand.FPGetUserInfo).u8(1).u32(0).u16(0x10).finish())).code, kFPBitmapErr);
      await c.close();
    });

    test('FPZzzzz reports how long a sleeping session is kept', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await c.login({ user: ALICE.name, password: ALICE.password });
      assert.equal(await c.zzzzz(1), 10);
      assert.equal(await c.zzzzz(2), 10);
      await c.close();
    });

    test('a second login on a logged-in session is refused', async (t) => {
      if (!g) return t.skip('redis-server not installed (apt-get install redis-server)');
      const c = await connect();
      await c.login({ user: ALICE.name, password: ALICE.password });
      await assert.rejects(c.login({ user: ALICE.name, password: ALICE.password }), AfpError);
      await c.close();
    });
  });
}

loginSuite('embedded');
loginSuite('redis');

test('UAMs not enabled in the config are refused and not advertised', async () => {
  const g = await startTestGateway({ users: [ALICE] });
  try {
    const info = await AfpClient.serverInfo(g.host, g.port);
    assert.deepEqual(info.uams, ['DHX2', 'DHCAST128']);
    const c = await AfpClient.connect(g.host, g.port);
    await rejectsWith(c.login({ uam: 'No User Authent' }), kFPBadUAM);
    await rejectsWith(c.login({ uam: 'Cleartxt Passwrd', user: 'alice', password: 'x' }), kFPBadUAM);
    await c.login({ user: ALICE.name, password: ALICE.password });
    await c.close();
  } finally {
    await g.stop();
  }
});

test('the server signature persists across restarts of the embedded store', async () => {
  const g = await startTestGateway();
  const sig = (await AfpClient.serverInfo(g.host, g.port)).signature;
  const cfg = g.gw.config;
  await g.gw.stop(0);
  const { Gateway } = await import('../../src/gateway.js');
  const { silentLogger } = await import('../../src/ops/log.js');
  const again = await Gateway.start(cfg, silentLogger());
  try {
    assert.deepEqual((await AfpClient.serverInfo('127.0.0.1', again.port)).signature, sig);
  } finally {
    await again.stop(0);
    await g.stop().catch(() => undefined);
  }
});
