/**
 * A Time Machine backup through a pair of gateways (two `afp-gateway serve` processes) whose
 * Redis is a Sentinel deployment (test/helpers/redis-sentinel.ts: a master, one replica,
 * three sentinels) survives the death of the Redis master: right after a round of
 * FPSyncFork, the master is SIGKILLed and the backup goes on at once, while the sentinels
 * promote the replica (and a fresh replica attaches to it, as the dead box would come back:
 * with `waitReplicas: 1` a sync needs one). The gateways follow Sentinel to the new master;
 * requests that meet the failover wait for it instead of failing, and a Lua script resent
 * after it is not applied twice. At the end the bundle is byte-exact through node A (which
 * ran the backup) and node B (which did not, so it reads only S3 and Redis): nothing synced,
 * each sync having WAITed for the replica, is lost with the master.
 *
 * Sizes: AFPGW_TEST_TM_SENTINEL_MIB (band bytes written, default 48), AFPGW_TEST_TM_SEED;
 * AFPGW_TEST_TM_SENTINEL_ROUND picks the sync round after which the master dies (-1: the last
 * one before the drop, so the reconnect meets the failover).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { sentinelAvailable, startSentinelSet, type Address, type RedisSentinelSet } from '../helpers/redis-sentinel.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';
import { makePlan, MiB, newPool, syncRounds, timeMachineWorkload, TM_USER, verifyBundle } from '../data/time-machine.js';
import { freePort } from '../helpers/ports.js';
import { keepLogs, logProblems, startPairNode, testKnobsUnset, writePairConfig, type PairNode } from './tm-pair.js';

const TEST_MIB = Number(process.env.AFPGW_TEST_TM_SENTINEL_MIB ?? 48);
const TEST_SEED = Number(process.env.AFPGW_TEST_TM_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** The sync round after which the master dies (-1: the last one before the drop); default half-way to the drop. */
const TEST_ROUND = process.env.AFPGW_TEST_TM_SENTINEL_ROUND === undefined ? undefined : Number(process.env.AFPGW_TEST_TM_SENTINEL_ROUND);

interface Failover {
  killed: Address & { killedAt: number };
  promoted: Address;
  promotedAt: number;
  replicaAt: number;
}

describe('Sentinel failover: a Time Machine backup goes on when the Redis master dies', () => {
  let s3: S3Server | undefined;
  let sentinel: RedisSentinelSet | undefined;
  let work: string | undefined;
  const children = new Set<ChildProcess>();

  const node = (name: string): Promise<PairNode> =>
    startPairNode({
      work: work!,
      name,
      children,
      metadata: { backend: 'redis', sentinels: sentinel!.sentinels, sentinelName: sentinel!.name, keyPrefix: 'tmsentinel', waitReplicas: 1 },
      objects: s3Config(s3!, { prefix: 'tmsentinel' }),
    });

  before(async () => {
    if (!sentinelAvailable()) {
      if (process.env.CI === 'true') throw new Error('redis-server and redis-sentinel are required under CI');
      return;
    }
    work = await mkdtemp(join(tmpdir(), 'afpgw-tm-sentinel-'));
    s3 = await startS3({ bucket: 'tmsentinel' });
    sentinel = await startSentinelSet({ replicas: 1 });
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await sentinel?.stop();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('SIGKILL of the Redis master after a sync round: the backup finishes, byte-exact through both nodes', async (t) => {
    if (!sentinel) return t.skip('redis-sentinel not installed');
    const set = sentinel;
    const a = await node('a');
    const b = await node('b');
    // The CLI reaches the master directly: with `sentinels`, `user add` does its work and then
    // does not exit (ioredis's quit() leaves the failoverDetector's sentinel connections open,
    // redis/ioredis#1362), which is not what this test is about.
    const master = await set.master();
    const cliConfig = await writePairConfig(
      { work: work!, name: 'cli', metadata: { backend: 'redis', url: `redis://${master.host}:${master.port}`, keyPrefix: 'tmsentinel' }, objects: s3Config(s3!, { prefix: 'tmsentinel' }) },
      await freePort(),
    );
    const added = await runCli(['user', 'add', TM_USER.name, '--config', cliConfig], `${TM_USER.password}\n${TM_USER.password}\n`, testKnobsUnset());
    assert.equal(added.code, 0, added.stderr);

    const plan = makePlan({ bandSize: MiB, bands: 40, totalBytes: TEST_MIB * MiB, seed: TEST_SEED });
    // The master dies after a sync round half-way to the drop: band traffic meets the failover,
    // then the reconnect with its replay cache, the restart with its lock stealing and the rest
    // of the backup run on the new master.
    const rounds = syncRounds(plan);
    const early = rounds.filter((r) => r.phase === 'before-drop');
    const chosen = TEST_ROUND === undefined ? undefined : rounds[TEST_ROUND === -1 ? early.length - 1 : TEST_ROUND];
    const round = chosen ?? (early.length > 1 ? early[Math.floor((early.length - 1) / 2)]! : rounds[Math.floor(rounds.length / 2)]!);
    assert.ok(round, 'the plan syncs');
    t.diagnostic(
      `seed ${TEST_SEED} (AFPGW_TEST_TM_SEED), ${TEST_MIB} MiB, ${plan.ops.length} steps: ${JSON.stringify(plan.counts)}; ` +
        `the master dies after sync round ${round.index} of ${rounds.length} (${round.phase}, step ${round.at})`,
    );

    let failover: Promise<Failover> | undefined;
    /** What happened to Redis so far, for the diagnostics of a failed run. */
    const events: string[] = [];
    let killedEpoch: number | undefined;
    /** The band-traffic request answered after the kill that waited longest. */
    let afterKill: { what: string; seconds: number } | undefined;
    const killMaster = async (): Promise<void> => {
      const killed = await set.killMaster();
      killedEpoch = performance.timeOrigin + killed.killedAt;
      events.push(`master ${killed.host}:${killed.port} SIGKILLed`);
      const since = () => `${((performance.now() - killed.killedAt) / 1000).toFixed(2)} s after the kill`;
      // The backup goes on now, while the sentinels notice and promote the replica.
      failover = (async () => {
        const promoted = await set.waitForNewMaster(killed);
        const promotedAt = performance.now();
        events.push(`sentinels name ${promoted.host}:${promoted.port} ${since()}`);
        const replica = await set.addReplica();
        events.push(`fresh replica ${replica.port} in sync ${since()}`);
        return { killed, promoted, promotedAt, replicaAt: performance.now() };
      })();
      failover.catch((err: unknown) => events.push(`failover: ${err instanceof Error ? err.message : String(err)}`));
    };

    try {
      const { model, stats } = await timeMachineWorkload({
        host: a.host,
        port: a.port,
        plan,
        pool: newPool(),
        syncCheck: { round: round.index, check: killMaster },
        onReply: (what, sentAt, answeredAt) => {
          if (killedEpoch !== undefined && answeredAt - sentAt > (afterKill?.seconds ?? 0) * 1000) afterKill = { what, seconds: (answeredAt - sentAt) / 1000 };
        },
      });
      assert.ok(failover, 'the master was killed');
      const f = await failover;
      const since = (at: number) => `${((at - f.killed.killedAt) / 1000).toFixed(2)} s`;
      t.diagnostic(
        `SIGKILL of the master ${f.killed.host}:${f.killed.port} → the sentinels name ${f.promoted.host}:${f.promoted.port}: ${since(f.promotedAt)}; ` +
          `→ a fresh replica in sync: ${since(f.replicaAt)}`,
      );
      t.diagnostic(
        `stall: after the kill, the slowest band-traffic request waited ${afterKill ? `${afterKill.seconds.toFixed(2)} s (${afterKill.what})` : '(none answered)'}; ` +
          `the reconnect at the drop took ${stats.reconnectSeconds.toFixed(2)} s; the slowest request of the whole backup ${stats.slowest.seconds.toFixed(2)} s (${stats.slowest.what}, answered ${since(stats.slowest.answeredAt)} after the kill)`,
      );
      const mib = stats.bandBytes / MiB;
      t.diagnostic(
        `${mib.toFixed(1)} MiB of band writes in ${stats.bandSeconds.toFixed(1)} s; reconnect ${stats.reconnectSeconds.toFixed(2)} s with ${stats.replayed} requests replayed; ` +
          `restart + lock steal ${stats.restartSeconds.toFixed(2)} s; whole backup ${stats.totalSeconds.toFixed(1)} s`,
      );

      const t1 = performance.now();
      const bytes = await verifyBundle(a.host, a.port, model, { label: 'node A (the writing node)' });
      t.diagnostic(`${(bytes / MiB).toFixed(1)} MiB in ${model.files.size} files verified through node A in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
      const t2 = performance.now();
      await verifyBundle(b.host, b.port, model, { label: 'node B (S3 and Redis only)' });
      t.diagnostic(`verified again through node B in ${((performance.now() - t2) / 1000).toFixed(1)} s`);
    } catch (e) {
      await failover?.catch(() => undefined);
      t.diagnostic(`Redis: ${events.join('; ') || 'the master was not killed yet'}`);
      for (const n of [a, b]) {
        t.diagnostic(`node ${n.name.toUpperCase()}'s warnings and errors (s since the kill):`);
        for (const line of logProblems(n.output(), { max: 60, since: killedEpoch })) t.diagnostic(line);
      }
      t.diagnostic(`the nodes' whole logs: ${await keepLogs('tm-sentinel', [a, b])}`);
      throw e;
    }
  });
});
