/**
 * Every metadata-store connection over Sentinel comes back after a failover, busy or idle:
 * several RedisMetaStore instances (a gateway has one; a pair has two, one of them often idle)
 * watch the master die, and each must answer again once the sentinels have promoted the
 * replica, without a restart. Test B (tm-sentinel-failover) meets the same failure only now and
 * then, when one of its two nodes loses its connection for good; this test makes it likely.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { needSentinel, startSentinelSet } from '../helpers/redis-sentinel.js';

const STORES = 6;
const BUSY = 2;

describe('Redis Sentinel: metadata store connections after a failover', () => {
  it(`all ${STORES} stores (${BUSY} busy, ${STORES - BUSY} idle) answer again once the replica is promoted`, async (t) => {
    if (!needSentinel(t)) return;
    const set = await startSentinelSet();
    const stores: RedisMetaStore[] = [];
    try {
      for (let i = 0; i < STORES; i++) {
        stores.push(await RedisMetaStore.connect({ sentinels: set.sentinels, sentinelName: set.name, keyPrefix: 'clients', failoverWaitMs: 30_000 }));
      }
      let busy = true;
      const load = stores.slice(0, BUSY).map(async (s) => {
        while (busy) {
          await s.listNodes().catch(() => undefined);
          await new Promise((r) => setTimeout(r, 20));
        }
      });
      await new Promise((r) => setTimeout(r, 300));
      const killed = await set.killMaster();
      const promoted = await set.waitForNewMaster(killed);
      t.diagnostic(`the sentinels named ${promoted.host}:${promoted.port} ${((performance.now() - killed.killedAt) / 1000).toFixed(2)} s after the kill`);
      await set.addReplica();
      busy = false;
      await Promise.all(load);

      // Each store, given a generous deadline: it answers, or says why it does not.
      const outcomes = await Promise.all(
        stores.map(async (s, i) => {
          const deadline = Date.now() + 30_000;
          let last = '';
          for (;;) {
            try {
              await s.listNodes();
              return { store: i, busy: i < BUSY, ok: true, after: `${((performance.now() - killed.killedAt) / 1000).toFixed(2)} s` };
            } catch (err) {
              last = err instanceof Error ? err.message : String(err);
            }
            if (Date.now() > deadline) return { store: i, busy: i < BUSY, ok: false, error: last };
            await new Promise((r) => setTimeout(r, 200));
          }
        }),
      );
      for (const o of outcomes) t.diagnostic(JSON.stringify(o));
      assert.deepEqual(
        outcomes.filter((o) => !o.ok),
        [],
        'every store answers again after the failover',
      );
    } finally {
      for (const s of stores) {
        await s.close();
        // close() (QUIT) leaves ioredis's failoverDetector connections to the sentinels open
        // (redis/ioredis#1362), which would keep this process alive: disconnect() ends them.
        (s as unknown as { redis: { disconnect(): void } }).redis.disconnect();
      }
      await set.stop();
    }
  });
});
