/**
 * File-system failures in POSIX terms. The volume layer speaks these so that a front end
 * other than AFP could sit on the same volumes; `afp/fs-errors.ts` maps them to AFP codes.
 */
export type FsFailure =
  | 'ENOENT' // no such object
  | 'ENOTDIR' // a path step or a parent is a file
  | 'EISDIR' // a file was required
  | 'EEXIST' // the name is taken
  | 'ENOTEMPTY' // removing a directory with children
  | 'EINVAL' // a bad name or argument
  | 'EACCES' // permissions say no
  | 'ELOCKED' // WriteInhibit / RenameInhibit / DeleteInhibit
  | 'EBUSY' // the file is open
  | 'ECYCLE' // moving a directory into its own subtree
  | 'EROOT' // the operation cannot apply to the volume root
  | 'ENOATTR' // no such extended attribute
  | 'EXATTR_EXISTS' // create of an existing extended attribute
  | 'EROFS' // read-only volume
  | 'ENOSPC' // a limit on what one object may hold
  | 'ESAME' // both arguments name the same object
  | 'EDENY' // an open's access or deny modes clash with another open of the file
  | 'ERANGELOCKED' // a byte range another open has locked
  | 'ERANGEOVERLAP' // a lock overlapping one the same open holds
  | 'ENOTLOCKED' // unlocking a range that is not locked as given
  | 'ENOLOCKS' // the lock table of a file or open is full
  | 'EBADF' // a fork that is not open (or not open for the operation)
  | 'EIO'; // the object or metadata store failed or timed out: the data is not (yet) durable

export class FsError extends Error {
  constructor(readonly reason: FsFailure, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'FsError';
  }
}
