/**
 * An ObjectStore that reports each call (operation, outcome, duration, bytes) to an observer
 * and otherwise only delegates: how the gateway counts S3 requests, errors, latency and
 * traffic without the S3 code knowing about metrics.
 */
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore } from './object-store.js';

export type ObjectOp = 'put' | 'get' | 'head' | 'delete' | 'list';

export interface ObjectCallObserver {
  /** `outcome`: 'ok', or the error's name (ObjectNotFoundError for a missing key). */
  observe(op: ObjectOp, outcome: string, seconds: number, bytes: number): void;
}

export class MeasuredObjectStore implements ObjectStore {
  constructor(private readonly inner: ObjectStore, private readonly observer: ObjectCallObserver) {}

  put(key: string, body: Buffer): Promise<void> {
    return this.timed('put', () => this.inner.put(key, body), () => body.length);
  }

  get(key: string, range?: ByteRange): Promise<Buffer> {
    return this.timed('get', () => this.inner.get(key, range), (b) => b.length);
  }

  head(key: string): Promise<{ size: number } | undefined> {
    return this.timed('head', () => this.inner.head(key), () => 0);
  }

  delete(key: string): Promise<void> {
    return this.timed('delete', () => this.inner.delete(key), () => 0);
  }

  /** Counted per page fetched would need the store's paging; counted per listing instead. */
  async *list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo> {
    const started = performance.now();
    let outcome = 'ok';
    try {
      yield* this.inner.list(prefix, opts);
    } catch (err) {
      outcome = errorName(err);
      throw err;
    } finally {
      this.observer.observe('list', outcome, (performance.now() - started) / 1000, 0);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async timed<T>(op: ObjectOp, call: () => Promise<T>, bytes: (r: T) => number): Promise<T> {
    const started = performance.now();
    try {
      const r = await call();
      this.observer.observe(op, 'ok', (performance.now() - started) / 1000, bytes(r));
      return r;
    } catch (err) {
      this.observer.observe(op, errorName(err), (performance.now() - started) / 1000, 0);
      throw err;
    }
  }
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}
