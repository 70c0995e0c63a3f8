/**
 * How the metadata store reports its calls (which, how they ended, how long they took)
 * without knowing about metrics: the composition root passes an observer when it serves
 * metrics, and the store calls it. See MeasuredObjectStore for the object store's.
 */
export interface MetaCallObserver {
  /**
   * `op`: a Redis command or script name (hmget, afpgwNsCreate, ...), or for the embedded
   * store a write transaction (namespace.write, forks.write, sessions.write, server.write)
   * or `sync`; a small set fixed by the code. `outcome`: 'ok', or the error's name.
   */
  observe(op: string, outcome: string, seconds: number): void;
}

/** Seconds since `started` (a performance.now() reading). */
export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}

export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}
