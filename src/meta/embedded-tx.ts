import type { Database } from 'lmdb';
import { errorName, secondsSince, type MetaCallObserver } from './call-observer.js';

/**
 * Runs `body` as one LMDB write transaction (synchronously when `syncCommits`, see
 * EmbeddedNamespace) and reports it to `calls` as `op`. An Error the body returns (its way of
 * failing without leaving writes behind) is thrown here, once the transaction is over; it is
 * the caller's answer, not a store failure, so it counts as 'ok'.
 */
export async function writeTransaction<T>(db: Database<unknown, string>, syncCommits: boolean, body: () => T | Error, calls: MetaCallObserver | undefined, op: string): Promise<T> {
  const started = calls ? performance.now() : 0;
  let result: T | Error;
  try {
    result = syncCommits ? db.transactionSync(body) : await db.transaction(body);
  } catch (err) {
    calls?.observe(op, errorName(err), secondsSince(started));
    throw err;
  }
  calls?.observe(op, 'ok', secondsSince(started));
  if (result instanceof Error) throw result;
  return result;
}
