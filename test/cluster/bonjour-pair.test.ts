/**
 * Two gateways in one process over one redis-server, both with Bonjour on the loopback
 * interface under the same server and host name (as the two nodes of a pair are configured):
 * only the holder of the advertiser lease answers, and when it stops the other node answers
 * within seconds. The querier is multicast-dns as a plain mDNS client, as in
 * test/discovery/advertiser.test.ts. The gateway advertises on the mDNS port 5353 (the config
 * has no other), but only on 127.0.0.1: nothing leaves the machine, and the names carry a
 * random tag so that another run or responder on the machine cannot be mistaken for ours.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import makeMdns from 'multicast-dns';
import type { Answer } from 'dns-packet';
import { MDNS_PORT } from '../../src/discovery/advertiser.js';
import { Gateway } from '../../src/gateway.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';

const AFP = '_afpovertcp._tcp.local';
/** Generous: only a hang should reach it. */
const DEADLINE = 30_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Querier {
  /** Every answer and additional record received since `from` (an index into the log). */
  since(from: number): Answer[];
  readonly received: number;
  query(): void;
  close(): Promise<void>;
}

async function querier(): Promise<Querier> {
  const mdns = makeMdns({ port: MDNS_PORT, interface: '127.0.0.1', bind: '0.0.0.0', reuseAddr: true, loopback: true });
  await new Promise<void>((resolve, reject) => {
    mdns.once('ready', resolve);
    mdns.once('error', reject);
  });
  const log: Answer[][] = [];
  mdns.on('response', (r: makeMdns.ResponsePacket) => log.push([...(r.answers ?? []), ...(r.additionals ?? [])]));
  return {
    since: (from) => log.slice(from).flat(),
    get received() {
      return log.length;
    },
    query: () => mdns.query({ questions: [{ name: AFP, type: 'PTR' }] }),
    close: () => new Promise<void>((resolve) => mdns.destroy(() => resolve())),
  };
}

const ttl = (a: Answer): number | undefined => (a as { ttl?: number }).ttl;

/** The ports of the live (not goodbye) SRV records of our instance among `answers`. */
function srvPorts(answers: Answer[], instance: string): number[] {
  const name = `${instance}.${AFP}`.toLowerCase();
  const ports = answers.filter((a) => a.type === 'SRV' && a.name.toLowerCase() === name && ttl(a) !== 0).map((a) => (a as { data: { port: number } }).data.port);
  return [...new Set(ports)].sort((x, y) => x - y);
}

/** Asks every half second until an answer satisfies `done`; returns how long that took. */
async function askUntil(q: Querier, done: (answers: Answer[]) => boolean): Promise<number> {
  const started = performance.now();
  const from = q.received;
  while (!done(q.since(from))) {
    if (performance.now() - started > DEADLINE) throw new Error('no satisfying mDNS answer in time');
    q.query();
    for (let i = 0; i < 25 && !done(q.since(from)); i++) await sleep(20);
  }
  return performance.now() - started;
}

describe('Bonjour from two gateways over one Redis', () => {
  let redis: RedisServer | undefined;
  let q: Querier | undefined;
  let nodeA: TestGateway | undefined;
  let nodeB: TestGateway | undefined;

  before(async () => {
    if (!redisAvailable()) {
      if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
      return;
    }
    redis = await startRedis();
    q = await querier();
  });

  after(async () => {
    await nodeA?.stop();
    await nodeB?.stop();
    await q?.close();
    await redis?.stop();
  });

  test('only the advertiser lease holder answers; after it stops, the other node answers within seconds', async (t) => {
    if (!redis || !q) return t.skip('redis-server not installed');
    const tag = randomBytes(3).toString('hex');
    const instance = `Pair ${tag}`;
    const config = {
      serverName: instance,
      metadata: { backend: 'redis', url: redis.url, keyPrefix: `bonjour-${tag}` },
      volumes: [{ name: 'TimeMachine', timeMachine: true }],
      bonjour: { enabled: true, interfaces: ['127.0.0.1'], hostName: `afpgw-pair-${tag}.local` },
    };
    nodeA = await startTestGateway({ config });
    await askUntil(q, (all) => srvPorts(all, instance).length > 0);
    nodeB = await startTestGateway({ config });
    const a = nodeA;
    const b = nodeB;
    assert.notEqual(a.port, b.port);
    // Node B has claimed (and been refused) a few times by now.
    await sleep(Gateway.ADVERTISER_LEASE_MS / 2);
    assert.equal(b.gw.advertiserLeader?.advertising, false);
    assert.equal(b.gw.bonjour, null);
    assert.equal(a.gw.advertiserLeader?.advertising, true);

    // Ask, and gather every answer for a while: all of them name node A's port.
    const from = q.received;
    q.query();
    await sleep(1500);
    q.query();
    await sleep(1500);
    assert.deepEqual(srvPorts(q.since(from), instance), [a.port], 'only node A answers');

    const stopping = performance.now();
    await a.stop();
    nodeA = undefined;
    const stopped = performance.now();
    const took = await askUntil(q, (all) => srvPorts(all, instance).includes(b.port));
    assert.equal(b.gw.advertiserLeader?.advertising, true);

    const after = q.received;
    q.query();
    await sleep(1500);
    assert.deepEqual(srvPorts(q.since(after), instance), [b.port], 'only node B answers now');
    t.diagnostic(
      `node B answered ${Math.round(took)} ms after node A's stop() returned (stop() took ${Math.round(stopped - stopping)} ms; ` +
        `lease ${Gateway.ADVERTISER_LEASE_MS} ms, claims every ${Gateway.ADVERTISER_LEASE_MS / 3} ms, then ~1 s of probing)`,
    );
  });
});
