import type { NodeInfo, PasswordHash, ServerIdentity } from './meta-store.js';

/**
 * Record helpers both backends share, so the two stores agree to the byte on what they
 * keep and in which order they list it.
 */

/** Code-unit order: the same in both backends (LMDB itself would order by UTF-8 bytes). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`lease ttl must be a positive integer of ms, got ${ttlMs}`);
}

/** Only the declared fields are stored, so what comes back equals what went in. */
export function copyPassword(p: PasswordHash): PasswordHash {
  return { algo: p.algo, N: p.N, r: p.r, p: p.p, salt: p.salt, hash: p.hash };
}

export function copyNodeInfo(n: NodeInfo): NodeInfo {
  return { id: n.id, host: n.host, port: n.port, version: n.version, startedAt: n.startedAt };
}

/** A caller that mutates the returned Buffer must not change what later callers see. */
export function copyIdentity(id: ServerIdentity): ServerIdentity {
  return { signature: Buffer.from(id.signature), createdAt: id.createdAt };
}

/** A named lease's name and holder are parts of keys: non-empty strings. */
export function checkLease(name: string, holder?: string): void {
  if (typeof name !== 'string' || name === '') throw new RangeError(`lease name must be a non-empty string, got ${JSON.stringify(name)}`);
  if (holder !== undefined && (typeof holder !== 'string' || holder === '')) throw new RangeError(`lease holder must be a non-empty string, got ${JSON.stringify(holder)}`);
}
