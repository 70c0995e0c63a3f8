import { cleartext, guest } from './uam-basic.js';
import { dhcast128 } from './uam-dhcast128.js';
import { dhx2 } from './uam-dhx2.js';
import type { Uam } from './uam.js';

/** Every UAM the gateway knows, in the order we prefer them. */
export const ALL_UAMS: readonly Uam[] = [dhx2, dhcast128, cleartext, guest];

/** UAM names compare case-insensitively on the wire. */
export function findUam(enabled: readonly Uam[], name: string): Uam | undefined {
  const n = name.toLowerCase();
  return enabled.find((u) => u.name.toLowerCase() === n);
}

export function selectUams(names: readonly string[]): Uam[] {
  return names.map((n) => {
    const u = findUam(ALL_UAMS, n);
    if (!u) throw new Error(`unknown UAM ${JSON.stringify(n)}`);
    return u;
  });
}
