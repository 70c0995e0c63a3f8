/**
 * The MetaStore contract: one suite that every backend must pass. A backend's test file calls
 * metaStoreContract with a function that opens a fresh, empty store for one test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import {
  MetaConflictError,
  MetaNotFoundError,
  userKey,
  type MetaStore,
  type NodeInfo,
  type PasswordHash,
} from '../../src/meta/meta-store.js';

export interface ContractHarness {
  store: MetaStore;
  /** Opens the same backing state again; the contract closes `store` before calling it. */
  reopen?: () => Promise<MetaStore>;
  /** Closes whatever the harness opened (close() is idempotent) and removes the state. */
  cleanup(): Promise<void>;
}

/** Returns undefined when the backend is unavailable and the test has been skipped. */
export type OpenStore = (t: TestContext) => Promise<ContractHarness | undefined>;

export function password(seed = randomBytes(8).toString('hex')): PasswordHash {
  return { algo: 'scrypt', N: 16384, r: 8, p: 1, salt: Buffer.from(`salt-${seed}`).toString('base64'), hash: randomBytes(32).toString('base64') };
}

const passwordArb: fc.Arbitrary<PasswordHash> = fc.record({
  algo: fc.constant('scrypt' as const),
  N: fc.integer({ min: 1, max: 20 }).map((e) => 2 ** e),
  r: fc.integer({ min: 1, max: 64 }),
  p: fc.integer({ min: 1, max: 16 }),
  salt: fc.uint8Array({ minLength: 0, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')),
  hash: fc.uint8Array({ minLength: 1, maxLength: 128 }).map((b) => Buffer.from(b).toString('base64')),
  // fc.record builds null-prototype objects; a store returns ordinary ones.
}).map((r) => ({ ...r }));

/** Characters whose case or normal form is easy to get wrong. */
const TRICKY = ['a', 'B', 'é', 'e\u0301', 'Å', 'A\u030a', '\u212b', 'ß', 'İ', 'ı', 'ǅ', 'Ω', 'ﬁ', 'Σ', 'ς', ':', '{', '}', ' ', '\u0000', '😀', '\u{10ffff}'];

const nameArb = fc.string({
  minLength: 1,
  maxLength: 12,
  unit: fc.oneof(fc.constantFrom(...TRICKY), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })),
});

function node(id: string, overrides: Partial<NodeInfo> = {}): NodeInfo {
  return { id, host: `${id}.example`, port: 548, version: '0.1.0', startedAt: 1_700_000_000_000, ...overrides };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function metaStoreContract(name: string, open: OpenStore): void {
  /** Runs `body` against a fresh store and always cleans up. */
  const withStore = (body: (h: ContractHarness, t: TestContext) => Promise<void>) => async (t: TestContext) => {
    const h = await open(t);
    if (!h) return;
    try {
      await body(h, t);
    } finally {
      await h.cleanup();
    }
  };

  describe(name, () => {
    describe('users', () => {
      it('creates a user with uid 1000 first, gid = uid by default, and reads it back', withStore(async ({ store }) => {
        const pw = password();
        const before = Date.now();
        const alice = await store.createUser({ name: 'Alice', password: pw });
        const after = Date.now();
        assert.equal(alice.name, 'Alice');
        assert.equal(alice.uid, 1000);
        assert.equal(alice.gid, 1000);
        assert.deepEqual(alice.password, pw);
        assert.ok(alice.createdAt >= before && alice.createdAt <= after, 'createdAt is the time of creation');
        assert.equal(alice.updatedAt, alice.createdAt);
        assert.deepEqual(await store.getUser('Alice'), alice);
        assert.deepEqual(await store.getUserByUid(1000), alice);

        const bob = await store.createUser({ name: 'bob', password: password(), gid: 20 });
        assert.equal(bob.uid, 1001);
        assert.equal(bob.gid, 20);
        assert.deepEqual(await store.getUser('bob'), bob);
      }));

      it('returns undefined for unknown names and uids', withStore(async ({ store }) => {
        assert.equal(await store.getUser('nobody'), undefined);
        assert.equal(await store.getUserByUid(1000), undefined);
        await store.createUser({ name: 'carol', password: password() });
        assert.equal(await store.getUserByUid(1001), undefined);
        assert.equal(await store.getUserByUid(0), undefined);
        assert.equal(await store.getUserByUid(-1), undefined);
        assert.equal(await store.getUserByUid(1000.5), undefined);
      }));

      it('looks names up case- and normalisation-insensitively, keeping the name as typed', withStore(async ({ store }) => {
        const created = await store.createUser({ name: 'Ren\u00e9e', password: password() });
        for (const variant of ['renée', 'RENÉE', 'Rene\u0301e', 'RENE\u0301E']) {
          assert.deepEqual(await store.getUser(variant), created, variant);
        }
        assert.equal((await store.getUser('renee'))?.name, undefined);
      }));

      it('rejects a duplicate name, in any case or normal form, with MetaConflictError', withStore(async ({ store }) => {
        const first = await store.createUser({ name: 'Dave', password: password() });
        for (const dup of ['Dave', 'dave', 'DAVE']) {
          await assert.rejects(store.createUser({ name: dup, password: password() }), MetaConflictError);
        }
        await store.createUser({ name: 'Zo\u00eb', password: password() });
        await assert.rejects(store.createUser({ name: 'zoe\u0308', password: password() }), MetaConflictError);
        assert.deepEqual(await store.getUser('dave'), first, 'the failed creates changed nothing');
        assert.equal((await store.createUser({ name: 'erin', password: password() })).uid, 1002, 'failed creates took no uid');
      }));

      it('sets a password, and refuses an unknown user with MetaNotFoundError', withStore(async ({ store }) => {
        const created = await store.createUser({ name: 'Frank', password: password() });
        await sleep(5);
        const pw = password();
        const updated = await store.setUserPassword('FRANK', pw);
        assert.deepEqual(updated.password, pw);
        assert.equal(updated.name, 'Frank');
        assert.equal(updated.uid, created.uid);
        assert.equal(updated.gid, created.gid);
        assert.equal(updated.createdAt, created.createdAt);
        assert.ok(updated.updatedAt > created.updatedAt, 'updatedAt moves forward');
        assert.deepEqual(await store.getUser('frank'), updated);
        assert.deepEqual(await store.getUserByUid(created.uid), updated);
        await assert.rejects(store.setUserPassword('ghost', password()), MetaNotFoundError);
        assert.equal(await store.getUser('ghost'), undefined, 'setUserPassword does not create');
      }));

      it('deletes a user and both of its index entries', withStore(async ({ store }) => {
        const gina = await store.createUser({ name: 'Gina', password: password() });
        assert.equal(await store.deleteUser('GINA'), true);
        assert.equal(await store.getUser('gina'), undefined);
        assert.equal(await store.getUserByUid(gina.uid), undefined);
        assert.deepEqual(await store.listUsers(), []);
        assert.equal(await store.deleteUser('gina'), false);
        assert.equal(await store.deleteUser('never-existed'), false);
        const again = await store.createUser({ name: 'gina', password: password() });
        assert.equal(again.name, 'gina', 'the name is free again');
      }));

      it('lists users sorted by name, case-insensitively', withStore(async ({ store }) => {
        assert.deepEqual(await store.listUsers(), []);
        const names = ['mallory', 'Bob', 'alice', 'Zed', 'carol'];
        const created = new Map<string, unknown>();
        for (const n of names) created.set(n, await store.createUser({ name: n, password: password() }));
        const listed = await store.listUsers();
        assert.deepEqual(listed.map((u) => u.name), ['alice', 'Bob', 'carol', 'mallory', 'Zed']);
        for (const u of listed) assert.deepEqual(u, created.get(u.name));
      }));

      it('never reuses a uid, even after deletes', withStore(async ({ store }) => {
        const a = await store.createUser({ name: 'a', password: password() });
        const b = await store.createUser({ name: 'b', password: password() });
        assert.deepEqual([a.uid, b.uid], [1000, 1001]);
        await store.deleteUser('b');
        assert.equal((await store.createUser({ name: 'c', password: password() })).uid, 1002);
        await store.deleteUser('a');
        await store.deleteUser('c');
        assert.equal((await store.createUser({ name: 'b', password: password() })).uid, 1003);
      }));

      it('lets exactly one of 10 concurrent creates of one name succeed', withStore(async ({ store }) => {
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) => store.createUser({ name: i % 2 ? 'SAME' : 'same', password: password(String(i)) })),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal(won.length, 1);
        for (const r of lost) assert.ok(r.reason instanceof MetaConflictError, String(r.reason));
        const winner = won[0]!.value;
        assert.deepEqual(await store.getUser('same'), winner);
        assert.deepEqual(await store.listUsers(), [winner]);
      }));

      it('gives concurrent creates of different names distinct uids', withStore(async ({ store }) => {
        const users = await Promise.all(Array.from({ length: 10 }, (_, i) => store.createUser({ name: `user${i}`, password: password() })));
        const uids = users.map((u) => u.uid).sort((x, y) => x - y);
        assert.deepEqual(uids, Array.from({ length: 10 }, (_, i) => 1000 + i));
        for (const u of users) assert.deepEqual(await store.getUserByUid(u.uid), u);
      }));

      it('round-trips arbitrary unicode names exactly', withStore(async ({ store }) => {
        await fc.assert(
          fc.asyncProperty(nameArb, async (n) => {
            const created = await store.createUser({ name: n, password: password() });
            assert.equal(created.name, n);
            assert.deepEqual(await store.getUser(n), created);
            assert.deepEqual(await store.getUserByUid(created.uid), created);
            assert.deepEqual(await store.listUsers(), [created]);
            assert.equal(await store.deleteUser(n), true);
          }),
          { numRuns: 60 },
        );
      }));

      it('treats names that differ only in case or NFC/NFD form as one', withStore(async ({ store }) => {
        const variantArb = fc.tuple(nameArb, fc.array(fc.boolean(), { maxLength: 12 }), fc.constantFrom('NFC', 'NFD') as fc.Arbitrary<'NFC' | 'NFD'>);
        await fc.assert(
          fc.asyncProperty(variantArb, async ([n, flips, form]) => {
            const variant = [...n].map((ch, i) => (flips[i] ? ch.toUpperCase() : ch.toLowerCase())).join('').normalize(form);
            // Some case mappings are not round trips (ß → SS → ss); those are different names.
            fc.pre(userKey(variant) === userKey(n));
            const created = await store.createUser({ name: n, password: password() });
            try {
              assert.deepEqual(await store.getUser(variant), created);
              await assert.rejects(store.createUser({ name: variant, password: password() }), MetaConflictError);
            } finally {
              assert.equal(await store.deleteUser(variant), true);
            }
          }),
          { numRuns: 60 },
        );
      }));

      it('round-trips password hashes exactly', withStore(async ({ store }) => {
        let i = 0;
        await fc.assert(
          fc.asyncProperty(passwordArb, passwordArb, async (pw1, pw2) => {
            const n = `pw${i++}`;
            assert.deepEqual((await store.createUser({ name: n, password: pw1 })).password, pw1);
            assert.deepEqual((await store.getUser(n))?.password, pw1);
            assert.deepEqual((await store.setUserPassword(n, pw2)).password, pw2);
            assert.deepEqual((await store.getUser(n))?.password, pw2);
          }),
          { numRuns: 30 },
        );
      }));
    });

    describe('server identity', () => {
      it('is a 16-byte Buffer, the same on every call', withStore(async ({ store }) => {
        const before = Date.now();
        const id = await store.serverIdentity();
        assert.ok(Buffer.isBuffer(id.signature), 'signature is a Buffer');
        assert.equal(id.signature.length, 16);
        assert.ok(id.createdAt >= before && id.createdAt <= Date.now());
        const again = await store.serverIdentity();
        assert.deepEqual(again, id);
        assert.ok(again.signature.equals(id.signature));
      }));

      it('is unaffected by a caller mutating a returned signature', withStore(async ({ store }) => {
        const id = await store.serverIdentity();
        const bytes = Buffer.from(id.signature);
        id.signature.fill(0);
        // Unrelated reads in between, in case a backend hands out views of a reused buffer.
        await store.createUser({ name: 'x', password: password() });
        await store.listUsers();
        assert.ok((await store.serverIdentity()).signature.equals(bytes));
      }));

      it('agrees on one identity across concurrent first calls', withStore(async ({ store }) => {
        const ids = await Promise.all(Array.from({ length: 10 }, () => store.serverIdentity()));
        for (const id of ids) assert.deepEqual(id, ids[0]);
      }));

      it('persists across a reopen, with users and the uid counter', withStore(async (h, t) => {
        if (!h.reopen) {
          t.skip('backend has no reopen');
          return;
        }
        const id = await h.store.serverIdentity();
        const kept = await h.store.createUser({ name: 'Kept', password: password() });
        await h.store.createUser({ name: 'gone', password: password() });
        await h.store.deleteUser('gone');
        await h.store.registerNode(node('n1'), 60_000);
        await h.store.close();

        const store = await h.reopen();
        const id2 = await store.serverIdentity();
        assert.ok(id2.signature.equals(id.signature), 'same signature bytes');
        assert.deepEqual(id2, id);
        assert.deepEqual(await store.getUser('kept'), kept);
        assert.deepEqual(await store.listUsers(), [kept]);
        assert.equal((await store.createUser({ name: 'next', password: password() })).uid, 1002);
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['n1']);
      }));
    });

    describe('node leases', () => {
      it('registers nodes and lists live ones sorted by id', withStore(async ({ store }) => {
        assert.deepEqual(await store.listNodes(), []);
        const before = Date.now();
        for (const id of ['node-b', 'node-a', 'node-c']) await store.registerNode(node(id), 10_000);
        const after = Date.now();
        const listed = await store.listNodes();
        assert.deepEqual(listed.map((n) => n.id), ['node-a', 'node-b', 'node-c']);
        for (const lease of listed) {
          const { expiresAt, ...info } = lease;
          assert.deepEqual(info, node(lease.id));
          // Backends may take the time from their own clock; allow a little skew.
          assert.ok(expiresAt >= before + 10_000 - 50 && expiresAt <= after + 10_000 + 50, `expiresAt ${expiresAt - before} ms ahead`);
        }
      }));

      it('stores only the NodeInfo fields', withStore(async ({ store }) => {
        const extra = { ...node('n1'), secret: 'not stored' };
        await store.registerNode(extra, 10_000);
        const [lease] = await store.listNodes();
        assert.ok(lease);
        assert.deepEqual(Object.keys(lease).sort(), ['expiresAt', 'host', 'id', 'port', 'startedAt', 'version']);
      }));

      it('refreshes a lease when a node registers again', withStore(async ({ store }) => {
        await store.registerNode(node('n1'), 10_000);
        await store.registerNode(node('n1', { host: 'moved.example', port: 10548, version: '0.2.0' }), 20_000);
        const listed = await store.listNodes();
        assert.equal(listed.length, 1);
        assert.equal(listed[0]!.host, 'moved.example');
        assert.equal(listed[0]!.port, 10548);
        assert.equal(listed[0]!.version, '0.2.0');
        assert.ok(listed[0]!.expiresAt > Date.now() + 15_000);
      }));

      it('renews a live lease so it outlives its first ttl', withStore(async ({ store }) => {
        await store.registerNode(node('n1'), 400);
        const first = (await store.listNodes())[0]!.expiresAt;
        await sleep(250);
        assert.equal(await store.renewNode('n1', 600), true);
        const renewed = (await store.listNodes())[0]!;
        assert.ok(renewed.expiresAt > first, 'expiresAt moved forward');
        assert.deepEqual({ ...renewed, expiresAt: 0 }, { ...node('n1'), expiresAt: 0 }, 'renewal keeps the info');
        await sleep(300);
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['n1'], 'alive after the first ttl');
      }));

      it('lets a lease lapse: gone from the list, and renew returns false', withStore(async ({ store }) => {
        await store.registerNode(node('short'), 200);
        await store.registerNode(node('long'), 10_000);
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['long', 'short']);
        await sleep(400);
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['long']);
        assert.equal(await store.renewNode('short', 10_000), false);
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['long'], 'a failed renew does not revive');
        await store.registerNode(node('short'), 10_000);
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['long', 'short'], 'registering again does');
      }));

      it('unregisters a node; renew of an unknown node is false', withStore(async ({ store }) => {
        await store.registerNode(node('n1'), 10_000);
        await store.registerNode(node('n2'), 10_000);
        await store.unregisterNode('n1');
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['n2']);
        assert.equal(await store.renewNode('n1', 10_000), false);
        assert.equal(await store.renewNode('never', 10_000), false);
        await store.unregisterNode('never');
        assert.deepEqual((await store.listNodes()).map((n) => n.id), ['n2']);
      }));

      it('rejects a ttl that is not a positive integer', withStore(async ({ store }) => {
        for (const ttl of [0, -1, 1.5, Number.NaN]) {
          await assert.rejects(store.registerNode(node('n1'), ttl), RangeError);
        }
        assert.deepEqual(await store.listNodes(), []);
      }));
    });

    describe('named leases', () => {
      it('is claimed when free, renewed by its holder, and refused to another holder while live', withStore(async ({ store }) => {
        assert.equal(await store.leaseHolder('advertiser'), undefined);
        assert.equal(await store.claimLease('advertiser', 'node-a', 10_000), true);
        assert.equal(await store.leaseHolder('advertiser'), 'node-a');
        assert.equal(await store.claimLease('advertiser', 'node-b', 10_000), false);
        assert.equal(await store.leaseHolder('advertiser'), 'node-a', 'a refused claim changes nothing');
        assert.equal(await store.claimLease('advertiser', 'node-a', 10_000), true, 'the holder renews');
        assert.equal(await store.leaseHolder('advertiser'), 'node-a');
        // Names are independent.
        assert.equal(await store.claimLease('other', 'node-b', 10_000), true);
        assert.equal(await store.leaseHolder('other'), 'node-b');
        assert.equal(await store.leaseHolder('advertiser'), 'node-a');
        assert.equal(await store.leaseHolder('never-claimed'), undefined);
      }));

      it('renewal outlives the first ttl', withStore(async ({ store }) => {
        assert.equal(await store.claimLease('l', 'a', 400), true);
        await sleep(250);
        assert.equal(await store.claimLease('l', 'a', 600), true);
        await sleep(300);
        assert.equal(await store.leaseHolder('l'), 'a', 'alive after the first ttl');
        assert.equal(await store.claimLease('l', 'b', 10_000), false);
      }));

      it('lapses: another holder takes it, and the old holder is refused', withStore(async ({ store }) => {
        assert.equal(await store.claimLease('l', 'a', 200), true);
        await sleep(400);
        assert.equal(await store.leaseHolder('l'), undefined, 'a lapsed lease has no holder');
        assert.equal(await store.claimLease('l', 'b', 10_000), true, 'taken after the lapse');
        assert.equal(await store.leaseHolder('l'), 'b');
        assert.equal(await store.claimLease('l', 'a', 10_000), false, 'the old holder cannot renew it back');
      }));

      it('is released by its holder only; a release by anyone else is a no-op', withStore(async ({ store }) => {
        assert.equal(await store.claimLease('l', 'a', 10_000), true);
        await store.releaseLease('l', 'b');
        assert.equal(await store.leaseHolder('l'), 'a', 'a non-holder cannot release it');
        assert.equal(await store.claimLease('l', 'b', 10_000), false);
        await store.releaseLease('l', 'a');
        assert.equal(await store.leaseHolder('l'), undefined);
        await store.releaseLease('l', 'a');
        await store.releaseLease('never-claimed', 'a');
        assert.equal(await store.claimLease('l', 'b', 10_000), true, 'free again at once');
        assert.equal(await store.leaseHolder('l'), 'b');
      }));

      it('gives exactly one of 10 concurrent claimants the lease', withStore(async ({ store }) => {
        const won = await Promise.all(Array.from({ length: 10 }, (_, i) => store.claimLease('l', `node-${i}`, 10_000)));
        assert.equal(won.filter(Boolean).length, 1);
        assert.equal(await store.leaseHolder('l'), `node-${won.indexOf(true)}`);
      }));

      it('rejects a ttl that is not a positive integer, and an empty name or holder', withStore(async ({ store }) => {
        for (const ttl of [0, -1, 1.5, Number.NaN]) {
          await assert.rejects(store.claimLease('l', 'a', ttl), RangeError);
        }
        assert.equal(await store.leaseHolder('l'), undefined);
        await assert.rejects(store.claimLease('', 'a', 10_000), RangeError);
        await assert.rejects(store.claimLease('l', '', 10_000), RangeError);
        await assert.rejects(store.releaseLease('l', ''), RangeError);
        await assert.rejects(store.leaseHolder(''), RangeError);
        assert.equal(await store.leaseHolder('l'), undefined);
      }));
    });
  });
}
