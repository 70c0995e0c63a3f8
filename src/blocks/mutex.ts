/**
 * A FIFO async mutex. A block's writes, gap fills, snapshots and truncates must not
 * interleave, yet each is a few local file operations, so a promise chain is all it needs.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private held = 0;

  get locked(): boolean {
    return this.held > 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    this.held++;
    try {
      await prev;
      return await fn();
    } finally {
      this.held--;
      release();
    }
  }
}
