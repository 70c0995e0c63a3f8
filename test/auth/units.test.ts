import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LoginThrottle } from '../../src/auth/login-throttle.js';
import { nonceAdd, passwordFromField } from '../../src/auth/uam.js';
import { hashPassword, verifyPassword } from '../../src/auth/password.js';
import { bigIntToBytes, bytesToBigInt, modPow } from '../../src/auth/bigint.js';

test('login throttle: free failures, then doubling delays up to the cap', () => {
  const th = new LoginThrottle({ freeFailures: 3, maxDelayMs: 2000 });
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    th.failed('10.0.0.1', 'alice');
    delays.push(th.delayFor('10.0.0.1'));
  }
  assert.deepEqual(delays, [0, 0, 0, 250, 500, 1000, 2000, 2000]);
  assert.equal(th.delayFor('10.0.0.2'), 0, 'other addresses are unaffected');
  assert.equal(th.delayFor('10.0.0.2', 'ALICE'), 2000, 'the user is slowed from any address');
});

test('login throttle: a success clears only that user, never the address', () => {
  const th = new LoginThrottle({ freeFailures: 0, maxDelayMs: 2000 });
  th.failed('10.0.0.1', 'alice');
  th.succeeded('mallory');
  assert.equal(th.delayFor('10.0.0.1'), 250, "logging in to one's own account does not reset the address");
  th.succeeded('alice');
  assert.equal(th.delayFor('10.0.0.3', 'alice'), 0);
  assert.equal(th.delayFor('10.0.0.1', 'alice'), 250);
});

test('login throttle counts an IPv6 /64 as one address', () => {
  const th = new LoginThrottle({ freeFailures: 0, maxDelayMs: 2000 });
  th.failed('2001:db8:1:2::1');
  assert.equal(th.delayFor('2001:db8:1:2:ffff::9'), 250);
  assert.equal(th.delayFor('2001:db8:1:3::1'), 0);
  th.failed('::ffff:192.0.2.1');
  assert.equal(th.delayFor('192.0.2.1'), 250, 'v4-mapped addresses count as IPv4');
});

test('login throttle forgets failures outside its window', () => {
  let now = 1_000_000;
  const th = new LoginThrottle({ freeFailures: 0, maxDelayMs: 1000, windowMs: 60_000, now: () => now });
  th.failed('a');
  assert.equal(th.delayFor('a'), 250);
  now += 60_001;
  assert.equal(th.delayFor('a'), 0);
  th.failed('a');
  assert.equal(th.delayFor('a'), 250, 'an old failure does not count towards a new streak');
});

test('128-bit nonce arithmetic wraps and keeps 16 bytes', () => {
  assert.deepEqual(nonceAdd(Buffer.alloc(16, 0xff), 1), Buffer.alloc(16));
  assert.deepEqual(nonceAdd(Buffer.alloc(16), -1), Buffer.alloc(16, 0xff));
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      const n = Buffer.from(b);
      const up = nonceAdd(n, 1);
      assert.equal(up.length, 16);
      assert.deepEqual(nonceAdd(up, -1), n);
      assert.equal(bytesToBigInt(up), (bytesToBigInt(n) + 1n) % 2n ** 128n);
    }),
  );
});

test('password fields stop at the first NUL', () => {
  assert.equal(passwordFromField(Buffer.from('abc\0\0\0\0\0')), 'abc');
  assert.equal(passwordFromField(Buffer.from('12345678')), '12345678');
});

test('bigint helpers: left-padded fields and modular exponentiation', () => {
  assert.deepEqual(bigIntToBytes(1n, 4), Buffer.from([0, 0, 0, 1]));
  assert.throws(() => bigIntToBytes(2n ** 40n, 4), RangeError);
  assert.equal(modPow(4n, 13n, 497n), 445n);
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n }), (v) => assert.equal(bytesToBigInt(bigIntToBytes(v, 9)), v)));
});

test('scrypt hashes verify the right password only and carry their parameters', async () => {
  const h = await hashPassword('hunter2', { N: 1024, r: 8, p: 1 });
  assert.equal(h.N, 1024);
  assert.ok(await verifyPassword('hunter2', h));
  assert.ok(!(await verifyPassword('hunter3', h)));
  const h2 = await hashPassword('hunter2', { N: 1024, r: 8, p: 1 });
  assert.notEqual(h2.salt, h.salt, 'a fresh salt every time');
});

test('the default scrypt cost (N=32768, r=8) fits the memory limit we pass', async () => {
  const h = await hashPassword('x');
  assert.ok(await verifyPassword('x', h));
});

test('password gate: bounded concurrency, one check per address, none for closed connections', async () => {
  const { PasswordGate, LoginBusyError } = await import('../../src/auth/password-gate.js');
  const gate = new PasswordGate({ concurrency: 2, maxWaiting: 2 });
  let running = 0;
  let peak = 0;
  const release: (() => void)[] = [];
  const slow = (): Promise<string> =>
    new Promise((resolve) => {
      running++;
      peak = Math.max(peak, running);
      release.push(() => {
        running--;
        resolve('ok');
      });
    });
  const a = gate.run('10.0.0.1', () => true, slow);
  await assert.rejects(gate.run('10.0.0.1', () => true, slow), LoginBusyError, 'one login at a time per address');
  const b = gate.run('10.0.0.2', () => true, slow);
  const c = gate.run('10.0.0.3', () => true, slow);
  const d = gate.run('10.0.0.4', () => false, slow).then(() => 'ran', (e: unknown) => e);
  await assert.rejects(gate.run('10.0.0.5', () => true, slow), LoginBusyError, 'the waiting line is bounded');
  await new Promise((r) => setImmediate(r));
  assert.equal(peak, 2);
  while (release.length) {
    release.shift()!();
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await Promise.all([a, b, c]), ['ok', 'ok', 'ok']);
  assert.ok((await d) instanceof LoginBusyError, 'the check of a closed connection never runs');
  assert.equal(peak, 2);
});
