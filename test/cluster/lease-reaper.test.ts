import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LeaseReaper } from '../../src/cluster/lease-reaper.js';
import { Access } from '../../src/meta/forks.js';
import { silentLogger } from '../../src/ops/log.js';
import { AfpClient } from '../../src/client/afp-client.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { BACKENDS, gatewayFor, SKIP_REASON } from '../helpers/backends.js';

const USER = { name: 'alice', password: 'alice-pw' };
const EXCLUSIVE = Access.Read | Access.Write | Access.DenyRead | Access.DenyWrite;

for (const backend of BACKENDS) {
  describe(`lease reaper (${backend} store)`, () => {
    const gw = gatewayFor(backend, { users: [USER], config: { volumes: [{ name: 'TimeMachine', timeMachine: true }] } });

    test('a dead node\'s opens go after the grace period, except those of sessions its Macs may still resume', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const c = await AfpClient.connect(g.host, g.port);
      await c.login({ user: USER.name, password: USER.password });
      const v = await c.openVolume('TimeMachine');
      for (const f of ['orphan.band', 'waiting.band', 'alive.band']) await v.createFile(ROOT, f, true);
      const id = async (name: string) => (await v.getFileDirParms(ROOT, name)).params.nodeId!;
      const tm = g.gw.volumes.byName('TimeMachine')!;
      const fs = tm.forkStore;
      const dead = `dead-${backend}`;
      const alive = `alive-${backend}`;
      await g.gw.meta.registerNode({ id: alive, host: '127.0.0.1', port: 1, version: 'test', startedAt: Date.now() }, 60_000);
      await fs.open({ openId: `${dead}:orphan:1`, session: 'orphan', node: dead, fileId: await id('orphan.band'), fork: 'data', mode: EXCLUSIVE });
      await fs.open({ openId: `${dead}:waiting:1`, session: 'waiting', node: dead, fileId: await id('waiting.band'), fork: 'data', mode: EXCLUSIVE });
      await fs.open({ openId: `${alive}:other:1`, session: 'other', node: alive, fileId: await id('alive.band'), fork: 'data', mode: EXCLUSIVE });
      await fs.lock(`${dead}:orphan:1`, { start: 0, end: 10 });
      const rec = { id: 'waiting', node: dead, user: 'alice', uid: 1000, token: 'aa'.repeat(16), clientId: '', timestamp: null, volumes: [tm.key], tmVolumes: [tm.key], forkVolumes: [tm.key], createdAt: Date.now() };
      await g.gw.meta.sessions().putSession(rec, 60_000);

      let now = 1_000_000;
      const reaper = new LeaseReaper({
        nodeId: g.gw.nodeId,
        volumes: () => g.gw.volumes.all(),
        sessions: g.gw.meta.sessions(),
        liveNodes: async () => new Set((await g.gw.meta.listNodes()).map((n) => n.id)),
        graceMs: 5000,
        intervalMs: 60_000,
        log: silentLogger(),
        now: () => now,
      });
      assert.equal(await reaper.reapOnce(), 0, 'within the grace period nothing goes');
      now += 5000;
      assert.equal(await reaper.reapOnce(), 1, 'the session without a record loses its open');
      assert.deepEqual((await fs.opensOf(await id('orphan.band'))).length, 0);
      assert.equal((await fs.opensOf(await id('waiting.band'))).length, 1, 'a session with a record may still be resumed');
      assert.equal((await fs.opensOf(await id('alive.band'))).length, 1, 'a live node is never touched');
      assert.deepEqual((await fs.nodes()).filter((n) => n === dead), [dead]);

      await g.gw.meta.sessions().dropSession('waiting');
      assert.equal(await reaper.reapOnce(), 1);
      assert.deepEqual((await fs.nodes()).filter((n) => n === dead || n === alive), [alive]);
      await fs.releaseNode(alive);
      await g.gw.meta.unregisterNode(alive);
      // This node's own opens are never a dead node's.
      const mine = await v.openFork(ROOT, 'alive.band');
      now += 60_000;
      assert.equal(await reaper.reapOnce(), 0);
      await mine.close();
      await c.close();
    });
  });
}
