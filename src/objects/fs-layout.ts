/**
 * How the fs store lays keys out as paths, so that no directory grows huge and a directory walk
 * yields keys in order.
 *
 * Each `/`-separated segment of a key is one level. At a level, a segment lives in a bucket
 * directory named after its first two characters, so siblings are spread over many small
 * directories (CNIDs, block numbers) instead of one big one. Inside the bucket, the last segment
 * is a file named after the segment; any other segment is a directory named after the segment
 * followed by "/" (escaped), which holds the next level. Key `3/1234/0-1` becomes
 *
 *     3%2F/3%2F/12/1234%2F/0-/0-1
 *
 * Names are escaped: only [a-z0-9_-] and a non-leading "." stay as they are; every other byte
 * of the UTF-8 form is %XX. Leaving out capitals and non-ASCII keeps distinct keys distinct on
 * case-insensitive and normalising file systems (macOS), and no name we make starts with "."
 * (so "." and ".." cannot occur, and the store's own temporary files cannot collide).
 *
 * A bucket's decoded name is a prefix of every key below it (or, for a one-character last
 * segment, the whole key), and a directory entry's decoded name plus what lies above it is
 * likewise a prefix of the keys below it. Sorting siblings by those decoded prefixes therefore
 * sorts the keys; the one-character bucket is why a directory entry's name includes its "/":
 * key "a" (bucket "a") and keys "a/…" (bucket "a/") must sort on either side of "a-…".
 */
import { compareKeys } from './keys.js';

const HEX = '0123456789ABCDEF';

function isRaw(byte: number, index: number): boolean {
  return (
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    byte === 0x5f || // _
    byte === 0x2d || // -
    (byte === 0x2e && index > 0) // . but not first
  );
}

export function escapeName(s: string): string {
  const bytes = Buffer.from(s, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += isRaw(b, i) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/** The decoded name, or undefined for a name this layout never makes (a stranger's file). */
export function unescapeName(name: string): string | undefined {
  if (name.length === 0 || name.startsWith('.')) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x25) {
      const hex = name.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (isRaw(c, bytes.length)) {
      bytes.push(c);
    } else {
      return undefined;
    }
  }
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
  // Only the one spelling we write counts: another ("%61" for "a") would list a key whose
  // path is elsewhere.
  return escapeName(decoded) === name ? decoded : undefined;
}

/** The bucket an entry (segment, or segment + "/") goes in: its first two code points. */
export function bucketOf(entry: string): string {
  return [...entry].slice(0, 2).join('');
}

/** Path components below the root, ending with the object's file name. */
export function pathParts(key: string): string[] {
  const segments = key.split('/');
  const parts: string[] = [];
  segments.forEach((seg, i) => {
    const entry = i === segments.length - 1 ? seg : `${seg}/`;
    parts.push(escapeName(bucketOf(entry)), escapeName(entry));
  });
  return parts;
}

export interface Bounds {
  prefix: string;
  after?: string | undefined;
}

/**
 * Whether a subtree whose keys all start with `p` can hold a key in bounds. Conservative: a
 * true answer may still find nothing.
 */
export function subtreeMayMatch(p: string, b: Bounds): boolean {
  if (!p.startsWith(b.prefix) && !b.prefix.startsWith(p)) return false;
  // Every key starting with p sorts before `after` when p does and is not a prefix of it.
  if (b.after !== undefined && compareKeys(p, b.after) < 0 && !b.after.startsWith(p)) return false;
  return true;
}

export function keyInBounds(key: string, b: Bounds): boolean {
  return key.startsWith(b.prefix) && (b.after === undefined || compareKeys(key, b.after) > 0);
}
