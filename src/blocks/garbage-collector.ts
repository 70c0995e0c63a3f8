/**
 * Deletes objects no block map refers to any more, once their grace period is over. The
 * grace period is what lets a reader on the other node, holding a ref it looked up just
 * before the block was replaced, still fetch the old object.
 */
import type { BlockMapStore } from '../meta/block-maps.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Logger } from '../ops/log.js';
import { blockObjectKey } from './object-names.js';

export interface GarbageCollectorOptions {
  volumeKey: string;
  store: BlockMapStore;
  objects: ObjectStore;
  graceMs: number;
  intervalMs: number;
  log: Logger;
  now?: () => number;
}

const BATCH = 256;
const PARALLEL = 8;

export class GarbageCollector {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  deleted = 0;

  constructor(private readonly o: GarbageCollectorOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.runOnce().catch((err: unknown) => this.o.log.warn({ err, volume: this.o.volumeKey }, 'block GC pass failed; the next pass retries'));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /** One pass over everything due; returns how many objects were deleted. Passes never overlap. */
  runOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<number> {
    const now = (this.o.now ?? Date.now)();
    let total = 0;
    for (;;) {
      const due = await this.o.store.gcDue(now - this.o.graceMs, BATCH);
      if (due.length === 0) break;
      for (let i = 0; i < due.length; i += PARALLEL) {
        await Promise.all(due.slice(i, i + PARALLEL).map((e) => this.o.objects.delete(blockObjectKey(this.o.volumeKey, e.fork, e.index, e))));
      }
      await this.o.store.gcDone(due);
      total += due.length;
      if (due.length < BATCH) break;
    }
    if (total > 0) this.o.log.debug({ volume: this.o.volumeKey, deleted: total }, 'block GC pass');
    this.deleted += total;
    return total;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => 0);
  }
}
