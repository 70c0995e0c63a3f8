/**
 * Byte sizes as people write them in config files: `4MiB`, `512 KiB`, `2TB`, `1.5GiB`, or a
 * plain byte count. IEC units (KiB..TiB) are powers of 1024, SI units (KB..TB) powers of 1000;
 * the trailing `B` may be left off (`4Mi`, `2T`) and case does not matter.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

const MULTIPLIERS: ReadonlyMap<string, bigint> = new Map([
  ['', 1n],
  ['b', 1n],
  ['k', 1000n],
  ['kb', 1000n],
  ['ki', 1024n],
  ['kib', 1024n],
  ['m', 1000n ** 2n],
  ['mb', 1000n ** 2n],
  ['mi', 1024n ** 2n],
  ['mib', 1024n ** 2n],
  ['g', 1000n ** 3n],
  ['gb', 1000n ** 3n],
  ['gi', 1024n ** 3n],
  ['gib', 1024n ** 3n],
  ['t', 1000n ** 4n],
  ['tb', 1000n ** 4n],
  ['ti', 1024n ** 4n],
  ['tib', 1024n ** 4n],
]);

// Largest first, binary before decimal at the same magnitude, so formatSize picks the
// biggest unit that still shows the exact value.
const FORMAT_UNITS: ReadonlyArray<readonly [string, bigint]> = [
  ['TiB', 1024n ** 4n],
  ['TB', 1000n ** 4n],
  ['GiB', 1024n ** 3n],
  ['GB', 1000n ** 3n],
  ['MiB', 1024n ** 2n],
  ['MB', 1000n ** 2n],
  ['KiB', 1024n],
  ['KB', 1000n],
];

const SIZE_RE = /^(\d+)(?:\.(\d*))?\s*([a-z]*)$|^\.(\d+)\s*([a-z]*)$/i;
const MAX = BigInt(Number.MAX_SAFE_INTEGER);
const HINT = 'use a byte count or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB';

/** Parses a size to a whole number of bytes; throws a RangeError whose message says why. */
export function parseSize(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || !Number.isInteger(v)) throw new RangeError(`${v} is not a whole number of bytes`);
    if (v < 0) throw new RangeError(`${v} is negative`);
    if (!Number.isSafeInteger(v)) throw new RangeError(`${v} is too large`);
    return v;
  }
  if (typeof v !== 'string') throw new TypeError(`must be a number or a string (${HINT})`);
  const text = v.trim();
  // Long inputs are never legitimate and would only make the BigInt arithmetic slow.
  const m = text.length <= 64 ? SIZE_RE.exec(text) : null;
  const unit = m ? (m[3] ?? m[5] ?? '').toLowerCase() : '';
  const mult = MULTIPLIERS.get(unit);
  if (!m || mult === undefined) throw new RangeError(`${JSON.stringify(v)} is not a size (${HINT})`);
  const whole = m[1] ?? '0';
  const frac = m[2] ?? m[4] ?? '';
  // Exact decimal arithmetic: 1.1GB must be 1100000000, not 1100000000.0000002.
  const scaled = BigInt(whole + frac) * mult;
  const divisor = 10n ** BigInt(frac.length);
  if (scaled % divisor !== 0n) throw new RangeError(`${JSON.stringify(v)} is not a whole number of bytes`);
  const bytes = scaled / divisor;
  if (bytes > MAX) throw new RangeError(`${JSON.stringify(v)} is too large`);
  return Number(bytes);
}

/**
 * A short exact rendering for messages, e.g. `4 MiB`, `1.5 GiB`, `2 TB`, `4194305 B`.
 * Exact on purpose: parseSize(formatSize(n)) === n, so a message never shows a rounded
 * value that differs from the one that was rejected.
 */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) return `${bytes} B`;
  const n = BigInt(bytes);
  for (const [name, mult] of FORMAT_UNITS) {
    if (n < mult || (n * 100n) % mult !== 0n) continue;
    const hundredths = (n * 100n) / mult;
    const whole = hundredths / 100n;
    const frac = hundredths % 100n;
    const fracText = frac === 0n ? '' : `.${frac.toString().padStart(2, '0').replace(/0$/, '')}`;
    return `${whole}${fracText} ${name}`;
  }
  return `${bytes} B`;
}
