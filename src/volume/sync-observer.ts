/**
 * How the volume layer reports its durability syncs (FPSyncFork, FPSyncDir) without knowing
 * about metrics: the composition root sets an observer, and each sync tells it how long the
 * Mac waited for its bytes to be in the object store and its metadata committed.
 */
import { FsError } from './errors.js';

export type SyncKind = 'fork' | 'dir';

export interface SyncObserver {
  /** `outcome`: 'ok', or why the sync failed (an FsFailure such as EIO, or the error's name). */
  observe(kind: SyncKind, outcome: string, seconds: number): void;
}

/** Runs one sync and reports it to `observer` (when there is one). */
export async function observedSync(observer: SyncObserver | undefined, kind: SyncKind, sync: () => Promise<void>): Promise<void> {
  if (!observer) return sync();
  const started = performance.now();
  try {
    await sync();
  } catch (err) {
    observer.observe(kind, err instanceof FsError ? err.reason : err instanceof Error ? err.name : 'Error', (performance.now() - started) / 1000);
    throw err;
  }
  observer.observe(kind, 'ok', (performance.now() - started) / 1000);
}
