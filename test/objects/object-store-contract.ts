/**
 * The ObjectStore contract: one suite that every backend must pass. A backend's test file calls
 * objectStoreContract with a function that opens a fresh, empty store for one test.
 *
 * Listing-order tests use keys of one depth whose segments are letters and digits: s3rver lists
 * in the order of its own directory walk, which differs from S3's byte order where a key is
 * also a "directory" of others ("a" and "a/b") or is followed by a character below "." ("a"
 * and "a-b"). The fs store's own tests cover those keys.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { InvalidObjectKeyError, ObjectNotFoundError, ObjectStoreError } from '../../src/objects/errors.js';
import type { ListOptions, ObjectInfo, ObjectStore } from '../../src/objects/object-store.js';

export interface ContractHarness {
  store: ObjectStore;
  /** Closes what the harness opened (close() is idempotent) and removes the state. */
  cleanup(): Promise<void>;
}

export type OpenStore = (t: TestContext) => Promise<ContractHarness>;

const MiB = 1024 * 1024;

export async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of it) out.push(info);
  return out;
}

export async function keysOf(store: ObjectStore, prefix: string, opts?: ListOptions): Promise<string[]> {
  return (await collect(store.list(prefix, opts))).map((i) => i.key);
}

/** Runs fn over items with at most `width` in flight. */
export async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const pad = (n: number) => String(n).padStart(5, '0');

export function objectStoreContract(name: string, open: OpenStore): void {
  describe(`${name}: ObjectStore contract`, () => {
    const withStore = (fn: (store: ObjectStore) => Promise<void>) => async (t: TestContext) => {
      const h = await open(t);
      try {
        await fn(h.store);
      } finally {
        await h.cleanup();
      }
    };

    it('puts, gets and heads an object', withStore(async (s) => {
      const body = randomBytes(1000);
      await s.put('vol/1/0-1', body);
      assert.deepEqual(await s.get('vol/1/0-1'), body);
      assert.deepEqual(await s.head('vol/1/0-1'), { size: 1000 });
    }));

    it('reports a missing key: get throws ObjectNotFoundError, head gives undefined', withStore(async (s) => {
      await assert.rejects(s.get('vol/1/nope'), (err: unknown) => {
        assert.ok(err instanceof ObjectNotFoundError, String(err));
        assert.ok(err instanceof ObjectStoreError);
        assert.equal(err.key, 'vol/1/nope');
        return true;
      });
      await assert.rejects(s.get('vol/1/nope', { offset: 0, length: 10 }), ObjectNotFoundError);
      await assert.rejects(s.get('vol/1/nope', { offset: 5, length: 0 }), ObjectNotFoundError);
      assert.equal(await s.head('vol/1/nope'), undefined);
    }));

    it('gets byte ranges, clipped at the end of the object', withStore(async (s) => {
      const body = randomBytes(100);
      await s.put('r/obj', body);
      const cases: [offset: number, length: number, expected: Buffer][] = [
        [0, 1, body.subarray(0, 1)], // s3rver answers bytes=0-0 with the whole object
        [0, 100, body],
        [10, 20, body.subarray(10, 30)],
        [99, 1, body.subarray(99)],
        [90, 50, body.subarray(90)], // reaches past the end: what exists
        [100, 10, Buffer.alloc(0)], // starts at the end
        [5000, 10, Buffer.alloc(0)], // starts past the end
        [0, 0, Buffer.alloc(0)],
        [50, 0, Buffer.alloc(0)],
        [500, 0, Buffer.alloc(0)],
      ];
      for (const [offset, length, expected] of cases) {
        assert.deepEqual(await s.get('r/obj', { offset, length }), expected, `offset ${offset} length ${length}`);
      }
    }));

    it('gets a range of a one-byte object', withStore(async (s) => {
      await s.put('r/one', Buffer.from([0xa5]));
      assert.deepEqual(await s.get('r/one', { offset: 0, length: 1 }), Buffer.from([0xa5]));
      assert.deepEqual(await s.get('r/one', { offset: 0, length: 10 }), Buffer.from([0xa5]));
      assert.deepEqual(await s.get('r/one', { offset: 1, length: 10 }), Buffer.alloc(0));
    }));

    it('refuses a negative or fractional range', withStore(async (s) => {
      await s.put('r/x', Buffer.from('x'));
      await assert.rejects(s.get('r/x', { offset: -1, length: 1 }), RangeError);
      await assert.rejects(s.get('r/x', { offset: 0, length: 1.5 }), RangeError);
    }));

    it('deletes idempotently', withStore(async (s) => {
      await s.put('d/1/a', Buffer.from('a'));
      await s.put('d/1/b', Buffer.from('b'));
      await s.delete('d/1/a');
      await assert.rejects(s.get('d/1/a'), ObjectNotFoundError);
      assert.equal(await s.head('d/1/a'), undefined);
      await s.delete('d/1/a');
      await s.delete('d/2/never-was');
      assert.deepEqual(await keysOf(s, ''), ['d/1/b']);
      assert.deepEqual(await s.get('d/1/b'), Buffer.from('b'));
    }));

    it('lets a deleted key be written again', withStore(async (s) => {
      await s.put('d/k', Buffer.from('one'));
      await s.delete('d/k');
      await s.put('d/k', Buffer.from('two'));
      assert.deepEqual(await s.get('d/k'), Buffer.from('two'));
    }));

    it('lists by prefix, in order, with sizes', withStore(async (s) => {
      const keys = ['a/1/x', 'a/2/x', 'ab/1/x', 'b/1/x', 'a/10/x', 'B/1/x'];
      for (const [i, k] of keys.entries()) await s.put(k, Buffer.alloc(i));
      const all = await collect(s.list(''));
      assert.deepEqual(
        all.map((i) => i.key),
        ['B/1/x', 'a/1/x', 'a/10/x', 'a/2/x', 'ab/1/x', 'b/1/x'],
      );
      for (const info of all) assert.equal(info.size, keys.indexOf(info.key), info.key);
      assert.deepEqual(await keysOf(s, 'a/'), ['a/1/x', 'a/10/x', 'a/2/x']);
      assert.deepEqual(await keysOf(s, 'a'), ['a/1/x', 'a/10/x', 'a/2/x', 'ab/1/x']);
      assert.deepEqual(await keysOf(s, 'a/1'), ['a/1/x', 'a/10/x']);
      assert.deepEqual(await keysOf(s, 'a/1/x'), ['a/1/x']);
      assert.deepEqual(await keysOf(s, 'c'), []);
      assert.deepEqual(await keysOf(s, 'a/1/xy'), []);
    }));

    it('lists after a key, which need not exist, and up to a limit', withStore(async (s) => {
      for (const k of ['k/b', 'k/d', 'k/f', 'm/a']) await s.put(k, Buffer.from(k));
      assert.deepEqual(await keysOf(s, 'k/', { after: 'k/b' }), ['k/d', 'k/f']);
      assert.deepEqual(await keysOf(s, 'k/', { after: 'k/c' }), ['k/d', 'k/f']);
      assert.deepEqual(await keysOf(s, 'k/', { after: 'a' }), ['k/b', 'k/d', 'k/f']);
      assert.deepEqual(await keysOf(s, 'k/', { after: 'k/f' }), []);
      assert.deepEqual(await keysOf(s, 'k/', { after: 'z' }), []);
      assert.deepEqual(await keysOf(s, '', { after: 'k/e' }), ['k/f', 'm/a']);
      assert.deepEqual(await keysOf(s, 'k/', { limit: 2 }), ['k/b', 'k/d']);
      assert.deepEqual(await keysOf(s, 'k/', { after: 'k/b', limit: 1 }), ['k/d']);
      assert.deepEqual(await keysOf(s, 'k/', { limit: 0 }), []);
      assert.throws(() => s.list('k/', { limit: -1 }), RangeError);
    }));

    it('pages through more than 1,000 keys', withStore(async (s) => {
      const keys = Array.from({ length: 1200 }, (_, i) => `p/${pad(i)}`);
      await inParallel(keys, 16, (k) => s.put(k, Buffer.from(k)));
      await s.put('pz', Buffer.from('outside the prefix'));
      await s.put('o/1', Buffer.from('before the prefix'));

      const all = await collect(s.list('p/'));
      assert.equal(all.length, 1200);
      assert.deepEqual(all.map((i) => i.key), keys);
      assert.ok(all.every((i) => i.size === 7));
      // When each object was written (verify judges unreferenced objects by their age).
      assert.ok(all.every((i) => i.lastModified !== undefined && Math.abs(i.lastModified - Date.now()) < 3_600_000), 'every listed object says when it was written');
      assert.deepEqual(await keysOf(s, 'p/', { limit: 1100 }), keys.slice(0, 1100));
      assert.deepEqual(await keysOf(s, 'p/', { after: keys[999] }), keys.slice(1000));
      assert.deepEqual(await keysOf(s, 'p/', { after: keys[99] }), keys.slice(100));
      assert.deepEqual(await keysOf(s, 'p/', { after: keys[99], limit: 1050 }), keys.slice(100, 1150));
      assert.equal((await keysOf(s, '')).length, 1202);

      // A consumer that stops early must not leave the listing running or broken.
      const first: string[] = [];
      for await (const info of s.list('p/')) {
        first.push(info.key);
        if (first.length === 3) break;
      }
      assert.deepEqual(first, keys.slice(0, 3));
    }));

    it('keeps random payloads exact, from 0 bytes up', withStore(async (s) => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 70_000 }), async (bytes) => {
          const body = Buffer.from(bytes);
          const key = `bin/${n++}`;
          await s.put(key, body);
          assert.deepEqual(await s.get(key), body);
          assert.deepEqual(await s.head(key), { size: body.length });
        }),
        { numRuns: 40 },
      );
    }));

    it('keeps 0-byte, 1-byte and 4 MiB objects exact', withStore(async (s) => {
      const big = randomBytes(4 * MiB);
      const bodies: [string, Buffer][] = [
        ['e/zero', Buffer.alloc(0)],
        ['e/one', Buffer.from([0])],
        ['e/ff', Buffer.from([0xff])],
        ['e/big', big],
      ];
      for (const [k, b] of bodies) await s.put(k, b);
      for (const [k, b] of bodies) {
        const got = await s.get(k);
        assert.equal(got.length, b.length, k);
        assert.ok(got.equals(b), `${k} differs`);
        assert.deepEqual(await s.head(k), { size: b.length });
      }
      assert.ok((await s.get('e/big', { offset: 3 * MiB + 7, length: MiB })).equals(big.subarray(3 * MiB + 7)));
      assert.ok((await s.get('e/big', { offset: MiB, length: 65536 })).equals(big.subarray(MiB, MiB + 65536)));
      assert.deepEqual(await s.get('e/zero', { offset: 0, length: 0 }), Buffer.alloc(0));
    }));

    it('takes concurrent puts', withStore(async (s) => {
      const bodies = Array.from({ length: 24 }, (_, i) => [`c/${i % 3}/${i}`, randomBytes(1 + i * 5000)] as const);
      await Promise.all(bodies.map(([k, b]) => s.put(k, b)));
      await Promise.all(bodies.map(async ([k, b]) => assert.ok((await s.get(k)).equals(b), k)));
      assert.equal((await keysOf(s, 'c/')).length, 24);
    }));

    it('keeps keys exact: case, spaces, punctuation, non-ASCII', withStore(async (s) => {
      const keys = ['u/Mixed', 'u/mixed', 'u/MIXED', 'u/a b+c=d,e(f)&g', 'u/caf\u00e9', 'u/cafe\u0301', 'u/%41', 'u/~x', 'u/\u{1F600}'];
      for (const k of keys) await s.put(k, Buffer.from(k, 'utf8'));
      for (const k of keys) assert.equal((await s.get(k)).toString('utf8'), k);
      assert.deepEqual(new Set(await keysOf(s, 'u/')), new Set(keys));
    }));

    it('refuses malformed keys before touching the backend', withStore(async (s) => {
      const bad = ['', '/a', 'a/', 'a//b', '.', '..', 'a/../b', 'a/./b', 'a\u0000b', 'a\nb', 'x'.repeat(1025), 'a\uD800'];
      for (const k of bad) {
        await assert.rejects(s.put(k, Buffer.from('x')), InvalidObjectKeyError, JSON.stringify(k));
        await assert.rejects(s.get(k), InvalidObjectKeyError);
        await assert.rejects(s.head(k), InvalidObjectKeyError);
        await assert.rejects(s.delete(k), InvalidObjectKeyError);
      }
      assert.deepEqual(await keysOf(s, ''), []);
    }));

    it('refuses use after close', withStore(async (s) => {
      await s.close();
      await s.close();
      await assert.rejects(s.put('a', Buffer.from('x')), ObjectStoreError);
      await assert.rejects(s.get('a'), ObjectStoreError);
      assert.throws(() => s.list(''), ObjectStoreError);
    }));
  });
}
