/**
 * AdvertiserLeader on both stores: two leaders (two nodes) over one store, each with a fake
 * advertiser that records when it starts and stops. On Redis each leader has its own
 * connection, as two gateway processes would. A dead or cut-off node is simulated by a store
 * wrapper whose lease calls hang or fail.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { ADVERTISER_LEASE, AdvertiserLeader, type Advertising } from '../../src/cluster/advertiser-leader.js';
import { Gateway } from '../../src/gateway.js';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import { MetaUnavailableError, type MetaStore } from '../../src/meta/meta-store.js';
import { silentLogger, type Logger } from '../../src/ops/log.js';
import { BACKENDS, type Backend } from '../helpers/backends.js';
import { redisMetaFixture } from '../helpers/redis-meta.js';

/** Short enough to keep the logic tests quick, long enough that a loaded machine keeps its lease. */
const TTL = 3000;
const INTERVAL = 1000;
/** Generous: only a hang should reach it. */
const DEADLINE = 30_000;

const redis = redisMetaFixture('al');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, cond: () => boolean, ms = DEADLINE): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Two stores over one backing state, as two nodes would have; undefined when the test skipped. */
async function openStores(backend: Backend, t: TestContext): Promise<{ a: MetaStore; b: MetaStore; cleanup(): Promise<void> } | undefined> {
  if (backend === 'redis') {
    const fx = await redis.open(t);
    if (!fx) return undefined;
    return { a: await fx.connect(), b: await fx.connect(), cleanup: fx.cleanup };
  }
  // One LMDB store serves one node; both leaders share it, which is the same lease logic.
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-leader-'));
  const store = await EmbeddedMetaStore.open(join(dir, 'meta'));
  return {
    a: store,
    b: store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

type Mode = 'ok' | 'hang' | 'fail';

/** The lease calls of a store, which the test can make hang (a dead node) or fail (cut off). */
function controllable(store: MetaStore) {
  let mode: Mode = 'ok';
  const hung = new Set<(err: Error) => void>();
  const call = <T>(op: () => Promise<T>): Promise<T> => {
    if (mode === 'ok') return op();
    if (mode === 'fail') return Promise.reject(new MetaUnavailableError('test: the store is unreachable'));
    return new Promise<T>((_, reject) => hung.add(reject));
  };
  return {
    leases: {
      claimLease: (name: string, holder: string, ttlMs: number) => call(() => store.claimLease(name, holder, ttlMs)),
      releaseLease: (name: string, holder: string) => call(() => store.releaseLease(name, holder)),
    },
    set(m: Mode): void {
      mode = m;
      if (m !== 'hang') {
        for (const reject of hung) reject(new MetaUnavailableError('test: the hung call ends'));
        hung.clear();
      }
    },
  };
}

interface AdvEvent {
  node: string;
  what: 'start' | 'stop';
  at: number;
}

/** Fake advertisers that record when each node starts and stops, and whether two ever overlapped. */
class Recorder {
  readonly events: AdvEvent[] = [];
  readonly live = new Set<string>();
  overlapped = false;

  advertise(node: string): () => Advertising {
    return () => ({
      start: async () => {
        this.events.push({ node, what: 'start', at: performance.now() });
        if (this.live.size > 0) this.overlapped = true;
        this.live.add(node);
      },
      stop: async () => {
        this.events.push({ node, what: 'stop', at: performance.now() });
        this.live.delete(node);
      },
    });
  }

  at(node: string, what: 'start' | 'stop'): number {
    const e = this.events.findLast((x) => x.node === node && x.what === what);
    assert.ok(e, `${node} ${what} recorded`);
    return e.at;
  }
}

/** A logger whose lines the test can read. */
function capturingLogger(): { log: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, lines };
}

for (const backend of BACKENDS) {
  describe(`advertiser leader (${backend} store)`, () => {
    /** Runs `body` with two stores and stops every leader it made, whatever happens. */
    const withPair =
      (body: (ctx: { a: MetaStore; b: MetaStore; rec: Recorder; leader: (o: LeaderOpts) => AdvertiserLeader }, t: TestContext) => Promise<void>) =>
      async (t: TestContext) => {
        const stores = await openStores(backend, t);
        if (!stores) return;
        const rec = new Recorder();
        const leaders: AdvertiserLeader[] = [];
        const leader = (o: LeaderOpts) => {
          const l = new AdvertiserLeader({
            leases: o.leases,
            holder: o.node,
            ttlMs: o.ttlMs ?? TTL,
            intervalMs: o.intervalMs ?? INTERVAL,
            advertise: rec.advertise(o.node),
            log: o.log ?? silentLogger(),
          });
          leaders.push(l);
          return l;
        };
        try {
          await body({ a: stores.a, b: stores.b, rec, leader }, t);
        } finally {
          for (const l of leaders) await l.stop();
          await stores.cleanup();
        }
      };

    test('of two leaders exactly one advertises, and keeps advertising while it renews', withPair(async ({ a, b, rec, leader }) => {
      const la = leader({ leases: a, node: 'node-a' });
      const lb = leader({ leases: b, node: 'node-b' });
      la.start();
      lb.start();
      await waitFor('one leader to advertise', () => rec.live.size === 1);
      const first = [...rec.live][0]!;
      await sleep(3 * INTERVAL); // several claims by each
      assert.deepEqual([...rec.live], [first], 'the same single node advertises');
      assert.deepEqual(rec.events.map((e) => `${e.node} ${e.what}`), [`${first} start`], 'nobody else ever started');
      assert.equal(rec.overlapped, false);
      assert.equal(await a.leaseHolder(ADVERTISER_LEASE), first);
      assert.equal((first === 'node-a' ? la : lb).advertising, true);
      assert.equal((first === 'node-a' ? lb : la).advertising, false);
    }));

    test('stop() says goodbye and releases the lease; the other leader takes over at its next claim', withPair(async ({ a, b, rec, leader }, t) => {
      const la = leader({ leases: a, node: 'node-a' });
      la.start();
      await waitFor('node-a to advertise', () => la.advertising);
      const lb = leader({ leases: b, node: 'node-b' });
      lb.start();
      await sleep(1.5 * INTERVAL);
      assert.equal(lb.advertising, false, 'refused while node-a holds the lease');
      const stopping = performance.now();
      await la.stop();
      const stopped = performance.now();
      assert.equal(rec.live.has('node-a'), false, 'node-a stopped advertising before stop() returned');
      await waitFor('node-b to take over', () => lb.advertising);
      const took = rec.at('node-b', 'start') - stopped;
      assert.ok(rec.at('node-a', 'stop') <= rec.at('node-b', 'start'));
      assert.equal(rec.overlapped, false);
      assert.equal(await b.leaseHolder(ADVERTISER_LEASE), 'node-b');
      t.diagnostic(`${backend}: graceful handover ${Math.round(took)} ms after stop() returned (stop() took ${Math.round(stopped - stopping)} ms; claims every ${INTERVAL} ms)`);
    }));

    test('a holder that dies (stops renewing, never releases) is replaced once its lease lapses (production timings)', withPair(async ({ a, b, rec, leader }, t) => {
      const ttlMs = Gateway.ADVERTISER_LEASE_MS;
      const intervalMs = ttlMs / 3; // the gateway's default
      const ctl = controllable(a);
      const la = leader({ leases: ctl.leases, node: 'node-a', ttlMs, intervalMs });
      la.start();
      await waitFor('node-a to advertise', () => la.advertising);
      const lb = leader({ leases: b, node: 'node-b', ttlMs, intervalMs });
      lb.start();
      // Die at some point between two of node-a's renewals, as a real death would.
      await sleep(ttlMs / 2 + Math.random() * intervalMs);
      assert.equal(lb.advertising, false, 'refused while node-a renews');
      ctl.set('hang'); // node-a's claims and releases never get an answer again
      const died = performance.now();
      await waitFor('node-b to take over', () => lb.advertising);
      const took = rec.at('node-b', 'start') - died;
      // A node that is merely cut off gives Bonjour up by itself once its lease may have lapsed,
      // before the other node can have taken the lease.
      assert.ok(rec.at('node-a', 'stop') <= rec.at('node-b', 'start'), 'node-a stopped advertising before node-b started');
      assert.equal(rec.overlapped, false);
      assert.equal(await b.leaseHolder(ADVERTISER_LEASE), 'node-b');
      // Back from the dead, node-a's claims are refused and it stays silent.
      ctl.set('ok');
      await sleep(2 * intervalMs);
      assert.equal(la.advertising, false);
      assert.equal(await b.leaseHolder(ADVERTISER_LEASE), 'node-b');
      t.diagnostic(
        `${backend}: handover after a death ${Math.round(took)} ms (lease ${ttlMs} ms, claims every ${intervalMs} ms: ` +
          `between ${ttlMs - intervalMs} and ${ttlMs + intervalMs} ms by design); node-a gave Bonjour up ${Math.round(rec.at('node-a', 'stop') - died)} ms after its claims stopped being answered`,
      );
    }));

    test('a refused renewal (the lease was taken) stops advertising; it advertises again once the lease is free', withPair(async ({ a, b, rec, leader }) => {
      const la = leader({ leases: a, node: 'node-a' });
      la.start();
      await waitFor('node-a to advertise', () => la.advertising);
      // Another holder takes the lease between two of node-a's claims.
      while (!(await b.claimLease(ADVERTISER_LEASE, 'intruder', 60_000))) await b.releaseLease(ADVERTISER_LEASE, 'node-a');
      await waitFor('node-a to stop advertising', () => !la.advertising);
      assert.equal(rec.live.size, 0);
      await sleep(1.5 * INTERVAL);
      assert.equal(la.advertising, false, 'still refused while the intruder holds it');
      await b.releaseLease(ADVERTISER_LEASE, 'intruder');
      await waitFor('node-a to advertise again', () => la.advertising);
      assert.deepEqual(rec.events.map((e) => e.what), ['start', 'stop', 'start']);
      assert.equal(await a.leaseHolder(ADVERTISER_LEASE), 'node-a');
    }));

    test('an unreachable store: the holder gives Bonjour up after a lease term, logs it once, and advertises again when the store answers', withPair(async ({ a, rec, leader }, t) => {
      const ctl = controllable(a);
      const { log, lines } = capturingLogger();
      const la = leader({ leases: ctl.leases, node: 'node-a', log });
      la.start();
      await waitFor('node-a to advertise', () => la.advertising);
      ctl.set('fail');
      const cut = performance.now();
      await waitFor('node-a to give Bonjour up', () => !la.advertising);
      const gaveUp = rec.at('node-a', 'stop') - cut;
      await sleep(2 * INTERVAL); // more failing claims
      assert.equal(lines.filter((l) => l.msg.startsWith('cannot renew the advertiser lease')).length, 1, 'an outage is logged once');
      assert.ok(lines.some((l) => l.level === 40 && l.msg.startsWith('not holding the advertiser lease')), 'losing it is logged as a warning');
      ctl.set('ok');
      await waitFor('node-a to advertise again', () => la.advertising);
      assert.ok(lines.some((l) => l.msg.startsWith('advertiser lease: the metadata store answers again')));
      assert.deepEqual(rec.events.map((e) => e.what), ['start', 'stop', 'start']);
      t.diagnostic(`${backend}: gave Bonjour up ${Math.round(gaveUp)} ms after the store became unreachable (lease ${TTL} ms)`);
    }));
  });
}

interface LeaderOpts {
  leases: Pick<MetaStore, 'claimLease' | 'releaseLease'>;
  node: string;
  ttlMs?: number;
  intervalMs?: number;
  log?: Logger;
}
