import { FsError, type FsFailure } from '../volume/errors.js';
import { AfpError } from './errors.js';
import {
  kFPAccessDenied,
  kFPCantMove,
  kFPDirNotEmpty,
  kFPDenyConflict,
  kFPDiskFull,
  kFPLockErr,
  kFPNoMoreLocks,
  kFPRangeNotLocked,
  kFPRangeOverlap,
  kFPFileBusy,
  kFPItemNotFound,
  kFPMiscErr,
  kFPObjectExists,
  kFPObjectLocked,
  kFPObjectNotFound,
  kFPObjectTypeErr,
  kFPParamErr,
  kFPSameObjectErr,
  kFPVolLocked,
} from './result-codes.js';

/** The usual AFP code for each file-system failure (netatalk's errno mapping). */
const defaults: Record<FsFailure, number> = {
  ENOENT: kFPObjectNotFound,
  ENOTDIR: kFPObjectNotFound,
  EISDIR: kFPObjectTypeErr,
  EEXIST: kFPObjectExists,
  ENOTEMPTY: kFPDirNotEmpty,
  EINVAL: kFPParamErr,
  EACCES: kFPAccessDenied,
  ELOCKED: kFPObjectLocked,
  EBUSY: kFPFileBusy,
  ECYCLE: kFPCantMove,
  EROOT: kFPAccessDenied,
  // AFP 3.4 changed exactly this: a missing xattr is kFPItemNotFound (kFPMiscErr before).
  ENOATTR: kFPItemNotFound,
  EXATTR_EXISTS: kFPObjectExists,
  EROFS: kFPVolLocked,
  ENOSPC: kFPDiskFull,
  ESAME: kFPSameObjectErr,
  EDENY: kFPDenyConflict,
  ERANGELOCKED: kFPLockErr,
  ERANGEOVERLAP: kFPRangeOverlap,
  ENOTLOCKED: kFPRangeNotLocked,
  ENOLOCKS: kFPNoMoreLocks,
  EBADF: kFPParamErr,
  EIO: kFPMiscErr,
};

export function fsErrorCode(e: FsError, afpVersion: number): number {
  if (e.reason === 'ENOATTR' && afpVersion < 34) return kFPMiscErr;
  return defaults[e.reason];
}

/**
 * Runs a volume call, restating chosen file-system failures with command-specific codes
 * (e.g. FPEnumerate answers kFPDirNotFound where others say kFPObjectNotFound).
 */
export async function withCodes<T>(overrides: Partial<Record<FsFailure, number>>, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof FsError && overrides[e.reason] !== undefined) throw new AfpError(overrides[e.reason]!, e.message);
    throw e;
  }
}
