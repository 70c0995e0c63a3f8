/**
 * A Time Machine backup through a pair of gateways (two `afp-gateway serve` processes over one
 * redis-server and one s3rver) survives the death of the node it runs on: at the workload's
 * drop (test/data/time-machine.ts, TmWorkloadOptions.failover) node A is SIGKILLed with a
 * batch of requests run but unanswered, the Mac reconnects to node B with its session token,
 * B restores the session from Redis once A's lease lapses and answers the lost replies from
 * the replay cache (no kFPObjectExists, no second append), and the backup goes on there to
 * the end, through a Mac restart with lock stealing. The bundle is then byte-exact through
 * node B and through a third node with an empty cache (what is in S3 and Redis only).
 *
 * Sizes: AFPGW_TEST_TM_FAILOVER_MIB (band bytes written, default 48), AFPGW_TEST_TM_SEED.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';
import { makePlan, MiB, newPool, timeMachineWorkload, TM_USER, verifyBundle } from '../data/time-machine.js';
import { keepLogs, logProblems, startPairNode, testKnobsUnset, type PairNode } from './tm-pair.js';

const TEST_MIB = Number(process.env.AFPGW_TEST_TM_FAILOVER_MIB ?? 48);
const TEST_SEED = Number(process.env.AFPGW_TEST_TM_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe('failover: a Time Machine backup goes on on the surviving gateway', () => {
  let s3: S3Server | undefined;
  let redis: RedisServer | undefined;
  let work: string | undefined;
  const children = new Set<ChildProcess>();

  const node = (name: string): Promise<PairNode> =>
    startPairNode({ work: work!, name, children, metadata: { backend: 'redis', url: redis!.url, keyPrefix: 'tmpair' }, objects: s3Config(s3!, { prefix: 'tmpair' }) });

  before(async () => {
    if (!redisAvailable()) {
      if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
      return;
    }
    work = await mkdtemp(join(tmpdir(), 'afpgw-tm-failover-'));
    s3 = await startS3({ bucket: 'tmpair' });
    redis = await startRedis();
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await redis?.stop();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('SIGKILL of the writing node mid-backup: reconnect to the other, replayed replies, every synced byte', async (t) => {
    if (!redis) return t.skip('redis-server not installed');
    const a = await node('a');
    const added = await runCli(['user', 'add', TM_USER.name, '--config', a.file], `${TM_USER.password}\n${TM_USER.password}\n`, testKnobsUnset());
    assert.equal(added.code, 0, added.stderr);
    const b = await node('b');

    const plan = makePlan({ bandSize: MiB, bands: 40, totalBytes: TEST_MIB * MiB, seed: TEST_SEED });
    assert.ok(plan.ops.some((op) => op.kind === 'drop'), 'the plan drops the connection');
    t.diagnostic(`seed ${TEST_SEED} (AFPGW_TEST_TM_SEED), ${TEST_MIB} MiB, ${plan.ops.length} steps: ${JSON.stringify(plan.counts)}`);

    let killedAt = 0;
    let failovers = 0;
    const failover = async (): Promise<{ host: string; port: number }> => {
      failovers++;
      killedAt = performance.now();
      a.child.kill('SIGKILL');
      // The Mac's next connection through the pair's address reaches node B.
      return { host: b.host, port: b.port };
    };
    const { model, stats } = await timeMachineWorkload({ host: a.host, port: a.port, plan, pool: newPool(), failover }).catch(async (e: unknown) => {
      for (const n of [a, b]) {
        t.diagnostic(`node ${n.name.toUpperCase()}'s warnings and errors (s since the kill):`);
        for (const line of logProblems(n.output(), { since: killedAt ? performance.timeOrigin + killedAt : undefined })) t.diagnostic(line);
      }
      t.diagnostic(`the nodes' whole logs: ${await keepLogs('tm-failover', [a, b])}`);
      throw e;
    });
    assert.equal(failovers, 1, 'the workload failed over once');
    assert.equal(a.child.signalCode, 'SIGKILL', 'node A died');
    const f = stats.failover;
    assert.ok(f, 'the workload reports the failover');
    // Every request the dead node left unanswered had run there (the batch ends with syncs and an xattr it waited for).
    assert.equal(stats.ranBeforeDrop, stats.replayed, 'node A ran every request of the batch before it died');
    assert.ok(stats.replayed >= 9, `${stats.replayed} requests replayed`);
    t.diagnostic(
      `failover: ${((f.reconnectedAt - killedAt) / 1000).toFixed(2)} s from SIGKILL to the session resumed on node B (FPDisconnectOldSession answered), ` +
        `${((f.firstReplyAt - killedAt) / 1000).toFixed(2)} s to the first replayed reply (${stats.replayed} lost replies answered from the replay cache)`,
    );
    const mib = stats.bandBytes / MiB;
    t.diagnostic(
      `${mib.toFixed(1)} MiB of band writes in ${stats.bandSeconds.toFixed(1)} s; reconnect incl. failover ${stats.reconnectSeconds.toFixed(2)} s; ` +
        `restart + lock steal on node B ${stats.restartSeconds.toFixed(2)} s; whole backup ${stats.totalSeconds.toFixed(1)} s; ` +
        `slowest other request ${stats.slowest.what} ${stats.slowest.seconds.toFixed(2)} s`,
    );

    const t1 = performance.now();
    const bytes = await verifyBundle(b.host, b.port, model, { label: 'node B (the survivor)' });
    t.diagnostic(`${(bytes / MiB).toFixed(1)} MiB in ${model.files.size} files verified through node B in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    const c = await node('c');
    const t2 = performance.now();
    await verifyBundle(c.host, c.port, model, { label: 'node C (empty cache: S3 and Redis only)' });
    t.diagnostic(`verified again through node C with an empty cache in ${((performance.now() - t2) / 1000).toFixed(1)} s`);
  });
});
