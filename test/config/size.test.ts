import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GiB, KiB, MiB, TiB, formatSize, parseSize } from '../../src/config/size.js';

test('parseSize: plain numbers and unit strings', () => {
  const cases: Array<[number | string, number]> = [
    [0, 0],
    ['0', 0],
    [4096, 4096],
    ['4096', 4096],
    ['4096B', 4096],
    ['4MiB', 4 * MiB],
    ['4mib', 4 * MiB],
    ['4Mi', 4 * MiB],
    ['512 KiB', 512 * KiB],
    [' 512 kib ', 512 * KiB],
    ['2TB', 2e12],
    ['2tb', 2e12],
    ['2T', 2e12],
    ['1.5GiB', 1.5 * GiB],
    ['.5 GiB', GiB / 2],
    ['1.1GB', 1_100_000_000],
    ['10 GiB', 10 * GiB],
    ['3TiB', 3 * TiB],
    ['64KB', 64_000],
    ['1e6', NaN], // not accepted as a string (YAML would hand over the number)
  ];
  for (const [input, want] of cases) {
    if (Number.isNaN(want)) assert.throws(() => parseSize(input), RangeError, String(input));
    else assert.equal(parseSize(input), want, String(input));
  }
});

test('parseSize: rejects garbage with a message naming the input', () => {
  for (const bad of ['', 'lots', '4 XB', '4MiBs', '-1', '-1MiB', '1.2.3', 'MiB', '4 Mi B', '0x10', '1,5GiB']) {
    assert.throws(() => parseSize(bad), (err: Error) => err instanceof RangeError && err.message.includes(JSON.stringify(bad)), bad);
  }
  assert.throws(() => parseSize(-1), /negative/);
  assert.throws(() => parseSize(1.5), /whole number/);
  assert.throws(() => parseSize(Number.NaN), /whole number/);
  assert.throws(() => parseSize(Infinity), /whole number/);
  assert.throws(() => parseSize(2 ** 60), /too large/);
  assert.throws(() => parseSize('0.1KiB'), /whole number of bytes/);
  assert.throws(() => parseSize('99999999TiB'), /too large/);
  assert.throws(() => parseSize('1'.repeat(100)), /not a size/);
});

test('formatSize: short exact forms', () => {
  assert.equal(formatSize(0), '0 B');
  assert.equal(formatSize(1000), '1 KB');
  assert.equal(formatSize(1023), '1023 B');
  assert.equal(formatSize(1536), '1.5 KiB');
  assert.equal(formatSize(4 * MiB), '4 MiB');
  assert.equal(formatSize(4 * MiB + 1), '4194305 B');
  assert.equal(formatSize(1.5 * GiB), '1.5 GiB');
  assert.equal(formatSize(1.125 * GiB), '1152 MiB');
  assert.equal(formatSize(10 * GiB), '10 GiB');
  assert.equal(formatSize(2e12), '2 TB');
  assert.equal(formatSize(64 * KiB), '64 KiB');
});

test('property: formatSize then parseSize round-trips every safe byte count', () => {
  fc.assert(
    fc.property(fc.oneof(fc.maxSafeNat(), fc.nat({ max: 1 << 30 }), fc.nat({ max: 64 }).map((k) => 2 ** Math.min(k, 52))), (n) => {
      assert.equal(parseSize(formatSize(n)), n);
    }),
    { numRuns: 2000 },
  );
});

test('property: <n><unit> parses to n times the unit, in any case and spacing', () => {
  const units: Array<[string, number]> = [
    ['', 1], ['B', 1], ['KiB', KiB], ['MiB', MiB], ['GiB', GiB], ['TiB', TiB],
    ['KB', 1e3], ['MB', 1e6], ['GB', 1e9], ['TB', 1e12], ['Ki', KiB], ['M', 1e6],
  ];
  fc.assert(
    fc.property(fc.nat({ max: 4096 }), fc.constantFrom(...units), fc.boolean(), fc.constantFrom('', ' ', '  '), (n, [unit, mult], lower, space) => {
      const text = `${n}${space}${lower ? unit.toLowerCase() : unit}`;
      assert.equal(parseSize(text), n * mult);
    }),
  );
});

test('property: a plain number string is that many bytes', () => {
  fc.assert(fc.property(fc.maxSafeNat(), (n) => assert.equal(parseSize(String(n)), n)));
});
