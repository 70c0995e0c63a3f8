import { FsError } from './errors.js';

/** HFS+ and AFP limit a name to 255 UTF-16 units; we bound the UTF-8 form, as netatalk does. */
export const MAX_NAME_BYTES = 255;

/**
 * Names as a Mac sends them: any Unicode except NUL (the path separator on the wire) and
 * ':' (the classic Mac separator: the macOS client maps a POSIX ':' to '/' before sending,
 * so a ':' never comes from a real Mac and HFS+ could not store it).
 */
export function checkName(name: string): void {
  if (name.length === 0) throw new FsError('EINVAL', 'empty name');
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) throw new FsError('EINVAL', `name longer than ${MAX_NAME_BYTES} bytes`);
  if (name.includes('\0')) throw new FsError('EINVAL', 'name contains NUL');
  if (name.includes(':')) throw new FsError('EINVAL', "name contains ':'");
  if (name === '.' || name === '..') throw new FsError('EINVAL', `reserved name ${name}`);
  if (/[\uD800-\uDFFF]/.test(name.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) throw new FsError('EINVAL', 'name contains a lone surrogate');
}

/**
 * The lookup key of a name. Macs send decomposed UTF-8, others may not: lookups must treat
 * NFC and NFD as equal. A case-insensitive volume also folds case, as HFS+ does.
 */
export function folder(caseSensitive: boolean): (name: string) => string {
  return caseSensitive ? (n) => n.normalize('NFC') : (n) => n.normalize('NFC').toLowerCase().normalize('NFC');
}
