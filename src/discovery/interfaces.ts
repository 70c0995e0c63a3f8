/**
 * Which interfaces mDNS runs on, for the advertiser and for `afp-gateway doctor` alike:
 * bonjour.interfaces names them by address; left out (null), every interface that is not
 * loopback. Each chosen interface gets the IPv4 address its socket joins the group on (the
 * configured one, or its first), since the transport here is IPv4 only.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { isIPv4 } from 'node:net';

export interface MdnsInterface {
  name: string;
  /** The address the socket joins 224.0.0.251 on. */
  ipv4: string;
  /** Its addresses (the non-internal ones when chosen by default). */
  infos: NetworkInterfaceInfo[];
}

/** An interface or configured address left out, and why. */
export type SkippedInterface = { kind: 'no-ipv4'; name: string } | { kind: 'no-such-address'; address: string };

export function chooseInterfaces(
  wanted: readonly string[] | null,
  all: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): { chosen: MdnsInterface[]; skipped: SkippedInterface[] } {
  const entries = Object.entries(all).map(([name, infos]) => ({ name, infos: infos ?? [] }));
  const chosen: MdnsInterface[] = [];
  const skipped: SkippedInterface[] = [];
  const pick = (name: string, infos: NetworkInterfaceInfo[], preferred?: string): void => {
    if (chosen.some((o) => o.name === name)) return;
    const v4 = preferred && isIPv4(preferred) ? preferred : infos.find((i) => i.family === 'IPv4')?.address;
    if (!v4) {
      skipped.push({ kind: 'no-ipv4', name });
      return;
    }
    chosen.push({ name, ipv4: v4, infos });
  };
  if (wanted === null || wanted.length === 0) {
    for (const { name, infos } of entries) if (infos.some((i) => !i.internal)) pick(name, infos.filter((i) => !i.internal));
    return { chosen, skipped };
  }
  for (const addr of wanted) {
    const bare = addr.split('%')[0]!;
    const found = entries.find(({ infos }) => infos.some((i) => i.address === bare));
    if (!found) {
      skipped.push({ kind: 'no-such-address', address: addr });
      continue;
    }
    pick(found.name, found.infos, bare);
  }
  return { chosen, skipped };
}
