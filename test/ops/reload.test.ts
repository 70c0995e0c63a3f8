/**
 * SIGHUP: a new configuration takes effect without dropping a session. Volume access and size
 * limits change in place, a volume added at the end opens, and what a connected Mac already
 * holds (a volume's name, its place in the list) waits for a restart and is reported so.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { kFPAccessDenied, kFPDiskFull } from '../../src/afp/result-codes.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { resultCode } from '../helpers/afp.js';
import { runCli, startServe } from '../helpers/cli.js';
import { startTestGateway, TEST_SCRYPT } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

const MiB = 1024 * 1024;
const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };

describe('configuration reload', () => {
  it('changes limits and access in place, adds volumes, keeps sessions, reports what needs a restart', async () => {
    const g = await startTestGateway({ users: [ALICE, BOB], config: { volumes: [{ name: 'Backups', sizeLimit: 1 * MiB, users: ['alice'] }] } });
    try {
      const a = await AfpClient.connect(g.host, g.port);
      await a.login({ user: ALICE.name, password: ALICE.password });
      const v = await a.openVolume('Backups');
      await v.createFile(ROOT, 'f');
      const f = await v.openFork(ROOT, 'f', { mode: ForkMode.Read | ForkMode.Write });
      const chunk = Buffer.alloc(768 * 1024, 1);
      assert.equal(await f.writeExt(0, chunk), chunk.length);
      assert.equal(await resultCode(f.writeExt(chunk.length, chunk)), kFPDiskFull, 'the old limit holds');
      const b = await AfpClient.connect(g.host, g.port);
      await b.login({ user: BOB.name, password: BOB.password });
      assert.equal(await resultCode(b.openVolume('Backups')), kFPAccessDenied);

      const cfg: GatewayConfig = g.gw.config;
      const backups = cfg.volumes[0]!;
      const report = await g.gw.reload({
        ...cfg,
        volumes: [{ ...backups, sizeLimit: 32 * MiB, users: ['alice', 'bob'] }, { ...backups, name: 'Added', sizeLimit: null, users: [] }],
      });
      assert.deepEqual(report.needRestart, []);
      assert.deepEqual(report.applied.sort(), ['Backups: sizeLimit', 'Backups: users', 'volume Added added'].sort());

      // The same session, the same open fork: the new limit applies at once.
      assert.equal((await v.getParms()).bytesTotal, 32 * MiB);
      assert.equal(await f.writeExt(chunk.length, chunk), 2 * chunk.length);
      await f.close();
      const bv = await b.openVolume('Backups');
      assert.ok(bv.id > 0, 'bob may open it now');
      assert.ok((await b.getSrvrParms()).volumes.some((x) => x.name === 'Added'), 'the new volume is listed');
      const added = await a.openVolume('Added');
      await added.createFile(ROOT, 'x');

      const again = await g.gw.reload({ ...g.gw.config, volumes: [{ ...backups, name: 'Renamed', sizeLimit: 32 * MiB, users: ['alice', 'bob'] }] });
      // Without a key, a new name is new data (docs/configuration.md: set key to keep it).
      assert.deepEqual(again.needRestart.sort(), ['volume 1 is now Renamed (was Backups)', 'volume Added removed'].sort());
      const kept = await g.gw.reload({ ...g.gw.config, volumes: [{ ...backups, name: 'Renamed', key: 'backups', sizeLimit: 32 * MiB, users: ['alice', 'bob'] }, { ...backups, name: 'Added', sizeLimit: null, users: [] }] });
      assert.deepEqual(kept.needRestart, ['Backups: name'], 'with its key kept, the rename itself waits for the restart');
      assert.ok((await b.getSrvrParms()).volumes.some((x) => x.name === 'Backups'), 'a rename waits for the restart');
      await a.close();
      await b.close();
    } finally {
      await g.stop();
    }
  });

  it('serve reloads its file on SIGHUP and keeps its configuration when the file is broken', async () => {
    const work = await mkdtemp(join(tmpdir(), 'afpgw-reload-'));
    let child: ChildProcess | undefined;
    try {
      const port = await freePort();
      const file = join(work, 'config.yaml');
      const base = { serverName: 'Reload', dataDir: join(work, 'data'), listen: { host: '127.0.0.1', port, fallbackPort: null }, auth: { scrypt: TEST_SCRYPT }, bonjour: { enabled: false }, ops: { metricsListen: null } };
      await writeFile(file, stringify({ ...base, volumes: [{ name: 'One' }] }));
      const added = await runCli(['user', 'add', ALICE.name, '--config', file], `${ALICE.password}\n${ALICE.password}\n`);
      assert.equal(added.code, 0, added.stderr);
      const served = await startServe(['--config', file]);
      child = served.child;
      const c = await AfpClient.connect('127.0.0.1', port);
      await c.login({ user: ALICE.name, password: ALICE.password });
      const names = async () => (await c.getSrvrParms()).volumes.map((x) => x.name).sort();
      assert.deepEqual(await names(), ['One']);

      await writeFile(file, 'volumes: [ {name: ');
      child.kill('SIGHUP');
      await waitFor(() => served.output().includes('configuration reload refused'));
      assert.deepEqual(await names(), ['One'], 'a broken file changes nothing');

      await writeFile(file, stringify({ ...base, volumes: [{ name: 'One' }, { name: 'Two' }] }));
      child.kill('SIGHUP');
      await waitFor(async () => (await names()).includes('Two'));
      assert.deepEqual(await names(), ['One', 'Two'], 'the same session sees the new volume');
      await c.close();
    } finally {
      child?.kill('SIGKILL');
      await rm(work, { recursive: true, force: true });
    }
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
