/**
 * Key rules shared by every backend. S3 would accept more, but a key that works on one backend
 * must work on all (the fs store maps segments to directory names), and the keys the block
 * layer makes (`<volume>/<file-id>/<block>-<generation>`) fit easily.
 */
import { InvalidObjectKeyError } from './errors.js';
import type { ByteRange } from './object-store.js';

/** S3's limit on a whole key, which includes the configured prefix. */
export const MAX_KEY_BYTES = 1024;

const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function checkKey(key: string): void {
  const bad = keyProblem(key);
  if (bad !== undefined) throw new InvalidObjectKeyError(key, bad);
}

function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'must be a non-empty string';
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return `must be at most ${MAX_KEY_BYTES} bytes`;
  // S3 lists keys in XML 1.0, which cannot carry most control characters.
  if (CONTROL.test(key)) return 'must not contain control characters';
  // A lone surrogate would not survive the round trip through UTF-8.
  if (LONE_SURROGATE.test(key)) return 'must be well-formed Unicode';
  for (const seg of key.split('/')) {
    if (seg === '') return 'must not start or end with "/" or contain "//"';
    if (seg === '.' || seg === '..') return 'must not contain "." or ".." segments';
  }
  return undefined;
}

/** A list prefix is any string a key could start with. */
export function checkPrefix(prefix: string): void {
  if (CONTROL.test(prefix) || LONE_SURROGATE.test(prefix)) throw new InvalidObjectKeyError(prefix, 'invalid list prefix');
}

/** The order S3 lists in: UTF-8 bytes, which is code point order (not UTF-16 unit order). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function checkRange(range: ByteRange): void {
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!ok(range.offset) || !ok(range.length))
    throw new RangeError(`invalid byte range: offset ${range.offset}, length ${range.length}`);
}

export function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) throw new RangeError(`invalid list limit: ${limit}`);
}
