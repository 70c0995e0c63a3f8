import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

import { Cast128, cast128CbcDecrypt, cast128CbcEncrypt } from '../../src/auth/cast128.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// RFC 2144 Appendix B uses this value both as the 128-bit key (B.1) and as the
// initial a and b registers (B.2).
const RFC_KEY = '0123456712345678234567893456789a';

test('RFC 2144 B.1: single-block vector with a 128-bit key', () => {
  const cipher = new Cast128(hex(RFC_KEY));
  const plain = hex('0123456789abcdef');
  const ct = new Uint8Array(8);
  cipher.encryptBlock(plain, 0, ct, 0);
  assert.equal(Buffer.from(ct).toString('hex'), '238b4fe5847e44b2');

  const back = new Uint8Array(8);
  cipher.decryptBlock(ct, 0, back, 0);
  assert.equal(Buffer.from(back).toString('hex'), '0123456789abcdef');
});

test('encryptBlock/decryptBlock honour offsets and work in place', () => {
  const cipher = new Cast128(hex(RFC_KEY));
  const buf = Buffer.concat([Buffer.from([0xaa, 0xbb, 0xcc]), hex('0123456789abcdef'), Buffer.from([0xdd])]);
  cipher.encryptBlock(buf, 3, buf, 3);
  assert.equal(buf.toString('hex'), 'aabbcc' + '238b4fe5847e44b2' + 'dd');
  cipher.decryptBlock(buf, 3, buf, 3);
  assert.equal(buf.toString('hex'), 'aabbcc' + '0123456789abcdef' + 'dd');
});

test('RFC 2144 B.2: full maintenance test (1,000,000 iterations)', (t) => {
  // a = (aL, aR), b = (bL, bR); each iteration encrypts both halves of a under key
  // b, then both halves of b under the updated a. This exercises 2,000,000 key
  // schedules, so it catches any wrong S5..S8 entry or schedule step.
  const a = hex(RFC_KEY);
  const b = hex(RFC_KEY);
  const started = performance.now();
  for (let i = 0; i < 1_000_000; i++) {
    const cb = new Cast128(b);
    cb.encryptBlock(a, 0, a, 0);
    cb.encryptBlock(a, 8, a, 8);
    const ca = new Cast128(a);
    ca.encryptBlock(b, 0, b, 0);
    ca.encryptBlock(b, 8, b, 8);
  }
  t.diagnostic(`maintenance test took ${Math.round(performance.now() - started)} ms`);
  assert.equal(a.toString('hex'), 'eea9d0a249fd3ba6b3436fb89d6dca92');
  assert.equal(b.toString('hex'), 'b2c95eb00c31ad7180ac05b8e83d696e');
});

// The expected value was produced by OpenSSL 3.0 (`openssl enc -cast5-cbc -nopad`
// with the legacy provider, and node's cast5-cbc), not by this implementation.
test('CBC check value', () => {
  const key = Buffer.alloc(16, 0x01);
  const iv = Buffer.from('LWallace', 'ascii');
  const plain = Buffer.alloc(16);
  const ct = cast128CbcEncrypt(key, iv, plain);
  assert.ok(Buffer.isBuffer(ct));
  assert.equal(ct.toString('hex'), 'f9e114334850a3e0f9fdc88b9cf407f0');
  assert.deepEqual(cast128CbcDecrypt(key, iv, ct), plain);
});

test('CBC restarts from the given IV on every call and does not touch its inputs', () => {
  const key = Buffer.alloc(16, 0x01);
  const iv = Buffer.from('LWallace', 'ascii');
  const plain = Buffer.alloc(16);
  const first = cast128CbcEncrypt(key, iv, plain);
  const second = cast128CbcEncrypt(key, iv, plain);
  assert.deepEqual(second, first);
  assert.notEqual(second, first);
  assert.equal(iv.toString('ascii'), 'LWallace');
  assert.deepEqual(plain, Buffer.alloc(16));
  assert.deepEqual(cast128CbcEncrypt(key, iv, Buffer.alloc(0)), Buffer.alloc(0));
});

test('bad key, IV, data length and block offsets throw RangeError', () => {
  for (const n of [0, 5, 15, 17, 32]) {
    assert.throws(() => new Cast128(new Uint8Array(n)), RangeError, `key of ${n} bytes`);
    assert.throws(() => cast128CbcEncrypt(new Uint8Array(n), new Uint8Array(8), new Uint8Array(8)), RangeError);
  }
  const key = new Uint8Array(16);
  for (const n of [1, 7, 9, 15, 17]) {
    assert.throws(() => cast128CbcEncrypt(key, new Uint8Array(8), new Uint8Array(n)), RangeError, `data of ${n} bytes`);
    assert.throws(() => cast128CbcDecrypt(key, new Uint8Array(8), new Uint8Array(n)), RangeError, `data of ${n} bytes`);
  }
  for (const n of [0, 7, 9, 16]) {
    assert.throws(() => cast128CbcEncrypt(key, new Uint8Array(n), new Uint8Array(8)), RangeError, `IV of ${n} bytes`);
    assert.throws(() => cast128CbcDecrypt(key, new Uint8Array(n), new Uint8Array(8)), RangeError, `IV of ${n} bytes`);
  }
  const cipher = new Cast128(key);
  const buf = new Uint8Array(16);
  assert.throws(() => cipher.encryptBlock(buf, 9, buf, 0), RangeError);
  assert.throws(() => cipher.encryptBlock(buf, 0, buf, 9), RangeError);
  assert.throws(() => cipher.decryptBlock(buf, -1, buf, 0), RangeError);
  assert.throws(() => cipher.decryptBlock(buf, 0, new Uint8Array(7), 0), RangeError);
});

// --- Cross-check against OpenSSL's cast5-cbc -------------------------------------

// Child exit code meaning "this Node/OpenSSL cannot do cast5 at all".
const NO_CAST5 = 77;

// Runs in a separate process because the legacy provider can only be enabled at
// startup. Reads JSON cases on stdin and returns OpenSSL's encryption and
// decryption of each case's data, so both directions are checked against it.
const CHILD = `
const crypto = require('node:crypto');
try {
  crypto.createCipheriv('cast5-cbc', Buffer.alloc(16), Buffer.alloc(8));
} catch (err) {
  process.stderr.write('cast5-cbc unavailable: ' + (err && err.message) + '\\n');
  process.exit(${NO_CAST5});
}
const run = (c, data) => {
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]).toString('hex');
};
const chunks = [];
process.stdin.on('data', (d) => chunks.push(d));
process.stdin.on('end', () => {
  const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const out = cases.map(({ key, iv, data }) => {
    const k = Buffer.from(key, 'hex'), v = Buffer.from(iv, 'hex'), d = Buffer.from(data, 'hex');
    return {
      enc: run(crypto.createCipheriv('cast5-cbc', k, v), d),
      dec: run(crypto.createDecipheriv('cast5-cbc', k, v), d),
    };
  });
  process.stdout.write(JSON.stringify(out));
});
`;

/** mulberry32: a fixed seed keeps any failure reproducible across runs. */
function prng(seed: number): (n: number) => Buffer {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (x ^ (x >>> 14)) >>> 0;
  };
  return (n) => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = next() & 0xff;
    return out;
  };
}

test('cast5-cbc matches OpenSSL (legacy provider) in both directions', (t) => {
  const bytes = prng(0xca57128);
  const cases = Array.from({ length: 256 }, (_, i) => ({
    key: bytes(16),
    iv: bytes(8),
    // 0..16 blocks, including empty input.
    data: bytes(8 * (i % 17)),
  }));

  const child = spawnSync(process.execPath, ['--openssl-legacy-provider', '--input-type=commonjs', '-e', CHILD], {
    input: JSON.stringify(cases.map((c) => ({ key: c.key.toString('hex'), iv: c.iv.toString('hex'), data: c.data.toString('hex') }))),
    encoding: 'utf8',
    timeout: 60_000,
  });
  const stderr = child.stderr ?? '';
  // Exit 9 with "bad option" is Node built without OpenSSL 3 (no such flag).
  const unavailable = child.status === NO_CAST5 || (child.status === 9 && /bad option/i.test(stderr));
  if (unavailable) {
    const reason = `OpenSSL cast5 via the legacy provider is unavailable: ${stderr.trim()}`;
    if (process.env.CI === 'true') assert.fail(reason);
    t.skip(reason);
    return;
  }
  assert.equal(child.error, undefined, `child failed to run: ${child.error?.message}`);
  assert.equal(child.status, 0, `child exited with ${child.status}: ${stderr}`);

  const results = JSON.parse(child.stdout) as Array<{ enc: string; dec: string }>;
  assert.equal(results.length, cases.length);
  cases.forEach((c, i) => {
    const label = `case ${i} (key ${c.key.toString('hex')}, iv ${c.iv.toString('hex')}, ${c.data.length} bytes)`;
    const r = results[i]!;
    assert.equal(cast128CbcEncrypt(c.key, c.iv, c.data).toString('hex'), r.enc, `encrypt ${label}`);
    assert.equal(cast128CbcDecrypt(c.key, c.iv, c.data).toString('hex'), r.dec, `decrypt ${label}`);
    assert.deepEqual(cast128CbcDecrypt(c.key, c.iv, Buffer.from(r.enc, 'hex')), c.data, `round trip ${label}`);
  });
});
