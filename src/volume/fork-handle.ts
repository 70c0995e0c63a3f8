/**
 * One open fork: the volume's side of FPOpenFork. Access and byte-range checks go to the
 * fork store (shared by both nodes), bytes to the volume's data on this node.
 */
import type { ForkState, VolumeData } from '../blocks/volume-data.js';
import { LOCK_TO_END, type ForkStore } from '../meta/forks.js';
import type { NodeRecord } from '../meta/namespace.js';
import type { Logger } from '../ops/log.js';
import { FsError } from './errors.js';
import { fsCall } from './fs-call.js';
import { Access, type ForkKind, type OpenedFork } from './open-fork.js';
import { observedSync, type SyncObserver } from './sync-observer.js';

/** What a fork handle needs from its volume. */
export interface ForkHost {
  readonly data: VolumeData;
  readonly forkStore: ForkStore;
  /** The file's record with live fork lengths. */
  node(id: number): Promise<NodeRecord>;
  /** Throws ENOSPC when the volume cannot grow by `bytes`. */
  reserveSpace(bytes: number): Promise<void>;
  /** Told how long each sync took. */
  readonly syncs: SyncObserver | undefined;
}

/** The largest offset or length AFP can name that JavaScript numbers carry exactly. */
const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

export class ForkHandle implements OpenedFork {
  private closing: Promise<void> | null = null;

  constructor(
    private readonly host: ForkHost,
    readonly fileId: number,
    readonly fork: ForkKind,
    readonly mode: number,
    private readonly openId: string,
    private readonly st: ForkState,
    /** The opening session's logger, for what the data layer logs on its behalf (the volume's own when absent). */
    private readonly log?: Logger,
  ) {}

  private check(access: number, what: string): void {
    if (this.closing) throw new FsError('EBADF', 'the fork is closed');
    if (!(this.mode & access)) throw new FsError('EBADF', `the fork is not open for ${what}`);
  }

  async length(): Promise<number> {
    return this.st.length;
  }

  async node(): Promise<NodeRecord> {
    return this.host.node(this.fileId);
  }

  async read(offset: number, count: number): Promise<Buffer> {
    this.check(Access.Read, 'reading');
    checkSpan(offset, count);
    if (count === 0 || offset >= this.st.length) return Buffer.alloc(0);
    return fsCall(async () => {
      await this.host.forkStore.checkAccess(this.openId, { start: offset, end: Math.min(offset + count, MAX_OFFSET) });
      return this.host.data.read(this.st, offset, count, this.log);
    });
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.check(Access.Write, 'writing');
    checkSpan(offset, data.length);
    if (data.length === 0) return;
    await fsCall(async () => {
      await this.host.forkStore.checkAccess(this.openId, { start: offset, end: offset + data.length });
      const growth = offset + data.length - this.st.length;
      if (growth > 0) await this.host.reserveSpace(growth);
      await this.host.data.write(this.st, offset, data);
    });
  }

  async setLength(length: number): Promise<void> {
    this.check(Access.Write, 'writing');
    checkSpan(length, 0);
    await fsCall(async () => {
      const old = this.st.length;
      if (length === old) return;
      // Bytes that appear or vanish must not be in a range another open has locked.
      await this.host.forkStore.checkAccess(this.openId, { start: Math.min(old, length), end: Math.max(old, length) });
      if (length > old) await this.host.reserveSpace(length - old);
      await this.host.data.setLength(this.st, length);
    });
  }

  async lock(start: number, length: number): Promise<void> {
    if (this.closing) throw new FsError('EBADF', 'the fork is closed');
    await fsCall(() => this.host.forkStore.lock(this.openId, lockRange(start, length)));
  }

  async unlock(start: number, length: number): Promise<void> {
    if (this.closing) throw new FsError('EBADF', 'the fork is closed');
    await fsCall(() => this.host.forkStore.unlock(this.openId, lockRange(start, length)));
  }

  async flush(): Promise<void> {
    if (this.closing) throw new FsError('EBADF', 'the fork is closed');
    await fsCall(() => this.host.data.flush(this.st));
  }

  async sync(): Promise<void> {
    if (this.closing) throw new FsError('EBADF', 'the fork is closed');
    await observedSync(this.host.syncs, 'fork', () => fsCall(() => this.host.data.sync(this.st)));
  }

  leave(): void {
    this.closing ??= (async () => this.host.data.detach(this.st, this.log))();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.host.data.detach(this.st, this.log);
      await fsCall(() => this.host.forkStore.close(this.openId)).catch((e: unknown) => {
        // Already released (session or node clean-up got there first): closed is closed.
        if (!(e instanceof FsError && e.reason === 'EBADF')) throw e;
      });
    })();
    return this.closing;
  }
}

function checkSpan(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > MAX_OFFSET) {
    throw new FsError('EINVAL', `offset ${offset} and length ${length} are out of range`);
  }
}

function lockRange(start: number, length: number): { start: number; end: number } {
  if (!Number.isSafeInteger(start) || start < 0) throw new FsError('EINVAL', `lock start ${start} is out of range`);
  if (length === LOCK_TO_END) return { start, end: LOCK_TO_END };
  if (!Number.isSafeInteger(length) || length <= 0 || start + length > LOCK_TO_END) throw new FsError('EINVAL', `lock length ${length} is out of range`);
  return { start, end: start + length };
}
