/**
 * Every line logged on behalf of a session carries its id (`session`): the AFP handlers' own
 * lines (through the session's child logger), the transport's lines for the connection the
 * session speaks over, and what the data layer logs for the session's reads and closes. An
 * admin greps one id and sees the whole story of one Mac, also with several Macs at once.
 */
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { AfpError } from '../../src/afp/errors.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from '../helpers/gateway.js';

type Line = Record<string, unknown> & { msg?: string; session?: string };

const MiB = 1024 * 1024;
const USERS = [
  { name: 'alice', password: 'alice-pw' },
  { name: 'bob', password: 'bob-pw' },
  { name: 'carol', password: 'carol-pw' },
];

/** A gateway whose JSON lines (debug and up) are kept in `lines`. */
async function loggedGateway(opts: TestGatewayOptions): Promise<{ g: TestGateway; lines: Line[] }> {
  const lines: Line[] = [];
  let partial = '';
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      const text = partial + chunk.toString();
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const p of parts) if (p !== '') lines.push(JSON.parse(p) as Line);
      done();
    },
  });
  const g = await startTestGateway({ ...opts, users: USERS, log: pino({ level: 'debug' }, sink) });
  return { g, lines };
}

/** Waits until `lines` holds one that `match` accepts (the session's last lines come after the client is gone). */
async function lineWhere(lines: Line[], what: string, match: (l: Line) => boolean, ms = 10_000): Promise<Line> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = lines.find(match);
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`no log line ${what}; got:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The id of the session a user's login line names. */
function sessionOf(lines: Line[], user: string): string {
  const login = lines.find((l) => l.msg === 'login' && l.user === user);
  assert.ok(login, `a login line for ${user}`);
  assert.equal(typeof login.session, 'string', `the login line carries the session id: ${JSON.stringify(login)}`);
  return login.session!;
}

describe('session ids in the log', () => {
  let g: TestGateway;
  let lines: Line[];

  before(async () => {
    // Room for one clean 4 MiB block in the cache, so a test can make a read miss it.
    ({ g, lines } = await loggedGateway({ config: { volumes: [{ name: 'Data' }, { name: 'Other' }], cache: { size: 12 * MiB, dirtyLimit: 8 * MiB } } }));
  });

  after(async () => {
    await g?.stop();
  });

  it('every line of two concurrent sessions carries its own session id', async () => {
    const from = lines.length;
    /** One Mac's work: write and sync a file, fail to open a missing one, sync the directory, leave. */
    const work = async (c: AfpClient, user: (typeof USERS)[number], volume: string, logout: boolean) => {
      const v = await c.openVolume(volume);
      const dir = await v.createDir(ROOT, `${user.name}-dir`);
      await v.createFile(dir, 'f.bin');
      const f = await v.openFork(dir, 'f.bin', { mode: ForkMode.Read | ForkMode.Write });
      await f.write(0, Buffer.alloc(256 * 1024, 7));
      await f.sync();
      await f.read(0, 4096);
      await f.close();
      await assert.rejects(v.openFork(dir, 'missing.bin', { mode: ForkMode.Read }), (err: unknown) => err instanceof AfpError);
      await v.syncDir(dir);
      if (logout) await c.logout();
      await c.close();
    };
    // One login at a time from an address (the password gate refuses a second meanwhile); then both work at once.
    const clients: AfpClient[] = [];
    for (const u of USERS.slice(0, 2)) {
      const c = await AfpClient.connect(g.host, g.port);
      await c.login({ user: u.name, password: u.password });
      clients.push(c);
    }
    await Promise.all([work(clients[0]!, USERS[0]!, 'Data', true), work(clients[1]!, USERS[1]!, 'Other', false)]);
    await lineWhere(lines, 'for both sessions ending', () => lines.slice(from).filter((l) => l.msg === 'session ended').length === 2);

    const mine = lines.slice(from);
    const alice = sessionOf(mine, 'alice');
    const bob = sessionOf(mine, 'bob');
    assert.notEqual(alice, bob, 'two sessions, two ids');
    const without = mine.filter((l) => l.session === undefined);
    assert.deepEqual(without, [], 'every line logged while only these two sessions worked carries a session id');
    assert.deepEqual(new Set(mine.map((l) => l.session)), new Set([alice, bob]), 'and it is one of theirs');

    for (const [id, user, volume] of [[alice, 'alice', 'Data'], [bob, 'bob', 'Other']] as const) {
      const own = mine.filter((l) => l.session === id);
      for (const l of own) if (l.user !== undefined) assert.equal(l.user, user, `a line of ${user}'s session names ${user}: ${JSON.stringify(l)}`);
      assert.ok(own.some((l) => l.msg === 'volume opened' && l.volume === volume), `${user}'s volume opened`);
      assert.ok(own.some((l) => l.msg === 'fork opened'), `${user}'s fork opened`);
      const failed = own.filter((l) => l.msg === 'afp' && l.cmd === 'FPOpenFork' && String(l.result).startsWith('kFPObjectNotFound'));
      assert.equal(failed.length, 1, `${user}'s failed open`);
      for (const cmd of ['FPLoginExt', 'FPLoginCont', 'FPOpenVol', 'FPCreateFile', 'FPWriteExt', 'FPSyncFork', 'FPReadExt', 'FPCloseFork', 'FPSyncDir']) {
        assert.ok(own.some((l) => l.msg === 'afp' && l.cmd === cmd), `${user}'s ${cmd} is logged with the session`);
      }
      assert.ok(own.some((l) => l.msg === 'session ended'), `${user}'s session end`);
    }
    assert.ok(mine.some((l) => l.session === alice && l.msg === 'logout'));
    assert.ok(!mine.some((l) => l.session === bob && l.msg === 'logout'), 'bob left without logging out');
  });

  it('what the data layer logs for a session\'s read carries the session', async () => {
    const from = lines.length;
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: 'carol', password: 'carol-pw' });
    const v = await c.openVolume('Data');
    for (const [name, size] of [['big.bin', 12 * MiB], ['small.bin', 4 * MiB]] as const) {
      await v.createFile(ROOT, name);
      const f = await v.openFork(ROOT, name, { mode: ForkMode.Read | ForkMode.Write });
      await f.write(0, Buffer.alloc(size, 1));
      await f.sync();
      await f.close();
    }
    // small.bin's block, made clean last, pushed every block of big.bin out of the cache; now
    // the bucket loses them too, so the read of block 0 and its read-ahead of blocks 1 and 2 fail.
    const objects = g.gw.config.objects;
    assert.equal(objects.backend, 'fs');
    for (const e of await readdir(objects.path)) if (!e.startsWith('.')) await rm(join(objects.path, e), { recursive: true });
    const big = await v.openFork(ROOT, 'big.bin', { mode: ForkMode.Read });
    await assert.rejects(big.read(0, 4096), (err: unknown) => err instanceof AfpError);
    const carol = sessionOf(lines.slice(from), 'carol');
    const ahead = await lineWhere(lines, 'about the failed read-ahead', (l) => l.msg?.startsWith('read-ahead failed') === true);
    assert.equal(ahead.session, carol, `the read-ahead line carries the reading session: ${JSON.stringify(ahead)}`);
    assert.equal(ahead.volume, 'Data', 'and the volume');
    await big.close();
    await c.logout();
    await c.close();
    await lineWhere(lines, 'for carol\'s session ending', (l) => l.session === carol && l.msg === 'session ended');
    const without = lines.slice(from).filter((l) => l.session === undefined);
    assert.deepEqual(without, [], 'no line of this session\'s work lacks its id');
  });
});

describe('session ids in the transport\'s log lines', () => {
  let g: TestGateway;
  let lines: Line[];

  before(async () => {
    ({ g, lines } = await loggedGateway({
      tune: (cfg) => {
        cfg.dsi.tickleSeconds = 0.1;
        cfg.dsi.idleTimeoutSeconds = 0.5;
      },
    }));
  });

  after(async () => {
    await g?.stop();
  });

  it('the connection\'s lines name the session it serves', async () => {
    const from = lines.length;
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: 'alice', password: 'alice-pw' });
    // The client never tickles back: the server drops the connection as idle.
    const idle = await lineWhere(lines, 'about the idle connection', (l) => l.msg === 'idle timeout');
    const alice = sessionOf(lines.slice(from), 'alice');
    assert.equal(idle.session, alice, `the transport's line carries the session: ${JSON.stringify(idle)}`);
    assert.equal(typeof idle.conn, 'number', 'and the connection');
    c.dsi.destroy();
  });
});
