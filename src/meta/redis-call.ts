import { MetaError, MetaUnavailableError } from './meta-store.js';

/**
 * Runs one Redis call and gives its failure a meaning: the store's own typed errors (and any
 * the caller names with `ours`) pass through; anything ioredis throws means Redis is
 * unreachable or broken, a MetaUnavailableError, which callers answer as an outage rather
 * than as a wrong request.
 */
export async function callRedis<T>(op: () => Promise<T>, ours: (err: unknown) => boolean = () => false): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof MetaError || ours(err)) throw err;
    throw new MetaUnavailableError(`Redis: ${err instanceof Error ? err.message : String(err)}`);
  }
}
