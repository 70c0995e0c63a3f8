/**
 * Can Bonjour work here? For `afp-gateway doctor`: on each interface the advertiser would use
 * (interfaces.ts), open an mDNS socket the way the advertiser does, join 224.0.0.251, send a
 * query for a name of its own and wait for the kernel's multicast loopback to hand it back.
 * A query that comes back has left through the interface's multicast path; one that does not
 * was dropped on this machine (a packet filter, an interface without multicast).
 *
 * This shows that this machine sends and receives mDNS; that the Macs' network carries it
 * (a switch with IGMP snooping, Wi-Fi client isolation, a different VLAN) only a Mac can tell.
 */
import { randomBytes } from 'node:crypto';
import makeMdns from 'multicast-dns';
import { fail, ok, warn, type CheckResult } from '../ops/check-result.js';
import { MDNS_PORT } from './advertiser.js';
import { chooseInterfaces, type MdnsInterface } from './interfaces.js';

export const DEFAULT_MULTICAST_TIMEOUT_MS = 2000;
const RESEND_MS = 250;
const MDNS_GROUP = '224.0.0.251';

export interface MulticastCheckOptions {
  timeoutMs?: number;
  /** UDP port of the mDNS group; only tests change it. */
  port?: number;
}

/** One result per interface, plus one per configured address that is not this machine's. */
export async function checkMulticast(interfaces: readonly string[] | null, opts: MulticastCheckOptions = {}): Promise<CheckResult[]> {
  const { chosen, skipped } = chooseInterfaces(interfaces);
  const results: CheckResult[] = [];
  for (const s of skipped) {
    if (s.kind === 'no-such-address')
      results.push(
        fail('multicast', `bonjour.interfaces lists ${s.address}, but no interface of this machine has that address`, {
          key: 'bonjour.interfaces',
          fix: "list addresses of this machine's interfaces (`ip -brief address`), or leave bonjour.interfaces out to use every interface",
          transient: false,
        }),
      );
    else results.push(warn('multicast', `interface ${s.name} has no IPv4 address; mDNS (IPv4 here) does not run on it`));
  }
  if (chosen.length === 0 && skipped.every((s) => s.kind !== 'no-such-address'))
    results.push(
      fail('multicast', 'no network interface besides loopback has an IPv4 address: Macs could not find the gateway by Bonjour', {
        key: 'bonjour.interfaces',
        fix: "connect this machine to the Macs' network; or set bonjour.enabled: false and have the Macs connect to afp://<address>",
        transient: false,
      }),
    );
  results.push(...(await Promise.all(chosen.map((i) => probeInterface(i, opts.timeoutMs ?? DEFAULT_MULTICAST_TIMEOUT_MS, opts.port ?? MDNS_PORT)))));
  return results;
}

function probeInterface(iface: MdnsInterface, timeoutMs: number, port: number): Promise<CheckResult> {
  const on = `${iface.name} (${iface.ipv4})`;
  const name = `afpgw-doctor-${randomBytes(6).toString('hex')}.local`;
  return new Promise((resolve) => {
    let mdns: makeMdns.MulticastDNS;
    try {
      mdns = makeMdns({ port, interface: iface.ipv4, bind: '0.0.0.0', reuseAddr: true, loopback: true, ttl: 255 });
    } catch (err) {
      resolve(fail('multicast', `cannot open an mDNS socket on ${on}: ${messageOf(err)}`, { transient: false }));
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    let resend: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (r: CheckResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(resend);
      mdns.destroy(() => resolve(r));
    };
    mdns.on('error', (err: NodeJS.ErrnoException) => {
      const held = err.code === 'EADDRINUSE';
      finish(
        fail('multicast', `cannot open UDP port ${port} on ${on}: ${held ? 'a program holds it without sharing it' : messageOf(err)}`, {
          fix: held
            ? `find it with \`ss -lunp 'sport = :${port}'\`; mDNS responders such as avahi-daemon share the port, others must be stopped`
            : 'the gateway needs to bind UDP 5353 for Bonjour',
          transient: false,
        }),
      );
    });
    mdns.on('warning', (err: NodeJS.ErrnoException) => {
      // addMembership or setMulticastInterface refused: this interface does not do multicast.
      if (/membership|multicastinterface/i.test(err.message ?? '') || err.syscall === 'addMembership')
        finish(
          fail('multicast', `cannot join the mDNS group ${MDNS_GROUP} on ${on}: ${err.code ?? err.message}`, {
            key: 'bonjour.interfaces',
            fix: `check that ${iface.name} is up and has multicast on (\`ip link show ${iface.name}\` lists MULTICAST), or list another address in bonjour.interfaces`,
            transient: false,
          }),
        );
    });
    mdns.on('query', (q: makeMdns.QueryPacket) => {
      if (q.questions.some((x) => x.name === name)) finish(ok('multicast', `${on}: a query sent to ${MDNS_GROUP}:${port} came back`));
    });
    mdns.on('ready', () => {
      if (done) return;
      const send = (): void =>
        mdns.query({ questions: [{ name, type: 'TXT' }] }, (err: Error | null) => {
          if (err) finish(fail('multicast', `cannot send to ${MDNS_GROUP}:${port} on ${on}: ${messageOf(err)}`, { fix: `check that ${iface.name} has a route for multicast (224.0.0.0/4)`, transient: false }));
        });
      send();
      resend = setInterval(send, RESEND_MS);
    });
    timer = setTimeout(
      () =>
        finish(
          fail('multicast', `${on}: a query sent to ${MDNS_GROUP}:${port} did not come back within ${timeoutMs / 1000} s`, {
            fix: `multicast is dropped on this machine: allow UDP ${port} to and from ${MDNS_GROUP} in the firewall (nftables/iptables/ufw), and check that ${iface.name} has MULTICAST (\`ip link show ${iface.name}\`)`,
            transient: false,
          }),
        ),
      timeoutMs,
    );
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
