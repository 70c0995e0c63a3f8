import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AfpClient } from '../../src/client/afp-client.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { runCli, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const ENV = { AFPGW_AUTH__SCRYPT__N: '1024', AFPGW_LISTEN__HOST: '127.0.0.1' };

/**
 * The embedded store commits without waiting for the disk (metadata.sync: periodic). A
 * change the gateway acknowledged must still survive the gateway being killed outright:
 * only an OS crash or power loss may take the changes since the last sync.
 */
test('namespace changes acknowledged before a SIGKILL are there after a restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-crash-'));
  const port = await freePort();
  try {
    assert.equal((await runCli(['user', 'add', 'kim', '--data', dir], 'kim-password\n', ENV)).code, 0);
    // A long sync interval, so nothing but the commits themselves can have saved the data.
    const env = { ...ENV, AFPGW_METADATA__BACKEND: 'embedded', AFPGW_METADATA__SYNC_INTERVAL_MS: '60000' };
    const first = await startServe(['--port', String(port), '--data', dir], env);
    const c = await AfpClient.connect('127.0.0.1', port);
    await c.login({ user: 'kim', password: 'kim-password' });
    const v = await c.openVolume('TimeMachine');
    const d = await v.createDir(ROOT, 'before-crash');
    for (let i = 0; i < 200; i++) await v.createFile(d, `f-${i}`);
    await v.setXattr(d, 'f-7', 'com.apple.test', Buffer.from('kept'));
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    c.dsi.destroy();

    const second = await startServe(['--port', String(port), '--data', dir], env);
    try {
      const c2 = await AfpClient.connect('127.0.0.1', port);
      await c2.login({ user: 'kim', password: 'kim-password' });
      const v2 = await c2.openVolume('TimeMachine');
      const names = (await v2.enumerateAll(ROOT, 'before-crash')).map((e) => e.params.utf8Name);
      assert.equal(names.length, 200);
      assert.deepEqual(await v2.getXattr(ROOT, ['before-crash', 'f-7'], 'com.apple.test'), Buffer.from('kept'));
      await c2.close();
    } finally {
      second.child.kill('SIGTERM');
      await once(second.child, 'exit');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
