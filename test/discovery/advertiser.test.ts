/**
 * The advertiser against an independent querier (multicast-dns as a plain mDNS client) over
 * real multicast on the loopback interface. Linux delivers multicast on lo once a socket joins
 * 224.0.0.251 on 127.0.0.1 and sends with IP_MULTICAST_IF = 127.0.0.1, even though lo lacks
 * the MULTICAST flag, so no network namespace or root is needed. A random UDP port instead of
 * 5353 keeps the test away from any real responder on the machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import makeMdns from 'multicast-dns';
import type { Answer } from 'dns-packet';
import { BonjourAdvertiser } from '../../src/discovery/advertiser.js';
import { silentLogger, createLogger } from '../../src/ops/log.js';

const log = process.env.AFPGW_TEST_LOG ? createLogger('debug') : silentLogger();

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

interface Querier {
  mdns: makeMdns.MulticastDNS;
  responses: Answer[][];
  /** Sends a query and collects the answers (answers + additionals) that satisfy `until`. */
  ask(name: string, type: string, until: (all: Answer[]) => boolean, ms?: number): Promise<Answer[]>;
  close(): Promise<void>;
}

async function querier(port: number): Promise<Querier> {
  const mdns = makeMdns({ port, interface: '127.0.0.1', bind: '0.0.0.0', reuseAddr: true, loopback: true });
  await new Promise<void>((resolve, reject) => {
    mdns.once('ready', resolve);
    mdns.once('error', reject);
  });
  const responses: Answer[][] = [];
  const listeners = new Set<() => void>();
  mdns.on('response', (r: makeMdns.ResponsePacket) => {
    responses.push([...(r.answers ?? []), ...(r.additionals ?? [])]);
    for (const l of listeners) l();
  });
  return {
    mdns,
    responses,
    ask(name, type, until, ms = 3000) {
      return new Promise((resolve, reject) => {
        const start = responses.length;
        const check = (): void => {
          const all = responses.slice(start).flat();
          if (until(all)) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(all);
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no satisfying answer to ${name} ${type} within ${ms} ms`));
        }, ms);
        listeners.add(check);
        mdns.query({ questions: [{ name, type: type as 'PTR' }] });
      });
    },
    close: () => new Promise<void>((resolve) => mdns.destroy(() => resolve())),
  };
}

const data = (a: Answer): unknown => (a as { data: unknown }).data;
const ttl = (a: Answer): number | undefined => (a as { ttl?: number }).ttl;
const txt = (a: Answer): string[] => (data(a) as Buffer[]).map((b) => b.toString('utf8'));
const find = (all: Answer[], name: string, type: string): Answer | undefined =>
  all.find((a) => a.name.toLowerCase() === name.toLowerCase() && a.type === type && ttl(a) !== 0);

function advertiser(mdnsPort: number, over: Partial<ConstructorParameters<typeof BonjourAdvertiser>[0]> = {}): BonjourAdvertiser {
  return new BonjourAdvertiser({
    serverName: 'Büro, Backup',
    hostName: 'afpgw-test.local',
    port: 10548,
    timeMachineVolumes: [{ name: 'TM,1' }, { name: 'Zwei=2 \\ ü' }],
    model: 'TimeCapsule8,119',
    interfaces: ['127.0.0.1'],
    log,
    mdnsPort,
    probeIntervalMs: 100,
    announceIntervalMs: 300,
    ...over,
  });
}

test('announces, answers browse/resolve queries and says goodbye', async () => {
  const port = await freeUdpPort();
  const q = await querier(port);
  const adv = advertiser(port);
  try {
    await adv.start();
    assert.ok(adv.announced, 'advertiser announced');
    assert.deepEqual(adv.activeInterfaces.map((i) => i.address), ['127.0.0.1']);
    // The announcement itself carries everything (unsolicited response).
    for (let i = 0; i < 100 && !q.responses.flat().some((a) => a.name === '_adisk._tcp.local' && a.type === 'PTR'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(q.responses.flat().some((a) => a.name === '_adisk._tcp.local' && a.type === 'PTR'), 'announcement received');

    const instance = 'Büro, Backup';
    const adisk = `${instance}._adisk._tcp.local`;
    const browse = await q.ask('_adisk._tcp.local', 'PTR', (all) => find(all, '_adisk._tcp.local', 'PTR') !== undefined);
    assert.equal(data(find(browse, '_adisk._tcp.local', 'PTR')!), adisk);

    const srvTxt = await q.ask(adisk, 'ANY', (all) => !!find(all, adisk, 'SRV') && !!find(all, adisk, 'TXT'));
    assert.deepEqual(txt(find(srvTxt, adisk, 'TXT')!), ['sys=waMa=0,adVF=0x100', 'dk0=adVN=TM\\,1,adVF=0x81', 'dk1=adVN=Zwei=2 \\\\ ü,adVF=0x81']);
    assert.equal((data(find(srvTxt, adisk, 'SRV')!) as { port: number }).port, 9);
    assert.equal((find(srvTxt, adisk, 'TXT') as { flush?: boolean }).flush, true);

    const afp = `${instance}._afpovertcp._tcp.local`;
    const afpBrowse = await q.ask('_afpovertcp._tcp.local', 'PTR', (all) => !!find(all, afp, 'SRV') && !!find(all, 'afpgw-test.local', 'A'));
    assert.equal(data(find(afpBrowse, '_afpovertcp._tcp.local', 'PTR')!), afp);
    assert.deepEqual(data(find(afpBrowse, afp, 'SRV')!), { priority: 0, weight: 0, port: 10548, target: 'afpgw-test.local' });
    assert.equal(data(find(afpBrowse, 'afpgw-test.local', 'A')!), '127.0.0.1');

    const dev = `${instance}._device-info._tcp.local`;
    const devInfo = await q.ask(dev, 'TXT', (all) => !!find(all, dev, 'TXT'));
    assert.deepEqual(txt(find(devInfo, dev, 'TXT')!), ['model=TimeCapsule8,119']);

    const services = await q.ask('_services._dns-sd._udp.local', 'PTR', (all) => all.filter((a) => a.name === '_services._dns-sd._udp.local').length >= 3);
    assert.deepEqual(
      services.filter((a) => a.name === '_services._dns-sd._udp.local').map(data).sort(),
      ['_adisk._tcp.local', '_afpovertcp._tcp.local', '_device-info._tcp.local'],
    );

    const host = await q.ask('afpgw-test.local', 'A', (all) => !!find(all, 'afpgw-test.local', 'A'));
    assert.equal(data(find(host, 'afpgw-test.local', 'A')!), '127.0.0.1');

    // Goodbyes: every PTR again with TTL 0.
    const before = q.responses.length;
    await adv.stop();
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && !q.responses.slice(before).flat().some((a) => a.type === 'PTR' && ttl(a) === 0)) await new Promise((r) => setTimeout(r, 20));
    const bye = q.responses.slice(before).flat();
    for (const t of ['_afpovertcp._tcp.local', '_adisk._tcp.local', '_device-info._tcp.local']) {
      const p = bye.find((a) => a.name === t && a.type === 'PTR');
      assert.ok(p, `goodbye for ${t}`);
      assert.equal(ttl(p), 0);
    }
    assert.ok(bye.every((a) => ttl(a) === 0));
  } finally {
    await adv.stop();
    await q.close();
  }
});

test('legacy unicast queries (source port not the mDNS port) get a direct answer with the id', async () => {
  const port = await freeUdpPort();
  const adv = advertiser(port, { serverName: 'Legacy' });
  // A one-shot resolver: its own ephemeral port, sending out of the loopback interface.
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '0.0.0.0', r));
  socket.setMulticastInterface('127.0.0.1');
  const client = makeMdns({ socket, port: 0, multicast: false });
  try {
    await adv.start();
    const answer = await new Promise<makeMdns.ResponsePacket>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no unicast answer')), 3000);
      client.on('response', (r: makeMdns.ResponsePacket) => {
        if (r.id === 4242) {
          clearTimeout(t);
          resolve(r);
        }
      });
      client.query({ id: 4242, questions: [{ name: '_afpovertcp._tcp.local', type: 'PTR' }] }, { port, address: '224.0.0.251' });
    });
    assert.equal(answer.questions[0]?.name, '_afpovertcp._tcp.local');
    const ptr = answer.answers.find((a) => a.type === 'PTR')!;
    assert.equal(data(ptr), 'Legacy._afpovertcp._tcp.local');
    assert.ok((ttl(ptr) ?? 99) <= 10);
  } finally {
    await adv.stop();
    await new Promise<void>((r) => client.destroy(() => r()));
  }
});

test('a name already in use is detected while probing and replaced by "Name (2)"', async () => {
  const port = await freeUdpPort();
  const first = advertiser(port, { serverName: 'Clash' });
  const second = advertiser(port, { serverName: 'Clash', port: 20548 });
  const q = await querier(port);
  try {
    await first.start();
    await second.start();
    assert.equal(first.instanceName, 'Clash');
    assert.equal(second.instanceName, 'Clash (2)');
    assert.ok(second.announced);
    const all = await q.ask('_afpovertcp._tcp.local', 'PTR', (a) => a.filter((x) => x.type === 'PTR' && x.name === '_afpovertcp._tcp.local').length >= 2);
    assert.deepEqual(
      [...new Set(all.filter((x) => x.type === 'PTR' && x.name === '_afpovertcp._tcp.local').map(data))].sort(),
      ['Clash (2)._afpovertcp._tcp.local', 'Clash._afpovertcp._tcp.local'],
    );
  } finally {
    await second.stop();
    await first.stop();
    await q.close();
  }
});

test('an interface address the machine does not have: logged, start resolves, nothing sent', async () => {
  const adv = advertiser(await freeUdpPort(), { interfaces: ['203.0.113.77'] });
  await adv.start();
  assert.equal(adv.announced, false);
  assert.deepEqual(adv.activeInterfaces, []);
  await adv.stop();
});

test('stop() during probing cancels quietly', async () => {
  const adv = advertiser(await freeUdpPort(), { probeIntervalMs: 1000 });
  const started = adv.start();
  await new Promise((r) => setTimeout(r, 50));
  await adv.stop();
  await started;
  assert.equal(adv.announced, false);
});
