import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { OP_TTL_MS } from '../../src/meta/redis-scripts.js';

/**
 * The keys matching `pattern` except the operation keys guarded scripts leave for a resend
 * (src/meta/redis-scripts.ts): those must expire on their own within OP_TTL_MS.
 */
export async function lastingKeys(admin: Redis, pattern: string): Promise<string[]> {
  return lasting(admin, await admin.keys(pattern));
}

/** `keys` without the operation keys, which must expire on their own within OP_TTL_MS. */
export async function lasting(admin: Redis, keys: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const key of keys) {
    if (!/:op:[A-Za-z0-9_-]+$/.test(key)) {
      out.push(key);
      continue;
    }
    const ttl = await admin.pttl(key);
    assert.ok(ttl > 0 && ttl <= OP_TTL_MS, `operation key ${key} expires (PTTL ${ttl})`);
  }
  return out.sort();
}
