/**
 * Bonjour (mDNS / DNS-SD) advertiser: probes for its names, announces the records of
 * records.ts, answers queries for them and says goodbye on stop (RFC 6762, RFC 6763).
 *
 * One multicast-dns socket per advertised interface, each bound to 0.0.0.0:5353 (multicast
 * only reaches sockets bound to the wildcard address) and joined to 224.0.0.251 on that
 * interface's IPv4 address. Every socket sees group traffic from every joined interface, so
 * a link answers only packets whose source is on its own subnet, with its own addresses.
 * IPv6 addresses are advertised as AAAA records; the transport is IPv4 only.
 *
 * Nothing here may take the gateway down: socket errors (no multicast route, port taken) are
 * logged, the link is dropped, and AFP keeps being served.
 */
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import type { RemoteInfo } from 'node:dgram';
import type { Answer, Question } from 'dns-packet';
import makeMdns from 'multicast-dns';
import type { Logger } from '../ops/log.js';
import { chooseInterfaces, type MdnsInterface } from './interfaces.js';
import {
  AFP_SERVICE,
  DEFAULT_HOST_TTL,
  DEFAULT_OTHER_TTL,
  SERVICES_ENUMERATION,
  allRecords,
  buildServiceRecords,
  instanceNames,
  renamedHost,
  renamedInstance,
  type ServiceRecords,
  type TimeMachineVolume,
} from './records.js';

export const MDNS_PORT = 5353;
const MAX_RENAMES = 32;
/** RFC 6762 §6.7: legacy unicast answers carry a TTL of at most 10 s. */
const LEGACY_TTL = 10;
/** dns-packet encodes the QTYPE ANY (255) though its types leave it out. */
const ANY = 'ANY' as unknown as Question['type'];

export interface BonjourAdvertiserOptions {
  /** The server name; becomes the service instance name of all three services. */
  serverName: string;
  /** e.g. `office.local`. */
  hostName: string;
  /** The port the AFP server actually listens on. */
  port: number;
  timeMachineVolumes: readonly TimeMachineVolume[];
  model: string;
  /** IP addresses of the interfaces to advertise on; null or empty = every non-internal interface. */
  interfaces: readonly string[] | null;
  log: Logger;
  /** UDP port of the mDNS group; only tests change it. */
  mdnsPort?: number;
  hostTtl?: number;
  otherTtl?: number;
  probeIntervalMs?: number;
  announceIntervalMs?: number;
}

interface Link {
  name: string;
  ipv4: string;
  addresses: string[];
  nets: { address: string; netmask: string }[];
  mdns: makeMdns.MulticastDNS;
  records: ServiceRecords;
  alive: boolean;
}

type State = 'idle' | 'probing' | 'announced' | 'stopped';

const lower = (s: string): string => s.toLowerCase();

function recordKey(r: Answer): string {
  const data = (r as { data?: unknown }).data;
  const norm = (d: unknown): unknown => {
    if (Buffer.isBuffer(d)) return d.toString('hex');
    if (Array.isArray(d)) return d.map(norm);
    if (d && typeof d === 'object') {
      const o = d as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).sort().map((k) => [k, typeof o[k] === 'string' ? lower(o[k] as string) : norm(o[k])]));
    }
    return typeof d === 'string' ? lower(d) : d;
  };
  return `${lower(r.name)}|${r.type}|${JSON.stringify(norm(data))}`;
}

function ownAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((infos) => (infos ?? []).map((i) => i.address)));
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, p) => (n << 8) + Number(p), 0) >>> 0;
}

function onNet(addr: string, net: { address: string; netmask: string }): boolean {
  if (!isIPv4(addr) || !isIPv4(net.address)) return false;
  const m = ipv4ToInt(net.netmask);
  return (ipv4ToInt(addr) & m) >>> 0 === (ipv4ToInt(net.address) & m) >>> 0;
}

export class BonjourAdvertiser {
  private links: Link[] = [];
  private state: State = 'idle';
  private instanceAttempt = 1;
  private hostAttempt = 1;
  private conflict: 'instance' | 'host' | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly mdnsPort: number;
  private running: Promise<void> | null = null;
  private readonly wake = new Set<() => void>();

  constructor(private readonly opts: BonjourAdvertiserOptions) {
    this.mdnsPort = opts.mdnsPort ?? MDNS_PORT;
  }

  /** The instance name in use (after any conflict renames). */
  get instanceName(): string {
    return renamedInstance(this.opts.serverName, this.instanceAttempt);
  }

  get hostName(): string {
    return renamedHost(this.opts.hostName, this.hostAttempt);
  }

  get announced(): boolean {
    return this.state === 'announced';
  }

  /** The interfaces in use: name and the IPv4 address the socket joined the group on. */
  get activeInterfaces(): { name: string; address: string }[] {
    return this.links.filter((l) => l.alive).map((l) => ({ name: l.name, address: l.ipv4 }));
  }

  /**
   * Opens the sockets, probes and sends the first announcement. Never rejects: failures are
   * logged and leave the advertiser silent.
   */
  start(): Promise<void> {
    this.running ??= this.run().catch((err: unknown) => {
      this.opts.log.warn({ err }, 'Bonjour advertising failed; the gateway keeps serving AFP but Macs will not find it by browsing');
    });
    return this.running;
  }

  private async run(): Promise<void> {
    if (this.state !== 'idle') return;
    const targets = this.resolveInterfaces();
    if (targets.length === 0) {
      this.opts.log.warn({ interfaces: this.opts.interfaces }, 'Bonjour: no usable IPv4 interface to advertise on');
      return;
    }
    await Promise.all(targets.map((t) => this.openLink(t)));
    if (this.isStopped() || !this.links.some((l) => l.alive)) return;
    this.state = 'probing';
    // RFC 6762 §8.1: a random 0-250 ms delay before the first probe.
    await this.delay(Math.floor(Math.random() * 250));
    for (let round = 0; round < MAX_RENAMES; round++) {
      if (this.isStopped()) return;
      this.rebuildRecords();
      if (await this.probe()) break;
      if (this.isStopped()) return;
      const old = this.conflict === 'host' ? this.hostName : this.instanceName;
      if (this.conflict === 'host') this.hostAttempt++;
      else this.instanceAttempt++;
      this.opts.log.warn({ old, new: this.conflict === 'host' ? this.hostName : this.instanceName }, `Bonjour name ${old} is taken on the network; trying another`);
      this.conflict = null;
      if (round === MAX_RENAMES - 1) {
        this.opts.log.warn('Bonjour: gave up finding a free name');
        return;
      }
    }
    if (this.isStopped()) return;
    this.state = 'announced';
    this.announce();
    this.opts.log.info(
      { instance: this.instanceName, host: this.hostName, interfaces: this.activeInterfaces, port: this.opts.port },
      `Bonjour: advertising ${this.instanceName} (${AFP_SERVICE}${this.opts.timeMachineVolumes.length > 0 ? ', _adisk._tcp.local' : ''})`,
    );
    // The second announcement, a second later (§8.3).
    void this.delay(this.opts.announceIntervalMs ?? 1000).then(() => {
      if (this.state === 'announced') this.announce();
    });
  }

  private isStopped(): boolean {
    return this.state === 'stopped';
  }

  private resolveInterfaces(): MdnsInterface[] {
    const { chosen, skipped } = chooseInterfaces(this.opts.interfaces);
    for (const s of skipped) {
      if (s.kind === 'no-ipv4') this.opts.log.warn({ interface: s.name }, `Bonjour: interface ${s.name} has no IPv4 address; not advertising on it (mDNS runs over IPv4 here)`);
      else this.opts.log.warn({ address: s.address }, `Bonjour: no interface has the address ${s.address}; not advertising on it`);
    }
    return chosen;
  }

  private openLink(t: MdnsInterface): Promise<void> {
    return new Promise((resolve) => {
      let mdns: makeMdns.MulticastDNS;
      try {
        mdns = makeMdns({ port: this.mdnsPort, interface: t.ipv4, bind: '0.0.0.0', reuseAddr: true, loopback: true, ttl: 255 });
      } catch (err) {
        this.opts.log.warn({ err, interface: t.name }, `Bonjour: cannot open an mDNS socket on ${t.name}`);
        resolve();
        return;
      }
      const link: Link = {
        name: t.name,
        ipv4: t.ipv4,
        addresses: t.infos.map((i) => i.address),
        nets: t.infos.filter((i) => i.family === 'IPv4').map((i) => ({ address: i.address, netmask: i.netmask })),
        mdns,
        records: { enumeration: [], pointers: [], instances: [], host: [] },
        alive: false,
      };
      if (link.nets.length === 0) link.nets.push({ address: t.ipv4, netmask: '255.255.255.255' });
      this.links.push(link);
      const settle = setTimeout(() => {
        this.opts.log.warn({ interface: t.name }, `Bonjour: mDNS socket on ${t.name} did not become ready`);
        resolve();
      }, 2000);
      settle.unref();
      mdns.on('error', (err: Error) => {
        link.alive = false;
        this.opts.log.warn({ err, interface: t.name }, `Bonjour: mDNS socket error on ${t.name}; not advertising there`);
        clearTimeout(settle);
        resolve();
      });
      mdns.on('warning', (err: Error) => {
        // e.g. EADDRNOTAVAIL / ENODEV from addMembership when the interface has no multicast route.
        this.opts.log.warn({ err, interface: t.name }, `Bonjour: mDNS problem on ${t.name}`);
      });
      mdns.on('ready', () => {
        link.alive = true;
        clearTimeout(settle);
        resolve();
      });
      mdns.on('query', (q: makeMdns.QueryPacket, rinfo: RemoteInfo) => {
        try {
          this.onQuery(link, q, rinfo);
        } catch (err) {
          this.opts.log.debug({ err }, 'Bonjour: could not answer a query');
        }
      });
      mdns.on('response', (r: makeMdns.ResponsePacket, rinfo: RemoteInfo) => {
        try {
          this.onResponse(link, r, rinfo);
        } catch (err) {
          this.opts.log.debug({ err }, 'Bonjour: could not inspect a response');
        }
      });
    });
  }

  private rebuildRecords(): void {
    for (const l of this.links)
      l.records = buildServiceRecords({
        instance: this.instanceName,
        hostName: this.hostName,
        port: this.opts.port,
        addresses: l.addresses,
        timeMachineVolumes: this.opts.timeMachineVolumes,
        model: this.opts.model,
        hostTtl: this.opts.hostTtl ?? DEFAULT_HOST_TTL,
        otherTtl: this.opts.otherTtl ?? DEFAULT_OTHER_TTL,
      });
  }

  /** Three probes 250 ms apart (§8.1); false when someone answered for one of our names. */
  private async probe(): Promise<boolean> {
    this.conflict = null;
    for (let i = 0; i < 3; i++) {
      for (const l of this.links.filter((x) => x.alive)) {
        const names = [...instanceNames(l.records), this.hostName];
        const questions = names.map((name) => ({ name, type: ANY, class: 'IN' }) as Question);
        this.send(l, () => l.mdns.query({ questions, authorities: [...l.records.instances, ...l.records.host] }));
      }
      await this.delay(this.opts.probeIntervalMs ?? 250);
      if (this.conflict || this.isStopped()) return false;
    }
    return true;
  }

  /** A timer that a conflict or stop() ends early. */
  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.wake.delete(done);
        clearTimeout(t);
        this.timers.delete(t);
        resolve();
      };
      const t = setTimeout(done, ms);
      t.unref();
      this.timers.add(t);
      this.wake.add(done);
    });
  }

  private announce(): void {
    for (const l of this.links.filter((x) => x.alive)) {
      const r = l.records;
      this.send(l, () => l.mdns.respond({ answers: [...r.pointers, ...r.instances, ...r.host, ...r.enumeration] }));
    }
  }

  private send(l: Link, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.warn({ err, interface: l.name }, 'Bonjour: send failed');
    }
  }

  private fromLink(l: Link, address: string): boolean {
    return l.addresses.includes(address) || l.nets.some((n) => onNet(address, n));
  }

  private onResponse(l: Link, r: makeMdns.ResponsePacket, rinfo: RemoteInfo): void {
    if (this.state !== 'probing' && this.state !== 'announced') return;
    if (!this.fromLink(l, rinfo.address)) return;
    const ours = new Set([...l.records.instances, ...l.records.host].map(recordKey));
    const instances = new Set(instanceNames(l.records).map(lower));
    const host = lower(this.hostName);
    for (const a of [...(r.answers ?? []), ...(r.additionals ?? [])]) {
      const name = lower(a.name);
      const isInstance = instances.has(name);
      if (!isInstance && name !== host) continue;
      if ((a as { ttl?: number }).ttl === 0) continue; // someone's goodbye
      // Identical data is another responder (or our own echo) agreeing, not a conflict (§9).
      if (ours.has(recordKey(a))) continue;
      // An address of this same machine (e.g. published by avahi for another interface) is not a conflict either.
      if (name === host && (a.type === 'A' || a.type === 'AAAA') && ownAddresses().has(String((a as { data: unknown }).data))) continue;
      if (name === host && a.type !== 'A' && a.type !== 'AAAA') continue;
      if (isInstance && a.type !== 'SRV' && a.type !== 'TXT') continue;
      if (this.state === 'probing') {
        this.conflict = isInstance ? 'instance' : 'host';
        for (const w of [...this.wake]) w();
        return;
      }
      this.opts.log.warn({ name: a.name, type: a.type, from: rinfo.address }, `Bonjour: another device on ${l.name} claims ${a.name}`);
      return;
    }
  }

  private onQuery(l: Link, q: makeMdns.QueryPacket, rinfo: RemoteInfo): void {
    if (this.state !== 'announced') return;
    if (!this.fromLink(l, rinfo.address)) return;
    const r = l.records;
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const hostName = lower(this.hostName);
    const instanceRecs = (fullName: string): Answer[] => r.instances.filter((x) => lower(x.name) === fullName);
    for (const question of q.questions ?? []) {
      const name = lower(question.name);
      const type: string = question.type;
      const want = (t: string): boolean => type === 'ANY' || type === t;
      if (name === SERVICES_ENUMERATION && want('PTR')) answers.push(...r.enumeration);
      for (const p of r.pointers) {
        if (lower(p.name) !== name || !want('PTR')) continue;
        answers.push(p);
        additionals.push(...instanceRecs(lower(String((p as { data: unknown }).data))), ...r.host);
      }
      for (const rec of r.instances) {
        if (lower(rec.name) !== name || !want(rec.type)) continue;
        answers.push(rec);
        if (rec.type === 'SRV') additionals.push(...r.host);
      }
      if (name === hostName) for (const h of r.host) if (want(h.type)) answers.push(h);
    }
    if (answers.length === 0) return;
    // Known-answer suppression (§7.1): skip what the querier already holds with at least half the TTL.
    const known = new Map<string, number>();
    for (const k of q.answers ?? []) known.set(recordKey(k), (k as { ttl?: number }).ttl ?? 0);
    const fresh = (a: Answer): boolean => {
      const ttl = known.get(recordKey(a));
      return ttl === undefined || ttl < ((a as { ttl?: number }).ttl ?? 0) / 2;
    };
    const dedupe = (list: Answer[], skip: Set<string>): Answer[] => {
      const out: Answer[] = [];
      for (const a of list) {
        const k = recordKey(a);
        if (skip.has(k)) continue;
        skip.add(k);
        out.push(a);
      }
      return out;
    };
    const seen = new Set<string>();
    const ans = dedupe(answers.filter(fresh), seen);
    if (ans.length === 0) return;
    const add = dedupe(additionals, seen);
    if (rinfo.port !== this.mdnsPort) {
      // Legacy unicast (§6.7): answer the querier directly, echoing id and question.
      const cap = (a: Answer): Answer => ({ ...a, flush: false, ttl: Math.min((a as { ttl?: number }).ttl ?? LEGACY_TTL, LEGACY_TTL) }) as Answer;
      this.send(l, () => l.mdns.respond({ id: q.id, questions: q.questions, answers: ans.map(cap), additionals: add.map(cap) }, { port: rinfo.port, address: rinfo.address }));
      return;
    }
    this.send(l, () => l.mdns.respond({ answers: ans, additionals: add }));
  }

  /** Sends goodbyes (TTL 0) if the records were announced, then closes the sockets. */
  async stop(): Promise<void> {
    const wasAnnounced = this.state === 'announced';
    this.state = 'stopped';
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of [...this.wake]) w();
    const live = this.links.filter((l) => l.alive);
    if (wasAnnounced) {
      await Promise.all(
        live.map(
          (l) =>
            new Promise<void>((resolve) => {
              const t = setTimeout(resolve, 1000);
              t.unref();
              const goodbye = allRecords(l.records).map((a) => ({ ...a, ttl: 0 }) as Answer);
              try {
                l.mdns.respond({ answers: goodbye }, () => {
                  clearTimeout(t);
                  resolve();
                });
              } catch (err) {
                this.opts.log.debug({ err }, 'Bonjour: goodbye not sent');
                clearTimeout(t);
                resolve();
              }
            }),
        ),
      );
      this.opts.log.info({ instance: this.instanceName }, 'Bonjour: sent goodbyes');
    }
    await Promise.all(
      this.links.map(
        (l) =>
          new Promise<void>((resolve) => {
            try {
              l.mdns.destroy(() => resolve());
            } catch {
              resolve();
            }
          }),
      ),
    );
    this.links = [];
    await this.running?.catch(() => undefined);
  }
}
