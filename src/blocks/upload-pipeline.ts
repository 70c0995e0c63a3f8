/**
 * The node's upload queue: dirty blocks go to the object store through one p-queue with
 * bounded concurrency, shared by every volume so `cache.uploadConcurrency` bounds the
 * connections to the bucket. A block is queued at most once at a time; asking again while
 * it waits only raises its priority (a sync jumps the queue). A failed upload is retried
 * with backoff, indefinitely: the bytes are acknowledged to a client and must not be dropped.
 */
import PQueue from 'p-queue';
import type { Logger } from '../ops/log.js';

export const Priority = { Background: 0, Pressure: 1, Sync: 2 } as const;

export interface UploadJob {
  /** Uploads and commits the block once; throws to be retried later. */
  (): Promise<void>;
}

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 15_000;

export class UploadPipeline {
  private readonly queue: PQueue;
  private readonly queued = new Map<string, { priority: number; done: Promise<void> }>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private closed = false;

  /** Uploads that finished, and runs that failed (each retried later), since start. */
  readonly stats = { done: 0, failed: 0 };

  constructor(concurrency: number, private readonly log: Logger) {
    this.queue = new PQueue({ concurrency });
  }

  /**
   * Queues `job` for block `id` unless it is queued already (then its priority rises to
   * `priority`). The promise settles when this queued run has finished, successfully or not;
   * a failed run is retried in the background after a backoff.
   */
  submit(id: string, job: UploadJob, priority: number = Priority.Background): Promise<void> {
    const q = this.queued.get(id);
    if (q) {
      if (priority > q.priority) {
        q.priority = priority;
        try {
          this.queue.setPriority(id, priority);
        } catch {
          // Already handed to a worker between our bookkeeping and now: nothing to reorder.
        }
      }
      return q.done;
    }
    // Registered before add(): p-queue may start the job synchronously inside add().
    const entry: { priority: number; done: Promise<void> } = { priority, done: Promise.resolve() };
    this.queued.set(id, entry);
    entry.done = this.queue
      .add(
        async () => {
          // Out of the queue: a new request for the block must queue a new run, because
          // this one may already have taken its snapshot.
          if (this.queued.get(id) === entry) this.queued.delete(id);
          try {
            await job();
            this.stats.done++;
            this.failures.delete(id);
          } catch (err) {
            this.stats.failed++;
            this.retryLater(id, job, err);
          }
        },
        { id, priority },
      )
      .then(() => undefined);
    return entry.done;
  }

  /** Blocks queued or being uploaded now. */
  get depth(): number {
    return this.queue.size + this.queue.pending;
  }

  private retryLater(id: string, job: UploadJob, err: unknown): void {
    const n = (this.failures.get(id) ?? 0) + 1;
    this.failures.set(id, n);
    const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(n - 1, 10));
    (n === 1 || n % 10 === 0 ? this.log.warn : this.log.debug).call(this.log, { block: id.replaceAll('\0', '/'), attempt: n, retryInMs: delay, err: errMessage(err) }, 'block upload failed; will retry');
    if (this.closed) return;
    const t = setTimeout(() => {
      this.retryTimers.delete(t);
      if (!this.closed) void this.submit(id, job, Priority.Background);
    }, delay);
    t.unref();
    this.retryTimers.add(t);
  }

  /** Stops retries and waits for the uploads under way; queued ones are dropped (the journal keeps them). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    this.queue.clear();
    await this.queue.onIdle();
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
