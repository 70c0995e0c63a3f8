/**
 * One translation of everything below the volume layer into file-system terms: namespace,
 * fork-store and data failures, and an unreachable object or metadata store (EIO). Every
 * volume operation runs its store calls through it, so a failure means the same whichever
 * path it took (a file removed under an open is ENOENT whether the namespace or the data
 * layer noticed).
 */
import { DataError } from '../blocks/volume-data.js';
import { ForkError, type ForkFailure } from '../meta/forks.js';
import { MetaUnavailableError } from '../meta/meta-store.js';
import { NamespaceError, type NamespaceFailure } from '../meta/namespace.js';
import { ObjectStoreError } from '../objects/errors.js';
import { FsError, type FsFailure } from './errors.js';

const nsToFs: Record<NamespaceFailure, FsFailure> = {
  'not-found': 'ENOENT',
  exists: 'EEXIST',
  'not-dir': 'ENOTDIR',
  'is-dir': 'EISDIR',
  'not-empty': 'ENOTEMPTY',
  cycle: 'ECYCLE',
  'is-root': 'EROOT',
  'no-attr': 'ENOATTR',
};

const forkToFs: Record<ForkFailure, FsFailure> = {
  'deny-conflict': 'EDENY',
  'not-open': 'EBADF',
  'range-overlap': 'ERANGEOVERLAP',
  'range-locked': 'ERANGELOCKED',
  'not-locked': 'ENOTLOCKED',
  'too-many': 'ENOLOCKS',
};

/** Runs `run`, restating its failures; `exists` is what a namespace 'exists' means here. */
export async function fsCall<T>(run: () => Promise<T>, exists: FsFailure = 'EEXIST'): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof NamespaceError) throw new FsError(e.reason === 'exists' ? exists : nsToFs[e.reason], e.message);
    if (e instanceof ForkError) throw new FsError(forkToFs[e.reason], e.message);
    if (e instanceof DataError) throw new FsError(e.reason === 'gone' ? 'ENOENT' : 'EIO', e.message);
    if (e instanceof ObjectStoreError || e instanceof MetaUnavailableError) throw new FsError('EIO', e.message);
    throw e;
  }
}
