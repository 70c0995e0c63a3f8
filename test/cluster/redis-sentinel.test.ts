/**
 * The Sentinel harness (test/helpers/redis-sentinel.ts) itself: three sentinels promote the
 * replica when the master is SIGKILLed, what a write had WAITed for is on the new master, a
 * fresh replica attaches to it, and stop() leaves no process behind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { command, needSentinel, startSentinelSet } from '../helpers/redis-sentinel.js';

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Redis Sentinel harness', () => {
  it('promotes the replica when the master dies, keeps what was WAITed for, and cleans up', async (t) => {
    if (!needSentinel(t)) return;
    const set = await startSentinelSet();
    const pids: (number | undefined)[] = set.servers.map((s) => s.process.pid);
    try {
      const first = await set.master();
      assert.equal(first.port, set.servers[0]!.port, 'the first server is the master');
      assert.equal(await command(first.port, ['SET', 'k', 'before the failover']), 'OK');
      assert.equal(await command(first.port, ['WAIT', '1', '5000']), 1, 'the replica acknowledged the write');

      const killed = await set.killMaster();
      const promoted = await set.waitForNewMaster(killed);
      const promotedAt = performance.now();
      assert.notEqual(promoted.port, killed.port);
      assert.equal(promoted.port, set.servers[1]!.port, 'the replica is the new master');
      assert.equal(await command(promoted.port, ['GET', 'k']), 'before the failover', 'what was WAITed for survives');
      t.diagnostic(`SIGKILL of the master → every sentinel names the promoted replica: ${((promotedAt - killed.killedAt) / 1000).toFixed(2)} s`);

      // Alone, the new master has no replica to WAIT for; a new one attaches to it.
      assert.equal(await command(promoted.port, ['WAIT', '1', '100']), 0);
      const replica = await set.addReplica();
      pids.push(replica.process.pid);
      assert.equal(await command(promoted.port, ['SET', 'k', 'after']), 'OK');
      assert.equal(await command(promoted.port, ['WAIT', '1', '5000']), 1, 'the new replica acknowledges writes');
      assert.equal(await command(replica.port, ['GET', 'k']), 'after');
    } finally {
      await set.stop();
    }
    for (const pid of pids) assert.ok(!alive(pid), `redis-server ${pid} is gone`);
    for (const s of set.sentinels) await assert.rejects(command(s.port, ['PING']), `the sentinel on ${s.port} is gone`);
  });
});
