import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AfpClient } from '../../src/client/afp-client.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { kFPAccessDenied, kFPBitmapErr, kFPObjectNotFound } from '../../src/afp/result-codes.js';
import { startTestGateway } from '../helpers/gateway.js';
import { resultCode as code } from '../helpers/afp.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
const READ = 1 << 1;
const WRITE = 1 << 2;
const EXECUTE = 1 << 3;
const DELETE = 1 << 4;
const WRITE_SECURITY = 1 << 12;
const TAKE_OWNERSHIP = 1 << 13;


describe('FPAccess, FPGetACL and FPSetACL on a server without ACLs', () => {
  test('rights follow Unix permissions; ACLs are empty and cannot be stored', async () => {
    const g = await startTestGateway({ users: [ALICE, BOB] });
    try {
      const a = await AfpClient.connect(g.host, g.port);
      await a.login({ user: ALICE.name, password: ALICE.password });
      const av = await a.openVolume('TimeMachine');
      await av.createDir(ROOT, 'private');
      await av.createFile(ROOT, ['private', 'doc']);
      await av.access(ROOT, 'private', READ | WRITE | EXECUTE | DELETE | WRITE_SECURITY);
      assert.equal(await code(av.access(ROOT, 'private', TAKE_OWNERSHIP)), kFPAccessDenied);
      assert.equal(await code(av.access(ROOT, 'nothing', READ)), kFPObjectNotFound);

      const b = await AfpClient.connect(g.host, g.port);
      await b.login({ user: BOB.name, password: BOB.password });
      const bv = await b.openVolume('TimeMachine');
      await bv.access(ROOT, 'private', READ | EXECUTE);
      assert.equal(await code(bv.access(ROOT, 'private', WRITE)), kFPAccessDenied);
      assert.equal(await code(bv.access(ROOT, 'private', DELETE)), kFPAccessDenied, 'sticky root: not his to delete');
      assert.equal(await code(bv.access(ROOT, 'private', WRITE_SECURITY)), kFPAccessDenied);

      assert.deepEqual(await av.getAcl(ROOT, 'private', 0x07), { bitmap: 0x04, entries: 0 });
      assert.deepEqual(await av.getAcl(ROOT, ['private', 'doc'], 0x03), { bitmap: 0 });
      assert.equal(await code(av.getAcl(ROOT, 'private', 0x100)), kFPBitmapErr);
      await av.setAcl(ROOT, 'private', 0x08);
      await av.setAcl(ROOT, 'private', 0x04, 0);
      assert.equal(await code(av.setAcl(ROOT, 'private', 0x04, 2)), kFPAccessDenied);
      assert.equal(await code(av.setAcl(ROOT, 'private', 0x01)), kFPAccessDenied);
      assert.equal(await code(bv.setAcl(ROOT, 'private', 0x08)), kFPAccessDenied, 'only the owner');
      await a.close();
      await b.close();
    } finally {
      await g.stop();
    }
  });
});
