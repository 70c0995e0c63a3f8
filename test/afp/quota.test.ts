/**
 * A volume's size limit, as Time Machine sees it: FPGetVolParms reports it as the volume's
 * capacity with the used bytes counted (so the Mac prunes old backups in time), and writes or
 * extensions past it get kFPDiskFull while writes within it go on.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { kFPDiskFull } from '../../src/afp/result-codes.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { resultCode } from '../helpers/afp.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const MiB = 1024 * 1024;
const LIMIT = 8 * MiB;
const USER = { name: 'tm', password: 'quota-pw' };

describe('volume size limit', () => {
  let g: TestGateway;
  before(async () => {
    g = await startTestGateway({ users: [USER], config: { volumes: [{ name: 'TimeMachine', sizeLimit: LIMIT }] } });
  });
  after(() => g.stop());

  it('is the capacity FPGetVolParms reports, and writes past it get kFPDiskFull', async () => {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    const v = await c.openVolume('TimeMachine');
    const empty = await v.getParms();
    assert.equal(empty.bytesTotal, LIMIT);
    assert.equal(empty.bytesFree, LIMIT);

    await v.createFile(ROOT, 'band', true);
    const f = await v.openFork(ROOT, 'band', { mode: ForkMode.Read | ForkMode.Write });
    await f.write(0, randomBytes(6 * MiB));
    assert.equal((await v.getParms()).bytesFree, 2 * MiB, 'unsynced writes count as used');

    assert.equal(await resultCode(f.writeExt(7 * MiB + MiB / 2, randomBytes(MiB))), kFPDiskFull, 'a write ending past the limit');
    assert.equal(await resultCode(f.setLength(9 * MiB)), kFPDiskFull);
    // Rewriting bytes that exist takes no space, and the remaining room is still usable.
    await f.write(0, randomBytes(MiB));
    await f.write(6 * MiB, randomBytes(2 * MiB));
    assert.equal(await f.length(), LIMIT);
    await f.sync();
    assert.equal((await v.getParms()).bytesFree, 0);

    assert.equal(await resultCode(f.writeExt(LIMIT, randomBytes(10))), kFPDiskFull, 'full');

    // Freeing space makes room again, at once (Time Machine prunes, then writes).
    await f.setLength(4 * MiB);
    assert.equal((await v.getParms()).bytesFree, 4 * MiB);
    await f.write(4 * MiB, randomBytes(MiB));
    await f.close();
    await c.close();
  });
});
