/**
 * The control socket and the commands that use it: `afp-gateway sessions [--kill]`,
 * `cache flush` and `gc`, run as the real binary against a gateway a client is using.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { kFPDenyConflict } from '../../src/afp/result-codes.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import type { SessionSummary } from '../../src/ops/control-server.js';
import { startControlServer } from '../../src/ops/control-server.js';
import { silentLogger } from '../../src/ops/log.js';
import { resultCode } from '../helpers/afp.js';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
const MiB = 1024 * 1024;

async function login(g: TestGateway, u: { name: string; password: string }): Promise<AfpClient> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: u.name, password: u.password });
  return c;
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

describe('afp-gateway sessions', () => {
  let g: TestGateway;
  after(async () => g?.stop());

  it('lists the sessions with their ids, and --kill ends one: its Mac is cut off and its deny modes go', async () => {
    g = await startTestGateway({ users: [ALICE, BOB], config: { volumes: [{ name: 'Data', users: [] }] } });
    const socket = g.gw.config.ops.controlSocket;
    assert.ok(socket && g.gw.control, 'the control socket is served by default');
    assert.equal(socket, join(g.gw.config.dataDir, 'control.sock'), 'under dataDir');
    assert.equal((await stat(socket)).mode & 0o777, 0o600, 'only its owner may connect');

    const alice = await login(g, ALICE);
    const av = await alice.openVolume('Data');
    await av.createFile(ROOT, 'held.bin');
    const bob = await login(g, BOB);
    const bv = await bob.openVolume('Data');
    const held = await bv.openFork(ROOT, 'held.bin', { mode: ForkMode.Read | ForkMode.DenyWrite });
    assert.equal(await resultCode(av.openFork(ROOT, 'held.bin', { mode: ForkMode.Read | ForkMode.Write })), kFPDenyConflict, 'bob denies writers');

    const listed = await runCli(['sessions', '--socket', socket, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as SessionSummary[];
    assert.deepEqual(list.map((s) => s.user).sort(), ['alice', 'bob']);
    const bobs = list.find((s) => s.user === 'bob')!;
    assert.match(bobs.id, /^[0-9a-f]{16}$/);
    assert.equal(bobs.state, 'connected');
    assert.deepEqual(bobs.volumes, ['Data']);
    assert.equal(bobs.openForks, 1);
    assert.equal(bobs.address, '127.0.0.1');

    const table = await runCli(['sessions', '--socket', socket]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+USER\s+MAC\s+STATE/);
    assert.match(table.stdout, new RegExp(`${bobs.id}\\s+bob\\s+127\\.0\\.0\\.1\\s+connected`));

    const killed = await runCli(['sessions', '--socket', socket, '--kill', bobs.id]);
    assert.equal(killed.code, 0, killed.stderr);
    assert.match(killed.stdout, new RegExp(`session ${bobs.id} ended`));
    for (let i = 0; i < 100 && !bob.dsi.isClosed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(bob.dsi.isClosed, "bob's connection is cut");
    await held.close().catch(() => undefined);
    const f = await av.openFork(ROOT, 'held.bin', { mode: ForkMode.Read | ForkMode.Write });
    await f.close();

    const after = JSON.parse((await runCli(['sessions', '--socket', socket, '--json'])).stdout) as SessionSummary[];
    assert.deepEqual(after.map((s) => s.user), ['alice'], 'bob is gone, not waiting for a reconnect');

    const unknown = await runCli(['sessions', '--socket', socket, '--kill', '0123456789abcdef']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no session 0123456789abcdef on this node/);
    const bad = await runCli(['sessions', '--socket', socket, '--kill', 'nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a session id/);
    await alice.close();
  });

  it('finds the socket from the config file, and says so when no gateway runs there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'afpgw-ctl-'));
    try {
      const r = await runCli(['sessions', '--data', dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot reach the gateway's control socket ${join(dir, 'control.sock')}: no gateway is running there`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a second gateway is refused a socket another one answers on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'afpgw-ctl-'));
    const path = join(dir, 'c.sock');
    const endpoints = { sessions: async () => [], endSession: async () => false, flushCache: async () => ({ type: 'error' as const, message: 'x', doneBytes: 0, dirtyBytes: 0 }), collectGarbage: async () => [] };
    const first = await startControlServer(path, endpoints, silentLogger());
    try {
      await assert.rejects(startControlServer(path, endpoints, silentLogger()), /another process serves the control socket/);
    } finally {
      await first.close();
    }
    // A file that is not a socket is not ours to remove: a mistyped path must not delete it.
    const notSocket = join(dir, 'config.yaml');
    await writeFile(notSocket, 'precious\n');
    await assert.rejects(startControlServer(notSocket, endpoints, silentLogger()), /exists and is not a socket/);
    assert.equal(await readFile(notSocket, 'utf8'), 'precious\n');
    // A socket file left behind by a dead process is taken over.
    await assert.rejects(stat(path), 'closing removes the socket file');
    const again = await startControlServer(path, endpoints, silentLogger());
    await again.close();
    await rm(dir, { recursive: true, force: true });
  });
});

describe('afp-gateway cache flush and gc', () => {
  let g: TestGateway | undefined;
  let g2: TestGateway | undefined;
  let dataDir = '';
  after(async () => {
    await g?.stop();
    await g2?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('cache flush makes unsynced writes durable: they survive losing the whole cache', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'afpgw-flush-'));
    // Partial blocks wait 10 minutes for more writes: without the flush they stay dirty.
    const config = { dataDir, volumes: [{ name: 'Data' }], cache: { uploadDelayMs: 600_000 }, objects: { backend: 'fs' as const, gcGraceSeconds: 0, gcIntervalSeconds: 86_400 } };
    g = await startTestGateway({ users: [ALICE], config });
    const socket = g.gw.config.ops.controlSocket!;
    const c = await login(g, ALICE);
    const v = await c.openVolume('Data');
    await v.createFile(ROOT, 'unsynced.bin');
    const f = await v.openFork(ROOT, 'unsynced.bin', { mode: ForkMode.Read | ForkMode.Write });
    const data = randomBytes(9 * MiB + 12345);
    await f.write(0, data);
    assert.ok(g.gw.dirtyBytes > 0, 'the tail block is still dirty');

    const flushed = await runCli(['cache', 'flush', '--socket', socket]);
    assert.equal(flushed.code, 0, flushed.stderr);
    assert.match(flushed.stdout, /cache flushed: \d+ bytes uploaded and committed/);
    assert.match(flushed.stderr, /flushing: /, 'a progress summary on stderr');
    assert.equal(g.gw.dirtyBytes, 0);

    // The node goes without draining, and its cache (with the journal) is lost.
    await c.close().catch(() => undefined);
    await g.gw.stop(0, 0);
    await rm(join(dataDir, 'cache'), { recursive: true, force: true });
    g2 = await startTestGateway({ config });
    const c2 = await login(g2, ALICE);
    const r = await (await c2.openVolume('Data')).openFork(ROOT, 'unsynced.bin', { mode: ForkMode.Read });
    const back = await r.read(0, data.length + 100);
    assert.equal(back.data.length, data.length, 'the length was committed');
    assert.ok(back.data.equals(data), 'the bytes were in the object store');
    await r.close();

    // gc: rewriting the blocks queues the old objects; with the interval a day away, only
    // the command deletes them.
    const w = await (await c2.openVolume('Data')).openFork(ROOT, 'unsynced.bin', { mode: ForkMode.Read | ForkMode.Write });
    await w.write(0, randomBytes(data.length));
    await w.sync();
    await w.close();
    const objects = join(dataDir, 'objects');
    const before = await countFiles(objects);
    const gc = await runCli(['gc', '--socket', g2.gw.config.ops.controlSocket!, '--json']);
    assert.equal(gc.code, 0, gc.stderr);
    const res = JSON.parse(gc.stdout) as { volume: string; deleted: number }[];
    assert.equal(res.length, 1);
    assert.equal(res[0]!.volume, 'Data');
    assert.ok(res[0]!.deleted >= 3, `the three replaced blocks went (${res[0]!.deleted})`);
    assert.equal(await countFiles(objects), before - res[0]!.deleted, 'and their objects are gone from the store');
    await c2.close();
  });

  it('cache flush answers usage errors plainly', async () => {
    const r = await runCli(['cache', 'drain', '--socket', '/nonexistent.sock']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: afp-gateway cache flush/);
  });
});
