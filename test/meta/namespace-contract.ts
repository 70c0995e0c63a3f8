/**
 * The NamespaceStore contract: one suite that every metadata backend must pass. A backend's
 * test file calls namespaceContract with a function that opens a fresh, empty MetaStore for
 * one test; the suite reaches namespaces through MetaStore.namespace().
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { BlockChange, BlockRef, ForkCommit, GcEntry } from '../../src/meta/block-maps.js';
import { compareGcEntries } from '../../src/meta/block-map-records.js';
import type { ForkKind } from '../../src/meta/forks.js';
import type { MetaStore } from '../../src/meta/meta-store.js';
import {
  FIRST_FREE_ID,
  NamespaceError,
  PARENT_OF_ROOT,
  ROOT_ID,
  type NamespaceFailure,
  type NamespaceStore,
  type NodeInit,
  type NodeKind,
  type NodePatch,
  type NodeRecord,
} from '../../src/meta/namespace.js';
import { compareKeys } from '../../src/meta/records.js';

export interface NamespaceHarness {
  store: MetaStore;
  /** A second store on the same backing state, like the other node of a pair. */
  peer?: MetaStore;
  /** Opens the same backing state again; the contract closes `store` (and `peer`) first. */
  reopen?: () => Promise<MetaStore>;
  /** Closes whatever the harness opened (close() is idempotent) and removes the state. */
  cleanup(): Promise<void>;
}

/** Returns undefined when the backend is unavailable and the test has been skipped. */
export type OpenNamespaceStore = (t: TestContext) => Promise<NamespaceHarness | undefined>;

export interface NamespaceContractOptions {
  /** Entries in the one very large directory the suite builds and pages through. */
  bigDirectory?: number;
}

/** A case-insensitive volume, as the volume layer folds names. */
export const FOLD = (s: string) => s.normalize('NFC').toLowerCase();
const OPTS = { fold: FOLD };
const ROOT_INIT: NodeInit = { uid: 0, gid: 0, mode: 0o755 };
const FILE_INIT: NodeInit = { uid: 501, gid: 20, mode: 0o644 };
const DIR_INIT: NodeInit = { uid: 501, gid: 20, mode: 0o755 };
const T0 = 1_700_000_000_000;

/** Names whose order differs between UTF-16 code units and UTF-8 bytes, or whose fold is tricky. */
const TRICKY = ['a', 'B', 'é', 'e\u0301', 'Å', 'A\u030a', '\u212b', 'ß', 'İ', 'ı', 'ǅ', 'Ω', 'ﬁ', 'Σ', 'ς', ':', '{', '}', ' ', '\u0001', '😀', '\u{10ffff}', '\uff21', '\ufffd', '\ue000'];

/** Well-formed names only: lone surrogates are refused (RangeError) before they reach a store. */
const nameArb = fc.string({
  minLength: 1,
  maxLength: 12,
  unit: fc.oneof(fc.constantFrom(...TRICKY), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })),
});

async function rejectsWith(p: Promise<unknown>, reason: NamespaceFailure): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof NamespaceError, `expected NamespaceError(${reason}), got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    return true;
  });
}

/** What a test wants to know about a call that may fail: the id it produced, or why not. */
async function outcome(p: Promise<NodeRecord>): Promise<number | NamespaceFailure> {
  try {
    return (await p).id;
  } catch (err) {
    if (err instanceof NamespaceError) return err.reason;
    throw err;
  }
}

async function allChildren(ns: NamespaceStore, dir: number, limit = 1000): Promise<NodeRecord[]> {
  const out: NodeRecord[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await ns.children(dir, after === undefined ? { limit } : { after, limit });
    out.push(...page.entries);
    if (page.entries.length < limit) return out;
    after = page.last;
  }
}

const byFold = (a: string, b: string) => compareKeys(FOLD(a), FOLD(b));

export function namespaceContract(name: string, open: OpenNamespaceStore, options: NamespaceContractOptions = {}): void {
  const bigDirectory = options.bigDirectory ?? 20_000;
  let volumes = 0;

  interface Ctx {
    h: NamespaceHarness;
    t: TestContext;
    /** The namespace of this test's own volume, initialised. */
    ns: NamespaceStore;
    /** The same volume through the peer store, or through `store` again without a peer. */
    other: NamespaceStore;
    volume: string;
  }

  /** Runs `body` against a fresh store and an initialised volume, and always cleans up. */
  const withNs = (body: (c: Ctx) => Promise<void>) => async (t: TestContext) => {
    const h = await open(t);
    if (!h) return;
    try {
      const volume = `vol${++volumes}`;
      const ns = h.store.namespace(volume, OPTS);
      await ns.init('Backups', ROOT_INIT);
      const other = (h.peer ?? h.store).namespace(volume, OPTS);
      await body({ h, t, ns, other, volume });
    } finally {
      await h.cleanup();
    }
  };

  const file = (ns: NamespaceStore, parent: number, n: string, init: NodeInit = FILE_INIT, now = T0) => ns.create(parent, n, 'file', init, now);
  const dir = (ns: NamespaceStore, parent: number, n: string, now = T0) => ns.create(parent, n, 'dir', DIR_INIT, now);

  describe(name, () => {
    describe('init and get', () => {
      it('creates the root once, with its fields; later calls return it unchanged', async (t) => {
        const h = await open(t);
        if (!h) return;
        try {
          const ns = h.store.namespace('init-test', OPTS);
          assert.deepEqual(await ns.stats(), { nodes: 0, lastId: FIRST_FREE_ID - 1, bytes: 0 });
          const before = Date.now();
          const root = await ns.init('Time Machine', { uid: 0, gid: 80, mode: 0o1775 });
          const after = Date.now();
          assert.equal(root.id, ROOT_ID);
          assert.equal(root.parent, PARENT_OF_ROOT);
          assert.equal(root.name, 'Time Machine');
          assert.equal(root.kind, 'dir');
          assert.equal(root.childCount, 0);
          assert.equal(root.attributes, 0);
          assert.ok(root.createdAt >= before && root.createdAt <= after);
          assert.equal(root.modifiedAt, root.createdAt);
          assert.equal(root.backupAt, null);
          assert.ok(root.finderInfo.equals(Buffer.alloc(32)));
          assert.deepEqual([root.uid, root.gid, root.mode, root.dataLength, root.rsrcLength], [0, 80, 0o1775, 0, 0]);
          assert.deepEqual(await ns.get(ROOT_ID), root);
          assert.deepEqual(await ns.init('Other', { uid: 1, gid: 1, mode: 0o700 }), root, 'idempotent');
          assert.deepEqual(await ns.stats(), { nodes: 1, lastId: FIRST_FREE_ID - 1, bytes: 0 });

          const info = randomBytes(32);
          const custom = await h.store.namespace('init-test-2', OPTS).init('R', { uid: 1, gid: 2, mode: 0o700, attributes: 0x80, createdAt: T0, modifiedAt: T0 + 1, backupAt: T0 + 2, finderInfo: info });
          assert.deepEqual([custom.attributes, custom.createdAt, custom.modifiedAt, custom.backupAt], [0x80, T0, T0 + 1, T0 + 2]);
          assert.ok(custom.finderInfo.equals(info));
        } finally {
          await h.cleanup();
        }
      });

      it('agrees on one root across concurrent first inits', async (t) => {
        const h = await open(t);
        if (!h) return;
        try {
          const stores = [h.store, h.peer ?? h.store];
          const roots = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % 2]!.namespace('race', OPTS).init(`root${i}`, ROOT_INIT)));
          for (const r of roots) assert.deepEqual(r, roots[0]);
          assert.equal((await h.store.namespace('race', OPTS).stats()).nodes, 1);
        } finally {
          await h.cleanup();
        }
      });

      it('returns undefined for ids that name no node', withNs(async ({ ns }) => {
        for (const id of [PARENT_OF_ROOT, 0, -1, 1.5, Number.NaN, 3, FIRST_FREE_ID, 2 ** 40, Number.MAX_SAFE_INTEGER + 2]) {
          assert.equal(await ns.get(id), undefined, String(id));
        }
      }));

      it('keeps volumes apart, and hands out one instance per volume key', withNs(async ({ h, ns }) => {
        assert.equal(h.store.namespace('x', OPTS), h.store.namespace('x', OPTS));
        // 'a' and 'a:n' would collide under a careless key scheme ('a' + ':n:17' = 'a:n' + ':17').
        const a = h.store.namespace('a', OPTS);
        const an = h.store.namespace('a:n', OPTS);
        await a.init('A', ROOT_INIT);
        await an.init('AN', ROOT_INIT);
        const fa = await file(a, ROOT_ID, 'same');
        const fan = await dir(an, ROOT_ID, 'SAME');
        assert.equal(fa.id, FIRST_FREE_ID);
        assert.equal(fan.id, FIRST_FREE_ID);
        assert.equal((await a.lookup(ROOT_ID, 'same'))?.kind, 'file');
        assert.equal((await an.lookup(ROOT_ID, 'same'))?.kind, 'dir');
        assert.equal(await ns.lookup(ROOT_ID, 'same'), undefined);
        await a.setXattr(fa.id, 'x', Buffer.from('a'), 'create');
        await an.setXattr(fan.id, 'x', Buffer.from('an'), 'create');
        assert.deepEqual(await a.getXattr(fa.id, 'x'), Buffer.from('a'));
        await a.kvSet('k', Buffer.from('1'));
        assert.equal(await an.kvGet('k'), undefined);
        assert.deepEqual(await an.kvList(''), []);
        assert.deepEqual((await a.stats()).nodes, 2);
        assert.deepEqual((await ns.stats()).nodes, 1);
      }));

      it('refuses a volume key that is empty or holds braces', withNs(async ({ h }) => {
        for (const key of ['', 'a{b', 'x}', '{v:1}']) assert.throws(() => h.store.namespace(key, OPTS), RangeError, JSON.stringify(key));
      }));
    });

    describe('create and lookup', () => {
      it('creates directories and files with CNIDs from 17, updating the parent', withNs(async ({ ns }) => {
        const docs = await dir(ns, ROOT_ID, 'Docs', T0 + 5);
        assert.deepEqual(docs, {
          id: FIRST_FREE_ID, parent: ROOT_ID, name: 'Docs', kind: 'dir', attributes: 0, createdAt: T0 + 5, modifiedAt: T0 + 5,
          backupAt: null, finderInfo: Buffer.alloc(32), uid: 501, gid: 20, mode: 0o755, dataLength: 0, rsrcLength: 0, childCount: 0,
        });
        const info = Buffer.from('TEXTttxt' + '\0'.repeat(8) + '\xff\x80\x00\x01'.repeat(4), 'latin1');
        const f = await ns.create(docs.id, 'a.txt', 'file', { ...FILE_INIT, attributes: 1, createdAt: T0 - 10, modifiedAt: T0 - 5, backupAt: T0 - 1, finderInfo: info }, T0 + 9);
        assert.equal(f.id, FIRST_FREE_ID + 1);
        assert.deepEqual([f.parent, f.kind, f.attributes, f.createdAt, f.modifiedAt, f.backupAt], [docs.id, 'file', 1, T0 - 10, T0 - 5, T0 - 1]);
        assert.ok(f.finderInfo.equals(info));
        assert.deepEqual(await ns.get(f.id), f);
        assert.deepEqual(await ns.get(docs.id), { ...docs, childCount: 1, modifiedAt: T0 + 9 });
        assert.equal((await ns.get(ROOT_ID))?.childCount, 1);
        assert.equal((await ns.get(ROOT_ID))?.modifiedAt, T0 + 5);
        assert.deepEqual(await ns.stats(), { nodes: 3, lastId: FIRST_FREE_ID + 1, bytes: 0 });
        info.fill(0);
        assert.ok(!(await ns.get(f.id))!.finderInfo.equals(info), 'the store kept its own copy');
      }));

      it('never reuses a CNID after a remove', withNs(async ({ ns }) => {
        const a = await file(ns, ROOT_ID, 'a');
        const b = await file(ns, ROOT_ID, 'b');
        await ns.remove(b.id, T0);
        assert.equal((await file(ns, ROOT_ID, 'b')).id, b.id + 1);
        await ns.remove(a.id, T0);
        assert.equal((await file(ns, ROOT_ID, 'a')).id, b.id + 2);
        assert.equal((await ns.stats()).lastId, b.id + 2);
      }));

      it('looks names up through the fold, and returns the name as created', withNs(async ({ ns }) => {
        const nfd = 'Cafe\u0301 Me\u0301nu.TXT';
        const created = await file(ns, ROOT_ID, nfd);
        for (const variant of [nfd, nfd.normalize('NFC'), 'café ménu.txt', 'CAFÉ MÉNU.TXT', 'CAFE\u0301 ME\u0301NU.txt']) {
          const found = await ns.lookup(ROOT_ID, variant);
          assert.deepEqual(found, created, variant);
          assert.ok(Buffer.from(found!.name, 'utf8').equals(Buffer.from(nfd, 'utf8')), 'byte-identical name');
        }
        assert.equal(await ns.lookup(ROOT_ID, 'cafe menu.txt'), undefined);
        assert.equal(await ns.lookup(ROOT_ID, ''), undefined);
        assert.equal(await ns.lookup(created.id, 'x'), undefined, 'under a file');
        assert.equal(await ns.lookup(999, nfd), undefined, 'under a missing parent');
        assert.equal(await ns.lookup(PARENT_OF_ROOT, 'Backups'), undefined);
      }));

      it('refuses a taken name, in any case or normal form, with exists and takes no CNID', withNs(async ({ ns }) => {
        const first = await file(ns, ROOT_ID, 'Re\u0301sume\u0301');
        for (const dup of ['Re\u0301sume\u0301', 'résumé', 'RÉSUMÉ', 'RE\u0301SUME\u0301']) {
          await rejectsWith(file(ns, ROOT_ID, dup), 'exists');
          await rejectsWith(dir(ns, ROOT_ID, dup), 'exists');
        }
        assert.deepEqual(await ns.lookup(ROOT_ID, 'résumé'), first);
        assert.equal((await ns.get(ROOT_ID))?.childCount, 1);
        assert.deepEqual(await ns.stats(), { nodes: 2, lastId: first.id, bytes: 0 });
      }));

      it('fails with not-found or not-dir for a bad parent, taking no CNID', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        for (const parent of [999, PARENT_OF_ROOT, 0, -3, 2.5]) await rejectsWith(file(ns, parent, 'x'), 'not-found');
        await rejectsWith(file(ns, f.id, 'x'), 'not-dir');
        await rejectsWith(dir(ns, f.id, 'x'), 'not-dir');
        assert.equal((await file(ns, ROOT_ID, 'g')).id, f.id + 1);
      }));

      it('rejects malformed arguments with RangeError', withNs(async ({ ns }) => {
        await assert.rejects(file(ns, ROOT_ID, ''), RangeError);
        await assert.rejects(file(ns, ROOT_ID, 'bad\ud800'), RangeError);
        await assert.rejects(file(ns, ROOT_ID, 'x', { ...FILE_INIT, finderInfo: Buffer.alloc(31) }), RangeError);
        await assert.rejects(file(ns, ROOT_ID, 'x', { ...FILE_INIT, mode: 0o17777 }), RangeError);
        await assert.rejects(file(ns, ROOT_ID, 'x', { ...FILE_INIT, uid: -1 }), RangeError);
        await assert.rejects(file(ns, ROOT_ID, 'x', FILE_INIT, 1.5), RangeError);
        await assert.rejects(ns.create(ROOT_ID, 'x', 'link' as NodeKind, FILE_INIT, T0), RangeError);
        assert.equal((await ns.get(ROOT_ID))?.childCount, 0);
        assert.equal((await ns.stats()).lastId, FIRST_FREE_ID - 1);
      }));

      it('round-trips arbitrary names exactly and finds them in any case or normal form', withNs(async ({ ns }) => {
        const d = await dir(ns, ROOT_ID, 'names');
        await fc.assert(
          fc.asyncProperty(nameArb, fc.constantFrom('NFC' as const, 'NFD' as const), async (n, form) => {
            const created = await file(ns, d.id, n);
            try {
              assert.equal(created.name, n);
              assert.deepEqual(await ns.get(created.id), created);
              assert.deepEqual(await ns.lookup(d.id, n), created);
              const variant = n.normalize(form).toUpperCase();
              if (FOLD(variant) === FOLD(n)) assert.deepEqual(await ns.lookup(d.id, variant), created);
              assert.deepEqual((await ns.children(d.id, { limit: 2 })).entries, [created]);
            } finally {
              await ns.remove(created.id, T0);
            }
          }),
          { numRuns: 60 },
        );
      }));
    });

    describe('remove', () => {
      it('removes a file and updates its parent', withNs(async ({ ns }) => {
        const d = await dir(ns, ROOT_ID, 'd');
        const f = await file(ns, d.id, 'f');
        const g = await file(ns, d.id, 'g');
        assert.deepEqual(await ns.remove(f.id, T0 + 100), f, 'returns the node as it was');
        assert.equal(await ns.get(f.id), undefined);
        assert.equal(await ns.lookup(d.id, 'f'), undefined);
        const parent = await ns.get(d.id);
        assert.equal(parent?.childCount, 1);
        assert.equal(parent?.modifiedAt, T0 + 100);
        assert.deepEqual((await ns.children(d.id, { limit: 10 })).entries, [g]);
        assert.equal((await ns.stats()).nodes, 3);
        await rejectsWith(ns.remove(f.id, T0), 'not-found');
      }));

      it('removes only empty directories, never the root', withNs(async ({ ns }) => {
        const d = await dir(ns, ROOT_ID, 'd');
        const f = await file(ns, d.id, 'f');
        await rejectsWith(ns.remove(d.id, T0 + 1), 'not-empty');
        assert.equal((await ns.get(d.id))?.childCount, 1, 'unchanged');
        await rejectsWith(ns.remove(ROOT_ID, T0), 'is-root');
        for (const id of [PARENT_OF_ROOT, 999, 0, 1.5]) await rejectsWith(ns.remove(id, T0), 'not-found');
        await ns.remove(f.id, T0);
        await ns.remove(d.id, T0 + 2);
        const root = await ns.get(ROOT_ID);
        assert.deepEqual([root?.childCount, root?.modifiedAt], [0, T0 + 2]);
        assert.deepEqual((await ns.stats()).nodes, 1);
      }));

      it('removes a node\'s xattrs with it', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        await ns.setXattr(f.id, 'com.apple.metadata', randomBytes(100), 'create');
        await ns.setXattr(f.id, 'user.x', Buffer.alloc(0), 'create');
        await ns.remove(f.id, T0);
        await rejectsWith(ns.getXattr(f.id, 'user.x'), 'not-found');
        await rejectsWith(ns.listXattrs(f.id), 'not-found');
        const again = await file(ns, ROOT_ID, 'f');
        assert.deepEqual(await ns.listXattrs(again.id), []);
      }));
    });

    describe('move', () => {
      it('renames in place, keeping the CNID and every other field', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'old', { ...FILE_INIT, finderInfo: randomBytes(32) });
        const moved = await ns.move(f.id, ROOT_ID, 'New Name', T0 + 50);
        assert.deepEqual(moved, { ...f, name: 'New Name' });
        assert.deepEqual(await ns.get(f.id), moved);
        assert.equal(await ns.lookup(ROOT_ID, 'old'), undefined);
        assert.deepEqual(await ns.lookup(ROOT_ID, 'new name'), moved);
        const root = await ns.get(ROOT_ID);
        assert.equal(root?.childCount, 1);
        assert.equal(root?.modifiedAt, T0 + 50);
      }));

      it('allows a node to be renamed onto its own name in another case or normal form', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'readme');
        assert.equal((await ns.move(f.id, ROOT_ID, 'README', T0)).name, 'README');
        assert.equal((await ns.move(f.id, ROOT_ID, 'README', T0)).name, 'README', 'same name: a no-op');
        const e = await file(ns, ROOT_ID, 'caf\u00e9');
        assert.equal((await ns.move(e.id, ROOT_ID, 'CAFE\u0301', T0)).name, 'CAFE\u0301');
        assert.deepEqual((await ns.children(ROOT_ID, { limit: 10 })).entries.map((n) => n.name), ['CAFE\u0301', 'README']);
        assert.equal((await ns.get(ROOT_ID))?.childCount, 2);
      }));

      it('refuses a name another node holds, in any case, with exists', withNs(async ({ ns }) => {
        const a = await file(ns, ROOT_ID, 'a');
        const b = await file(ns, ROOT_ID, 'B');
        const d = await dir(ns, ROOT_ID, 'd');
        const c = await file(ns, d.id, 'c');
        await rejectsWith(ns.move(a.id, ROOT_ID, 'b', T0), 'exists');
        await rejectsWith(ns.move(c.id, ROOT_ID, 'A', T0), 'exists');
        await rejectsWith(ns.move(d.id, ROOT_ID, 'a', T0), 'exists');
        assert.deepEqual(await ns.get(a.id), a);
        assert.deepEqual(await ns.get(b.id), b);
        assert.deepEqual(await ns.get(c.id), c);
        assert.equal((await ns.get(d.id))?.childCount, 1);
      }));

      it('moves into another directory, updating both parents, and takes the subtree along', withNs(async ({ ns }) => {
        const src = await dir(ns, ROOT_ID, 'src');
        const dst = await dir(ns, ROOT_ID, 'dst');
        const sub = await dir(ns, src.id, 'sub');
        const deep = await file(ns, sub.id, 'deep');
        const moved = await ns.move(sub.id, dst.id, 'Sub2', T0 + 7);
        assert.deepEqual(moved, { ...sub, parent: dst.id, name: 'Sub2', childCount: 1 });
        const [s, d] = [await ns.get(src.id), await ns.get(dst.id)];
        assert.deepEqual([s?.childCount, s?.modifiedAt, d?.childCount, d?.modifiedAt], [0, T0 + 7, 1, T0 + 7]);
        assert.equal(await ns.lookup(src.id, 'sub'), undefined);
        assert.deepEqual(await ns.lookup(dst.id, 'sub2'), moved);
        assert.deepEqual(await ns.lookup(sub.id, 'deep'), deep);
        assert.deepEqual((await ns.children(src.id, { limit: 5 })).entries, []);
        assert.deepEqual((await ns.children(dst.id, { limit: 5 })).entries, [moved]);
        assert.equal((await ns.get(ROOT_ID))?.childCount, 2);
      }));

      it('refuses cycles, the root, missing nodes and file parents', withNs(async ({ ns }) => {
        const a = await dir(ns, ROOT_ID, 'a');
        const b = await dir(ns, a.id, 'b');
        const c = await dir(ns, b.id, 'c');
        const f = await file(ns, a.id, 'f');
        await rejectsWith(ns.move(a.id, a.id, 'a', T0), 'cycle');
        await rejectsWith(ns.move(a.id, b.id, 'a', T0), 'cycle');
        await rejectsWith(ns.move(a.id, c.id, 'x', T0), 'cycle');
        await rejectsWith(ns.move(b.id, c.id, 'b', T0), 'cycle');
        await rejectsWith(ns.move(f.id, f.id, 'f', T0), 'not-dir');
        await rejectsWith(ns.move(a.id, f.id, 'a', T0), 'not-dir');
        await rejectsWith(ns.move(ROOT_ID, a.id, 'r', T0), 'is-root');
        await rejectsWith(ns.move(ROOT_ID, ROOT_ID, 'Renamed', T0), 'is-root');
        await rejectsWith(ns.move(ROOT_ID, 0, 'r', T0), 'is-root');
        await rejectsWith(ns.move(999, -1, 'x', T0), 'not-found');
        await rejectsWith(ns.move(999, ROOT_ID, 'x', T0), 'not-found');
        await rejectsWith(ns.move(f.id, 999, 'x', T0), 'not-found');
        await rejectsWith(ns.move(a.id, PARENT_OF_ROOT, 'x', T0), 'not-found');
        await assert.rejects(ns.move(f.id, ROOT_ID, '', T0), RangeError);
        assert.deepEqual((await ns.get(ROOT_ID))?.name, 'Backups');
        assert.deepEqual([(await ns.get(a.id))?.parent, (await ns.get(b.id))?.parent, (await ns.get(c.id))?.parent], [ROOT_ID, a.id, b.id]);
        // A sideways or upward move is no cycle.
        await ns.move(c.id, a.id, 'c', T0);
        await ns.move(c.id, ROOT_ID, 'c', T0);
        assert.deepEqual([(await ns.get(a.id))?.childCount, (await ns.get(b.id))?.childCount, (await ns.get(ROOT_ID))?.childCount], [2, 0, 2]);
      }));
    });

    describe('update', () => {
      it('changes each field alone', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        const patches: NodePatch[] = [
          { attributes: 0x21 }, { createdAt: T0 - 1 }, { modifiedAt: T0 + 1 }, { backupAt: T0 + 2 }, { backupAt: null },
          { finderInfo: randomBytes(32) }, { uid: 99 }, { gid: 98 }, { mode: 0o4711 }, { dataLength: 2 ** 40 + 3 }, { rsrcLength: 286 },
          { dataLength: 0 }, {},
        ];
        let expected = f;
        for (const patch of patches) {
          expected = { ...expected, ...patch };
          const updated = await ns.update(f.id, patch);
          assert.deepEqual(updated, expected, JSON.stringify(patch));
          assert.deepEqual(await ns.get(f.id), expected, JSON.stringify(patch));
        }
      }));

      it('keeps Finder info byte for byte, isolated from the caller\'s buffers', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        const info = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 0x80) & 0xff));
        const kept = Buffer.from(info);
        const updated = await ns.update(f.id, { finderInfo: info });
        info.fill(0);
        updated.finderInfo.fill(1);
        const got = (await ns.get(f.id))!.finderInfo;
        assert.ok(Buffer.isBuffer(got));
        assert.ok(got.equals(kept), got.toString('hex'));
        for (const bad of [Buffer.alloc(0), Buffer.alloc(16), Buffer.alloc(33)]) await assert.rejects(ns.update(f.id, { finderInfo: bad }), RangeError);
      }));

      it('fails with not-found, refuses fork lengths on directories, and ignores unknown fields', withNs(async ({ ns }) => {
        await rejectsWith(ns.update(999, { uid: 1 }), 'not-found');
        await rejectsWith(ns.update(0, { uid: 1 }), 'not-found');
        const d = await dir(ns, ROOT_ID, 'd');
        await rejectsWith(ns.update(d.id, { dataLength: 5 }), 'is-dir');
        assert.equal((await ns.update(d.id, { dataLength: 0, mode: 0o700 })).mode, 0o700);
        for (const bad of [{ dataLength: -1 }, { mode: 0o10000 }, { createdAt: 1.5 }, { attributes: 0x10000 }, { backupAt: Number.NaN }]) {
          await assert.rejects(ns.update(d.id, bad), RangeError, JSON.stringify(bad));
        }
        const sneaky = { id: 5, parent: 99, name: 'x', kind: 'file', childCount: 7, uid: 3 } as unknown as NodePatch;
        assert.deepEqual(await ns.update(d.id, sneaky), { ...d, mode: 0o700, uid: 3 });
      }));
    });

    describe('exchange', () => {
      it('swaps contents and xattrs, keeping ids, names, parents, owners and modes', withNs(async ({ ns }) => {
        const d = await dir(ns, ROOT_ID, 'd');
        const a = await ns.create(ROOT_ID, 'a', 'file', { uid: 1, gid: 1, mode: 0o600, attributes: 1, createdAt: 10, modifiedAt: 11, backupAt: 12, finderInfo: randomBytes(32) }, T0);
        const b = await ns.create(d.id, 'b', 'file', { uid: 2, gid: 2, mode: 0o644, attributes: 2, createdAt: 20, modifiedAt: 21, finderInfo: randomBytes(32) }, T0);
        const a1 = await ns.update(a.id, { dataLength: 100, rsrcLength: 10 });
        const b1 = await ns.update(b.id, { dataLength: 200 });
        await ns.setXattr(a.id, 'only-a', Buffer.from('A'), 'create');
        await ns.setXattr(a.id, 'both', Buffer.from('from a'), 'create');
        await ns.setXattr(b.id, 'both', Buffer.from('from b'), 'create');
        const [ra, rb] = await ns.exchange(a.id, b.id);
        const content = ['attributes', 'createdAt', 'modifiedAt', 'backupAt', 'finderInfo', 'dataLength', 'rsrcLength'] as const;
        const swapped = (to: NodeRecord, from: NodeRecord): NodeRecord => ({ ...to, ...Object.fromEntries(content.map((k) => [k, from[k]])) });
        assert.deepEqual(ra, swapped(a1, b1));
        assert.deepEqual(rb, swapped(b1, a1));
        assert.deepEqual(await ns.get(a.id), ra);
        assert.deepEqual(await ns.get(b.id), rb);
        assert.deepEqual(await ns.listXattrs(a.id), ['both']);
        assert.deepEqual(await ns.listXattrs(b.id), ['both', 'only-a']);
        assert.deepEqual(await ns.getXattr(a.id, 'both'), Buffer.from('from b'));
        assert.deepEqual(await ns.getXattr(b.id, 'only-a'), Buffer.from('A'));
        assert.equal((await ns.stats()).bytes, 310);
        // And back again, with one side having no xattrs at all.
        await ns.removeXattr(a.id, 'both');
        await ns.exchange(a.id, b.id);
        assert.deepEqual(await ns.listXattrs(a.id), ['both', 'only-a']);
        assert.deepEqual(await ns.listXattrs(b.id), []);
        assert.deepEqual(await ns.get(a.id), a1);
      }));

      it('exchanging a file with itself changes nothing; directories and missing nodes fail', withNs(async ({ ns }) => {
        const f = await ns.update((await file(ns, ROOT_ID, 'f')).id, { dataLength: 5 });
        await ns.setXattr(f.id, 'x', Buffer.from('1'), 'create');
        assert.deepEqual(await ns.exchange(f.id, f.id), [f, f]);
        assert.deepEqual(await ns.getXattr(f.id, 'x'), Buffer.from('1'));
        const d = await dir(ns, ROOT_ID, 'd');
        await rejectsWith(ns.exchange(f.id, d.id), 'is-dir');
        await rejectsWith(ns.exchange(d.id, f.id), 'is-dir');
        await rejectsWith(ns.exchange(f.id, 999), 'not-found');
        await rejectsWith(ns.exchange(999, f.id), 'not-found');
        assert.deepEqual(await ns.get(f.id), f);
      }));
    });

    describe('children', () => {
      it('lists a small directory in fold order, and fails for missing parents and files', withNs(async ({ ns }) => {
        const names = ['b', 'A', 'c\u0327', 'C', '😀', '\uff21', '\ue000', 'Z', 'é'];
        for (const n of names) await file(ns, ROOT_ID, n);
        const sorted = [...names].sort(byFold);
        // Code-unit order puts the surrogate pair of 😀 before U+E000 and U+FF21; UTF-8 byte order would not.
        assert.deepEqual(sorted.slice(-3), ['😀', '\ue000', '\uff21']);
        const page = await ns.children(ROOT_ID, { limit: 100 });
        assert.deepEqual(page.entries.map((n) => n.name), sorted);
        assert.equal(page.last, FOLD(sorted.at(-1)!));
        const firstTwo = await ns.children(ROOT_ID, { limit: 2 });
        assert.deepEqual(firstTwo.entries.map((n) => n.name), sorted.slice(0, 2));
        assert.equal(firstTwo.last, FOLD(sorted[1]!));
        assert.deepEqual((await ns.children(ROOT_ID, { after: firstTwo.last!, limit: 3 })).entries.map((n) => n.name), sorted.slice(2, 5));
        assert.deepEqual((await ns.children(ROOT_ID, { offset: 7, limit: 5 })).entries.map((n) => n.name), sorted.slice(7));
        assert.deepEqual(await ns.children(ROOT_ID, { offset: 9, limit: 5 }), { entries: [] });
        assert.deepEqual(await ns.children(ROOT_ID, { limit: 0 }), { entries: [] });
        assert.deepEqual(await ns.children(ROOT_ID, { after: FOLD(sorted.at(-1)!), limit: 5 }), { entries: [] });
        assert.deepEqual((await ns.children(ROOT_ID, { after: '', limit: 1 })).entries.map((n) => n.name), sorted.slice(0, 1));
        const f = await ns.lookup(ROOT_ID, 'b');
        await rejectsWith(ns.children(f!.id, { limit: 1 }), 'not-dir');
        await rejectsWith(ns.children(999, { limit: 1 }), 'not-found');
        await rejectsWith(ns.children(PARENT_OF_ROOT, { limit: 1 }), 'not-found');
        await assert.rejects(ns.children(ROOT_ID, { limit: -1 }), RangeError);
        await assert.rejects(ns.children(ROOT_ID, { limit: 1, offset: -1 }), RangeError);
      }));

      it('pages a directory of a few thousand entries the same way by offset and by after', withNs(async ({ ns }) => {
        const d = await dir(ns, ROOT_ID, 'many');
        const names: string[] = [];
        for (let i = 0; i < 3000; i++) names.push(`${TRICKY[i % TRICKY.length]}${(i * 7919) % 3001}${i % 3 ? '.band' : 'Ω'}`);
        const unique = [...new Map(names.map((n) => [FOLD(n), n])).values()];
        await createAll(ns, d.id, unique, 200);
        const expected = [...unique].sort(byFold);
        assert.equal((await ns.get(d.id))?.childCount, unique.length);

        const byAfter: NodeRecord[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await ns.children(d.id, after === undefined ? { limit: 97 } : { after, limit: 97 });
          if (page.entries.length === 0) {
            assert.equal(page.last, undefined);
            break;
          }
          assert.equal(page.last, FOLD(page.entries.at(-1)!.name));
          byAfter.push(...page.entries);
          after = page.last;
        }
        const byOffset: NodeRecord[] = [];
        for (let offset = 0; ; offset += 97) {
          const page = await ns.children(d.id, { offset, limit: 97 });
          if (page.entries.length === 0) break;
          byOffset.push(...page.entries);
        }
        assert.deepEqual(byAfter.map((n) => n.name), expected);
        assert.deepEqual(byOffset, byAfter);
        const again = await ns.children(d.id, { offset: 1234, limit: 50 });
        assert.deepEqual(again.entries, byAfter.slice(1234, 1284), 'stable across calls');
      }));

      it('resumes after a key even when that entry is gone or entries were added', withNs(async ({ ns }) => {
        const names = Array.from({ length: 20 }, (_, i) => `f${String(i).padStart(2, '0')}`);
        await createAll(ns, ROOT_ID, names, 20);
        const first = await ns.children(ROOT_ID, { limit: 5 });
        await ns.remove(first.entries[4]!.id, T0);
        await file(ns, ROOT_ID, 'F03a');
        await file(ns, ROOT_ID, 'f04a');
        const next = await ns.children(ROOT_ID, { after: first.last!, limit: 3 });
        assert.deepEqual(next.entries.map((n) => n.name), ['f04a', 'f05', 'f06']);
        assert.deepEqual((await ns.children(ROOT_ID, { after: 'f04', limit: 1 })).entries.map((n) => n.name), ['f04a']);
        assert.deepEqual((await ns.children(ROOT_ID, { after: 'e', limit: 1 })).entries.map((n) => n.name), ['f00']);
      }));

      it(`creates and pages a directory of ${bigDirectory} entries`, withNs(async ({ ns, t }) => {
        const d = await dir(ns, ROOT_ID, 'big');
        const bandName = (i: number) => `band-${(i * 2654435761) % 4294967291}.${i}`;
        let started = performance.now();
        for (let i = 0; i < bigDirectory; i += 5000) {
          await createAll(ns, d.id, Array.from({ length: Math.min(5000, bigDirectory - i) }, (_, j) => bandName(i + j)), 500);
        }
        const created = performance.now() - started;
        assert.equal((await ns.get(d.id))?.childCount, bigDirectory);

        started = performance.now();
        let count = 0;
        let previous = '';
        let after: string | undefined;
        for (;;) {
          const page = await ns.children(d.id, after === undefined ? { limit: 1000 } : { after, limit: 1000 });
          for (const e of page.entries) {
            const key = FOLD(e.name);
            assert.ok(compareKeys(previous, key) < 0, `${previous} < ${key}`);
            previous = key;
          }
          count += page.entries.length;
          if (page.entries.length < 1000) break;
          after = page.last;
        }
        const paged = performance.now() - started;
        assert.equal(count, bigDirectory);

        started = performance.now();
        const tail = await ns.children(d.id, { offset: bigDirectory - 10, limit: 1000 });
        const offsetMs = performance.now() - started;
        assert.equal(tail.entries.length, 10);
        assert.equal(FOLD(tail.entries.at(-1)!.name), previous);
        t.diagnostic(`${name}: ${bigDirectory} entries created in ${created.toFixed(0)} ms, paged by 1000 in ${paged.toFixed(0)} ms, last page by offset in ${offsetMs.toFixed(1)} ms`);
      }));
    });

    describe('xattrs', () => {
      it('follows create, replace and any semantics', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        await rejectsWith(ns.setXattr(f.id, 'x', Buffer.from('1'), 'replace'), 'no-attr');
        assert.equal(await ns.getXattr(f.id, 'x'), undefined);
        await ns.setXattr(f.id, 'x', Buffer.from('1'), 'create');
        await rejectsWith(ns.setXattr(f.id, 'x', Buffer.from('2'), 'create'), 'exists');
        assert.deepEqual(await ns.getXattr(f.id, 'x'), Buffer.from('1'));
        await ns.setXattr(f.id, 'x', Buffer.from('3'), 'replace');
        assert.deepEqual(await ns.getXattr(f.id, 'x'), Buffer.from('3'));
        await ns.setXattr(f.id, 'x', Buffer.from('4'), 'any');
        await ns.setXattr(f.id, 'y', Buffer.from('5'), 'any');
        assert.deepEqual(await ns.getXattr(f.id, 'x'), Buffer.from('4'));
        assert.deepEqual(await ns.getXattr(f.id, 'y'), Buffer.from('5'));
        await ns.removeXattr(f.id, 'x');
        await rejectsWith(ns.removeXattr(f.id, 'x'), 'no-attr');
        assert.deepEqual(await ns.listXattrs(f.id), ['y']);
        const d = await dir(ns, ROOT_ID, 'd');
        await ns.setXattr(d.id, 'on-a-dir', Buffer.from('ok'), 'create');
        assert.deepEqual(await ns.listXattrs(d.id), ['on-a-dir']);
      }));

      it('keeps binary values exactly, including empty and 64 KiB ones', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        const values: [string, Buffer][] = [
          ['empty', Buffer.alloc(0)],
          ['zero', Buffer.from([0])],
          ['not-utf8', Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80, 0x00, 0xed, 0xa0, 0x80])],
          ['big', randomBytes(64 * 1024)],
          ['bplist', Buffer.concat([Buffer.from('bplist00'), randomBytes(300)])],
        ];
        for (const [n, v] of values) {
          const mine = Buffer.from(v);
          await ns.setXattr(f.id, n, mine, 'create');
          mine.fill(7);
        }
        for (const [n, v] of values) {
          const got = await ns.getXattr(f.id, n);
          assert.ok(Buffer.isBuffer(got), n);
          assert.ok(got.equals(v), n);
          got.fill(9);
          assert.ok((await ns.getXattr(f.id, n))!.equals(v), `${n}: returned buffers are copies`);
        }
      }));

      it('lists names in code-unit order and fails with not-found for a missing node', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        const names = ['com.apple.quarantine', 'B', 'a', '😀', '\uff21', '\ue000', 'x\u0000y', 'com.apple.FinderInfo', 'Ä'];
        for (const n of names) await ns.setXattr(f.id, n, Buffer.from(n), 'create');
        assert.deepEqual(await ns.listXattrs(f.id), [...names].sort(compareKeys));
        for (const n of names) assert.deepEqual(await ns.getXattr(f.id, n), Buffer.from(n));
        await rejectsWith(ns.getXattr(999, 'a'), 'not-found');
        await rejectsWith(ns.setXattr(999, 'a', Buffer.from(''), 'any'), 'not-found');
        await rejectsWith(ns.removeXattr(999, 'a'), 'not-found');
        await rejectsWith(ns.listXattrs(999), 'not-found');
        await rejectsWith(ns.listXattrs(PARENT_OF_ROOT), 'not-found');
        await assert.rejects(ns.setXattr(f.id, '', Buffer.from(''), 'any'), RangeError);
      }));
    });

    describe('key/value area', () => {
      it('gets, sets, deletes and lists by prefix in code-unit order, binary-safe', withNs(async ({ ns }) => {
        assert.equal(await ns.kvGet('icon:1'), undefined);
        assert.deepEqual(await ns.kvList(''), []);
        const entries: [string, Buffer][] = [
          ['icon:1', randomBytes(256)],
          ['icon:10', Buffer.alloc(0)],
          ['icon:2', randomBytes(64 * 1024)],
          ['icon', Buffer.from('prefix itself')],
          ['icon:😀', Buffer.from([0xff, 0x00])],
          ['icon:\uff21', Buffer.from('fullwidth')],
          ['icon:\u0000', Buffer.from('nul')],
          ['comment:17', Buffer.from('hello')],
          ['iconz', Buffer.from('z')],
        ];
        for (const [k, v] of entries) await ns.kvSet(k, Buffer.from(v));
        for (const [k, v] of entries) assert.deepEqual(await ns.kvGet(k), v, k);
        const sorted = [...entries].sort((x, y) => compareKeys(x[0], y[0]));
        assert.deepEqual(await ns.kvList(''), sorted);
        assert.deepEqual(await ns.kvList('icon:'), sorted.filter(([k]) => k.startsWith('icon:')));
        assert.deepEqual((await ns.kvList('icon')).map(([k]) => k), sorted.map(([k]) => k).filter((k) => k.startsWith('icon')));
        assert.deepEqual(await ns.kvList('nothing'), []);
        await ns.kvSet('icon:1', Buffer.from('replaced'));
        assert.deepEqual(await ns.kvGet('icon:1'), Buffer.from('replaced'));
        assert.equal(await ns.kvDelete('icon:1'), true);
        assert.equal(await ns.kvDelete('icon:1'), false);
        assert.equal(await ns.kvGet('icon:1'), undefined);
        assert.equal((await ns.kvList('icon:1')).length, 1, 'icon:10 is left');
      }));
    });

    describe('stats', () => {
      it('counts nodes, the last CNID and the bytes of all forks', withNs(async ({ ns }) => {
        const d = await dir(ns, ROOT_ID, 'd');
        const a = await file(ns, d.id, 'a');
        const b = await file(ns, d.id, 'b');
        assert.deepEqual(await ns.stats(), { nodes: 4, lastId: b.id, bytes: 0 });
        await ns.update(a.id, { dataLength: 1000, rsrcLength: 24 });
        await ns.update(b.id, { dataLength: 2 ** 40 });
        assert.equal((await ns.stats()).bytes, 1024 + 2 ** 40);
        await ns.update(a.id, { dataLength: 10 });
        assert.equal((await ns.stats()).bytes, 34 + 2 ** 40);
        await ns.exchange(a.id, b.id);
        assert.equal((await ns.stats()).bytes, 34 + 2 ** 40);
        await ns.remove(a.id, T0);
        assert.deepEqual(await ns.stats(), { nodes: 3, lastId: b.id, bytes: 34 });
        await ns.update(b.id, { dataLength: 0, rsrcLength: 0 });
        assert.deepEqual(await ns.stats(), { nodes: 3, lastId: b.id, bytes: 0 });
      }));
    });

    describe('concurrency', () => {
      it('lets exactly one of 20 concurrent creates of one name succeed', withNs(async ({ ns, other }) => {
        const variants = ['Café', 'cafe\u0301', 'CAFÉ', 'CAFE\u0301'];
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => outcome(file(i % 2 ? other : ns, ROOT_ID, variants[i % variants.length]!))));
        const won = results.filter((r) => typeof r === 'number');
        assert.equal(won.length, 1, JSON.stringify(results));
        assert.deepEqual(results.filter((r) => typeof r !== 'number'), Array(19).fill('exists'));
        assert.equal((await ns.get(ROOT_ID))?.childCount, 1);
        assert.deepEqual(await ns.stats(), { nodes: 2, lastId: FIRST_FREE_ID, bytes: 0 });
      }));

      it('gives concurrent creates of distinct names distinct CNIDs', withNs(async ({ ns, other }) => {
        const made = await Promise.all(Array.from({ length: 60 }, (_, i) => file(i % 2 ? other : ns, ROOT_ID, `n${i}`)));
        assert.deepEqual(made.map((n) => n.id).sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => FIRST_FREE_ID + i));
        assert.equal((await ns.get(ROOT_ID))?.childCount, 60);
        assert.equal((await allChildren(ns, ROOT_ID, 7)).length, 60);
        for (const n of made) assert.deepEqual(await other.get(n.id), n);
      }));

      it('never lets concurrent moves form a cycle', withNs(async ({ ns, other }) => {
        for (let round = 0; round < 10; round++) {
          const a = await dir(ns, ROOT_ID, `a${round}`);
          const b = await dir(ns, ROOT_ID, `b${round}`);
          const a1 = await dir(ns, a.id, 'a1');
          const b1 = await dir(ns, b.id, 'b1');
          // Round by round: A into B while B into A, then A into B's child while B into A's child.
          const [x, y] = round % 2 ? [b1.id, a1.id] : [b.id, a.id];
          const results = await Promise.all([outcome(ns.move(a.id, x, 'A', T0)), outcome(other.move(b.id, y, 'B', T0))]);
          assert.ok(results.filter((r) => typeof r === 'number').length <= 1, JSON.stringify(results));
          assert.ok(results.some((r) => r === 'cycle'), JSON.stringify(results));
        }
        await assertTree(ns);
      }));

      it('lets one of several nodes renamed concurrently onto one name win', withNs(async ({ ns, other }) => {
        const nodes = await createAll(ns, ROOT_ID, Array.from({ length: 10 }, (_, i) => `src${i}`), 10);
        const results = await Promise.all(nodes.map((n, i) => outcome((i % 2 ? other : ns).move(n.id, ROOT_ID, i % 2 ? 'Target' : 'target', T0))));
        assert.equal(results.filter((r) => typeof r === 'number').length, 1, JSON.stringify(results));
        assert.equal((await ns.get(ROOT_ID))?.childCount, 10);
        assert.equal((await allChildren(ns, ROOT_ID)).length, 10);
      }));

      it('keeps the byte count exact under concurrent updates', withNs(async ({ ns, other }) => {
        const files = await createAll(ns, ROOT_ID, Array.from({ length: 20 }, (_, i) => `f${i}`), 20);
        await Promise.all(files.flatMap((f, i) => [ns.update(f.id, { dataLength: i * 1000 }), other.update(f.id, { rsrcLength: i })]));
        assert.equal((await ns.stats()).bytes, files.reduce((sum, _, i) => sum + i * 1001, 0));
        await Promise.all(files.map((f, i) => (i % 2 ? ns : other).remove(f.id, T0)));
        assert.deepEqual(await ns.stats(), { nodes: 1, lastId: files.at(-1)!.id, bytes: 0 });
      }));
    });

    describe('block maps', () => {
      const r = (file: number, gen: number): BlockRef => ({ file, gen });
      const put = (index: number, next: BlockRef | null, expect: BlockRef | null = null): BlockChange => ({ index, expect, next });
      const mapOf = async (ns: NamespaceStore, id: number, fork: ForkKind) => [...(await ns.blockMap(id, fork)).entries()];
      const allGc = (ns: NamespaceStore) => ns.gcDue(Number.MAX_SAFE_INTEGER, 1_000_000);
      const gc = (file: number, fork: ForkKind, index: number, gen: number, at: number): GcEntry => ({ file, fork, index, gen, at });
      async function commitOk(ns: NamespaceStore, id: number, fork: ForkKind, commit: ForkCommit): Promise<NodeRecord> {
        const res = await ns.commitFork(id, fork, commit);
        assert.ok(res.ok, `commit to ${id} conflicted: ${JSON.stringify(res)}`);
        return res.node;
      }

      it('fixes the block size with the first call, for every store on the volume', withNs(async ({ h, ns, other }) => {
        for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) await assert.rejects(ns.fixBlockSize(bad), RangeError, String(bad));
        assert.equal(await ns.fixBlockSize(4096), 4096);
        assert.equal(await ns.fixBlockSize(8192), 4096);
        assert.equal(await other.fixBlockSize(1), 4096);
        await assert.rejects(ns.fixBlockSize(0), RangeError, 'checked even once fixed');

        const stores = [h.store, h.peer ?? h.store];
        const got = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 2]!.namespace('bs-race', OPTS).fixBlockSize(1000 + i)));
        assert.equal(new Set(got).size, 1, JSON.stringify(got));
        assert.ok(got[0]! >= 1000 && got[0]! < 1020);
      }));

      it('hands out generations from 1, never twice, under concurrency on both stores', withNs(async ({ ns, other }) => {
        for (const bad of [0, -1, 1.5, Number.NaN, 1_000_001]) await assert.rejects(ns.reserveGenerations(bad), RangeError, String(bad));
        assert.equal(await ns.reserveGenerations(1), 1);
        assert.equal(await other.reserveGenerations(3), 2);
        const counts = Array.from({ length: 50 }, (_, i) => 1 + (i % 7));
        const firsts = await Promise.all(counts.map((c, i) => (i % 2 ? other : ns).reserveGenerations(c)));
        const taken = firsts.flatMap((first, i) => Array.from({ length: counts[i]! }, (_, j) => first + j)).sort((x, y) => x - y);
        const total = counts.reduce((s, c) => s + c, 0);
        assert.deepEqual(taken, Array.from({ length: total }, (_, i) => 5 + i), 'disjoint ranges that leave no gap');
        assert.equal(await ns.reserveGenerations(1_000_000), 5 + total);
        assert.equal(await other.reserveGenerations(1), 5 + total + 1_000_000);
      }));

      it('commits blocks, a length and a date, and reads them back by ascending index', withNs(async ({ ns }) => {
        await ns.fixBlockSize(4);
        const f = await file(ns, ROOT_ID, 'f');
        assert.deepEqual(await mapOf(ns, f.id, 'data'), []);
        assert.equal(await ns.blockRef(f.id, 'data', 0), null);

        const node = await commitOk(ns, f.id, 'data', { changes: [put(2, r(f.id, 2)), put(0, r(f.id, 1))], length: 12, modifiedAt: T0 + 5, now: T0 });
        assert.deepEqual(node, { ...f, dataLength: 12, modifiedAt: T0 + 5 });
        assert.deepEqual(await ns.get(f.id), node);
        assert.deepEqual(await mapOf(ns, f.id, 'data'), [[0, r(f.id, 1)], [2, r(f.id, 2)]]);
        assert.deepEqual(await mapOf(ns, f.id, 'rsrc'), []);
        assert.deepEqual(await ns.blockRef(f.id, 'data', 2), r(f.id, 2));
        assert.equal(await ns.blockRef(f.id, 'data', 1), null);
        assert.equal(await ns.blockRef(f.id, 'rsrc', 0), null);
        assert.equal((await ns.stats()).bytes, 12);
        assert.equal(await ns.gcPending(), 0);

        // Without length or date the node stays as it is; indices far apart still list in order.
        const far = [9, 10, 100, 2 ** 40, Number.MAX_SAFE_INTEGER];
        const again = await commitOk(ns, f.id, 'rsrc', { changes: far.map((i, n) => put(i, r(f.id, 10 + n))).reverse(), now: T0 });
        assert.deepEqual(again, node);
        assert.deepEqual(await mapOf(ns, f.id, 'rsrc'), far.map((i, n) => [i, r(f.id, 10 + n)]));
        assert.deepEqual(await ns.blockRef(f.id, 'rsrc', Number.MAX_SAFE_INTEGER), r(f.id, 14));

        // The store keeps its own copies of the refs.
        const mine = r(f.id, 20);
        await commitOk(ns, f.id, 'data', { changes: [put(1, mine)], now: T0 });
        mine.gen = 99;
        (await ns.blockMap(f.id, 'data')).get(1)!.gen = 98;
        assert.deepEqual(await ns.blockRef(f.id, 'data', 1), r(f.id, 20));
      }));

      it('queues replaced and removed refs; a next equal to its expect changes nothing', withNs(async ({ ns }) => {
        await ns.fixBlockSize(4);
        const f = await file(ns, ROOT_ID, 'f');
        await commitOk(ns, f.id, 'data', { changes: [put(0, r(f.id, 1)), put(1, r(f.id, 2))], length: 8, now: T0 });
        await commitOk(ns, f.id, 'data', { changes: [put(0, r(f.id, 3), { file: f.id, gen: 1 }), put(1, r(f.id, 2), r(f.id, 2))], now: T0 + 1 });
        assert.deepEqual(await allGc(ns), [gc(f.id, 'data', 0, 1, T0 + 1)]);
        await commitOk(ns, f.id, 'data', { changes: [put(1, null, r(f.id, 2)), put(2, null, null)], now: T0 + 2 });
        assert.deepEqual(await allGc(ns), [gc(f.id, 'data', 0, 1, T0 + 1), gc(f.id, 'data', 1, 2, T0 + 2)]);
        assert.deepEqual(await mapOf(ns, f.id, 'data'), [[0, r(f.id, 3)]]);
        assert.equal(await ns.gcPending(), 2);
        assert.equal((await ns.get(f.id))?.dataLength, 8);
      }));

      it('applies nothing when any expectation fails, and reports every failed index', withNs(async ({ ns }) => {
        await ns.fixBlockSize(4);
        const f = await file(ns, ROOT_ID, 'f');
        const before = await commitOk(ns, f.id, 'data', { changes: [put(0, r(f.id, 1)), put(1, r(f.id, 2))], length: 8, now: T0 });
        const res = await ns.commitFork(f.id, 'data', {
          changes: [put(0, r(f.id, 5), r(f.id, 1)), put(1, r(f.id, 6), null), put(3, null, r(f.id, 9)), put(4, r(f.id, 7), r(f.id + 1, 2))],
          length: 0,
          modifiedAt: T0 + 9,
          now: T0 + 1,
        });
        assert.deepEqual(res, { ok: false, conflicts: [1, 3, 4] });
        assert.deepEqual(await mapOf(ns, f.id, 'data'), [[0, r(f.id, 1)], [1, r(f.id, 2)]]);
        assert.deepEqual(await ns.get(f.id), before);
        assert.equal(await ns.gcPending(), 0);
        assert.equal((await ns.stats()).bytes, 8);
        // Same gen, other file: a different object.
        assert.deepEqual(await ns.commitFork(f.id, 'data', { changes: [put(1, null, r(f.id + 1, 2))], now: T0 }), { ok: false, conflicts: [1] });
        assert.deepEqual(await ns.commitFork(f.id, 'rsrc', { changes: [put(0, null, r(f.id, 1))], now: T0 }), { ok: false, conflicts: [0] }, 'forks are apart');
      }));

      it('lets exactly one of 20 concurrent commits of one block win', withNs(async ({ ns, other }) => {
        const f = await file(ns, ROOT_ID, 'f');
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : ns).commitFork(f.id, 'data', { changes: [put(0, r(f.id, i + 1))], now: T0 })));
        const won = results.flatMap((res, i) => (res.ok ? [i] : []));
        assert.equal(won.length, 1, JSON.stringify(results));
        for (const res of results) if (!res.ok) assert.deepEqual(res.conflicts, [0]);
        assert.deepEqual(await mapOf(other, f.id, 'data'), [[0, r(f.id, won[0]! + 1)]]);
      }));

      it('fails with not-found and is-dir, after checking its arguments', withNs(async ({ ns }) => {
        const d = await dir(ns, ROOT_ID, 'd');
        const f = await file(ns, ROOT_ID, 'f');
        const ok: ForkCommit = { changes: [put(0, r(f.id, 1))], now: T0 };
        for (const id of [999, 0, -1, 1.5, PARENT_OF_ROOT]) {
          await rejectsWith(ns.commitFork(id, 'data', ok), 'not-found');
          await rejectsWith(ns.blockMap(id, 'rsrc'), 'not-found');
          await rejectsWith(ns.blockRef(id, 'data', 0), 'not-found');
        }
        for (const id of [d.id, ROOT_ID]) {
          await rejectsWith(ns.commitFork(id, 'data', ok), 'is-dir');
          await rejectsWith(ns.commitFork(id, 'rsrc', { changes: [], length: 0, now: T0 }), 'is-dir');
          await rejectsWith(ns.blockMap(id, 'data'), 'is-dir');
          await rejectsWith(ns.blockRef(id, 'data', 0), 'is-dir');
        }
        const bad: [string, ForkCommit][] = [
          ['negative index', { changes: [put(-1, null)], now: T0 }],
          ['fractional index', { changes: [put(1.5, null)], now: T0 }],
          ['unsafe index', { changes: [put(2 ** 53, null)], now: T0 }],
          ['duplicate index', { changes: [put(3, r(f.id, 1)), put(3, null)], now: T0 }],
          ['ref file 0', { changes: [put(0, r(0, 1))], now: T0 }],
          ['ref gen 0', { changes: [put(0, r(f.id, 0))], now: T0 }],
          ['negative gen in expect', { changes: [put(0, null, r(f.id, -2))], now: T0 }],
          ['fractional gen', { changes: [put(0, r(f.id, 1.5))], now: T0 }],
          ['negative length', { changes: [], length: -1, now: T0 }],
          ['fractional length', { changes: [], length: 0.5, now: T0 }],
          ['NaN modifiedAt', { changes: [], modifiedAt: Number.NaN, now: T0 }],
          ['fractional now', { changes: [], now: T0 + 0.5 }],
          ['no changes array', { now: T0 } as unknown as ForkCommit],
        ];
        for (const [what, commit] of bad) {
          for (const id of [f.id, 999, d.id]) await assert.rejects(ns.commitFork(id, 'data', commit), RangeError, `${what} on ${id}`);
        }
        for (const id of [f.id, 999]) {
          await assert.rejects(ns.commitFork(id, 'both' as ForkKind, ok), RangeError);
          await assert.rejects(ns.blockMap(id, 'both' as ForkKind), RangeError);
          for (const index of [-1, 0.5, Number.NaN, 2 ** 53]) await assert.rejects(ns.blockRef(id, 'data', index), RangeError, String(index));
        }
        assert.deepEqual(await mapOf(ns, f.id, 'data'), []);
        await ns.remove(f.id, T0);
        await rejectsWith(ns.commitFork(f.id, 'data', ok), 'not-found');
        await rejectsWith(ns.blockMap(f.id, 'data'), 'not-found');
      }));

      it('drops blocks past a new length, including a next past the new end', withNs(async ({ ns }) => {
        await ns.fixBlockSize(10);
        const f = await file(ns, ROOT_ID, 'f');
        await commitOk(ns, f.id, 'data', { changes: [0, 1, 2, 3, 4].map((i) => put(i, r(f.id, i + 1))), length: 50, now: T0 });
        await commitOk(ns, f.id, 'rsrc', { changes: [put(0, r(f.id, 9)), put(7, r(f.id, 10))], length: 80, now: T0 });
        const node = await commitOk(ns, f.id, 'data', { changes: [put(4, r(f.id, 40), r(f.id, 5)), put(5, r(f.id, 50)), put(1, r(f.id, 20), r(f.id, 2))], length: 35, now: T0 + 10 });
        assert.deepEqual([node.dataLength, node.rsrcLength], [35, 80]);
        assert.deepEqual(await mapOf(ns, f.id, 'data'), [[0, r(f.id, 1)], [1, r(f.id, 20)], [2, r(f.id, 3)], [3, r(f.id, 4)]]);
        assert.deepEqual(
          (await allGc(ns)).sort(compareGcEntries),
          [gc(f.id, 'data', 1, 2, T0 + 10), gc(f.id, 'data', 4, 5, T0 + 10), gc(f.id, 'data', 4, 40, T0 + 10), gc(f.id, 'data', 5, 50, T0 + 10)].sort(compareGcEntries),
        );
        assert.equal((await ns.stats()).bytes, 115);

        // At a block boundary the block that starts there goes; growing drops nothing.
        await commitOk(ns, f.id, 'data', { changes: [], length: 30, now: T0 + 11 });
        assert.deepEqual((await mapOf(ns, f.id, 'data')).map(([i]) => i), [0, 1, 2]);
        await commitOk(ns, f.id, 'data', { changes: [], length: 21, now: T0 + 12 });
        assert.deepEqual((await mapOf(ns, f.id, 'data')).map(([i]) => i), [0, 1, 2]);
        await commitOk(ns, f.id, 'data', { changes: [], length: 1000, now: T0 + 13 });
        assert.deepEqual((await mapOf(ns, f.id, 'data')).map(([i]) => i), [0, 1, 2]);
        assert.equal(await ns.gcPending(), 5);

        // The other fork keeps its blocks until its own length shrinks.
        assert.deepEqual((await mapOf(ns, f.id, 'rsrc')).map(([i]) => i), [0, 7]);
        const last = await commitOk(ns, f.id, 'rsrc', { changes: [], length: 0, now: T0 + 14 });
        assert.deepEqual(await mapOf(ns, f.id, 'rsrc'), []);
        assert.deepEqual((await allGc(ns)).filter((e) => e.fork === 'rsrc'), [gc(f.id, 'rsrc', 0, 9, T0 + 14), gc(f.id, 'rsrc', 7, 10, T0 + 14)]);
        assert.deepEqual([last.dataLength, last.rsrcLength], [1000, 0]);
        assert.equal((await ns.stats()).bytes, 1000);
      }));

      it('sets a length without a fixed block size, dropping nothing', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        const node = await commitOk(ns, f.id, 'data', { changes: [put(3, r(f.id, 1))], length: 1, now: T0 });
        assert.equal(node.dataLength, 1);
        assert.deepEqual(await mapOf(ns, f.id, 'data'), [[3, r(f.id, 1)]]);
        await ns.update(f.id, { dataLength: 0 });
        assert.deepEqual(await mapOf(ns, f.id, 'data'), [[3, r(f.id, 1)]]);
        assert.equal(await ns.gcPending(), 0);
        assert.equal((await ns.stats()).bytes, 0);
      }));

      it('queues every block of both forks when a file is removed', withNs(async ({ ns, other }) => {
        await ns.fixBlockSize(4);
        const f = await file(ns, ROOT_ID, 'f');
        const g = await file(ns, ROOT_ID, 'g');
        await commitOk(ns, f.id, 'data', { changes: [put(0, r(f.id, 1)), put(1, r(f.id, 2))], length: 8, now: T0 });
        await commitOk(ns, f.id, 'rsrc', { changes: [put(0, r(f.id, 3))], length: 3, now: T0 });
        await commitOk(ns, g.id, 'data', { changes: [put(0, r(g.id, 4))], length: 4, now: T0 });
        await other.remove(f.id, T0 + 20);
        assert.deepEqual(await allGc(ns), [gc(f.id, 'data', 0, 1, T0 + 20), gc(f.id, 'data', 1, 2, T0 + 20), gc(f.id, 'rsrc', 0, 3, T0 + 20)]);
        await rejectsWith(ns.blockMap(f.id, 'data'), 'not-found');
        assert.deepEqual(await mapOf(ns, g.id, 'data'), [[0, r(g.id, 4)]], 'other files keep theirs');
        assert.equal((await ns.stats()).bytes, 4);
        const d = await dir(ns, ROOT_ID, 'd');
        const empty = await file(ns, ROOT_ID, 'empty');
        await ns.remove(d.id, T0 + 30);
        await ns.remove(empty.id, T0 + 30);
        assert.equal(await ns.gcPending(), 3);
      }));

      it('drops blocks past a length set by update', withNs(async ({ ns }) => {
        await ns.fixBlockSize(10);
        const f = await file(ns, ROOT_ID, 'f');
        await commitOk(ns, f.id, 'data', { changes: [0, 1, 2].map((i) => put(i, r(f.id, i + 1))), length: 30, now: T0 });
        await commitOk(ns, f.id, 'rsrc', { changes: [put(0, r(f.id, 7))], length: 5, now: T0 });
        await ns.update(f.id, { dataLength: 100, uid: 7 });
        assert.equal(await ns.gcPending(), 0);
        const before = Date.now();
        const node = await ns.update(f.id, { dataLength: 11, rsrcLength: 0 });
        const after = Date.now();
        assert.deepEqual([node.dataLength, node.rsrcLength], [11, 0]);
        assert.deepEqual(await mapOf(ns, f.id, 'data'), [[0, r(f.id, 1)], [1, r(f.id, 2)]]);
        assert.deepEqual(await mapOf(ns, f.id, 'rsrc'), []);
        const queued = await allGc(ns);
        assert.deepEqual(queued.map(({ at: _, ...e }) => e).sort((x, y) => x.gen - y.gen), [
          { file: f.id, fork: 'data', index: 2, gen: 3 },
          { file: f.id, fork: 'rsrc', index: 0, gen: 7 },
        ]);
        for (const e of queued) assert.ok(e.at >= before && e.at <= after, `stamped ${e.at}, called in [${before}, ${after}]`);
        assert.equal((await ns.stats()).bytes, 11);
      }));

      it('exchange swaps the block maps of both forks, refs keeping their file', withNs(async ({ ns, other }) => {
        await ns.fixBlockSize(4);
        const a = await file(ns, ROOT_ID, 'a');
        const b = await file(ns, ROOT_ID, 'b');
        await commitOk(ns, a.id, 'data', { changes: [put(0, r(a.id, 1))], length: 4, now: T0 });
        await commitOk(ns, a.id, 'rsrc', { changes: [put(0, r(a.id, 2))], length: 2, now: T0 });
        await commitOk(ns, b.id, 'data', { changes: [put(0, r(b.id, 3)), put(1, r(b.id, 4))], length: 8, now: T0 });
        const [ra, rb] = await other.exchange(a.id, b.id);
        assert.deepEqual([ra.dataLength, ra.rsrcLength, rb.dataLength, rb.rsrcLength], [8, 0, 4, 2]);
        assert.deepEqual(await mapOf(ns, a.id, 'data'), [[0, r(b.id, 3)], [1, r(b.id, 4)]]);
        assert.deepEqual(await mapOf(ns, a.id, 'rsrc'), []);
        assert.deepEqual(await mapOf(ns, b.id, 'data'), [[0, r(a.id, 1)]]);
        assert.deepEqual(await mapOf(ns, b.id, 'rsrc'), [[0, r(a.id, 2)]]);
        assert.equal(await ns.gcPending(), 0);
        assert.equal((await ns.stats()).bytes, 14);
        // Commits follow the bytes: b now holds a's objects.
        assert.deepEqual(await ns.commitFork(b.id, 'data', { changes: [put(0, null, r(b.id, 3))], now: T0 }), { ok: false, conflicts: [0] });
        await commitOk(ns, b.id, 'data', { changes: [put(0, r(b.id, 5), r(a.id, 1))], now: T0 + 1 });
        assert.deepEqual(await allGc(ns), [gc(a.id, 'data', 0, 1, T0 + 1)]);
        await ns.exchange(a.id, a.id);
        assert.deepEqual((await mapOf(ns, a.id, 'data')).length, 2);
        await ns.exchange(b.id, a.id);
        assert.deepEqual(await mapOf(ns, a.id, 'data'), [[0, r(b.id, 5)]]);
        assert.deepEqual(await mapOf(ns, a.id, 'rsrc'), [[0, r(a.id, 2)]]);
        assert.deepEqual(await mapOf(ns, b.id, 'data'), [[0, r(b.id, 3)], [1, r(b.id, 4)]]);
        assert.deepEqual(await mapOf(ns, b.id, 'rsrc'), []);
      }));

      it('lists GC entries oldest first, ties in member order, within before and limit', withNs(async ({ ns }) => {
        await ns.fixBlockSize(1);
        const files: NodeRecord[] = [];
        // 84 files: ids 17 to 100, so equal times compare '100:...' with '17:...' by bytes.
        for (let i = 0; i < 84; i++) files.push(await file(ns, ROOT_ID, `f${i}`));
        const [f17, f100] = [files[0]!, files.at(-1)!];
        assert.deepEqual([f17.id, f100.id], [17, 100]);
        let gen = 0;
        const queue = async (f: NodeRecord, index: number, at: number) => {
          const old = r(f.id, ++gen);
          await commitOk(ns, f.id, 'data', { changes: [put(index, old)], now: at });
          await commitOk(ns, f.id, 'data', { changes: [put(index, null, old)], now: at });
          return gc(f.id, 'data', index, old.gen, at);
        };
        const e = [
          await queue(f17, 9, T0 + 5),
          await queue(f17, 10, T0 + 5),
          await queue(f100, 0, T0 + 5),
          await queue(f17, 0, T0 + 7),
          await queue(f17, 1, T0 - 3),
          await queue(f100, 3, -5),
          await queue(f17, 2, 0),
          await queue(f17, 3, T0 + 5),
        ];
        const want = [e[5]!, e[6]!, e[4]!, e[2]!, e[1]!, e[7]!, e[0]!, e[3]!];
        assert.deepEqual([...e].sort(compareGcEntries), want, 'the documented order');
        assert.deepEqual(await allGc(ns), want);
        assert.equal(await ns.gcPending(), 8);
        assert.deepEqual(await ns.gcDue(T0 + 5, 100), want.slice(0, 7), 'at == before is due');
        assert.deepEqual(await ns.gcDue(T0 + 4, 100), want.slice(0, 3));
        assert.deepEqual(await ns.gcDue(-6, 100), []);
        assert.deepEqual(await ns.gcDue(Number.MAX_SAFE_INTEGER, 4), want.slice(0, 4));
        assert.deepEqual(await ns.gcDue(T0 + 5, 0), []);
        assert.deepEqual(await ns.gcDue(Number.MIN_SAFE_INTEGER, 10), []);
        for (const [before, limit] of [[1.5, 1], [0, -1], [0, 0.5], [Number.NaN, 1]] as const) await assert.rejects(ns.gcDue(before, limit), RangeError);

        // gcDone matches by object: the time is not needed, missing entries are ignored.
        await ns.gcDone([want[0]!, { ...want[3]!, at: 12345 }, gc(f17.id, 'data', 99, 999, T0), gc(f17.id, 'rsrc', 9, want[6]!.gen, T0)]);
        assert.deepEqual(await allGc(ns), [want[1]!, want[2]!, want[4]!, want[5]!, want[6]!, want[7]!]);
        assert.equal(await ns.gcPending(), 6);
        await ns.gcDone([]);
        await ns.gcDone([want[0]!]);
        assert.equal(await ns.gcPending(), 6);
        for (const bad of [{ ...want[1]!, gen: 0 }, { ...want[1]!, fork: 'x' as ForkKind }, { ...want[1]!, index: -1 }, { ...want[1]!, file: 1.5 }]) {
          await assert.rejects(ns.gcDone([want[2]!, bad]), RangeError, JSON.stringify(bad));
        }
        assert.equal(await ns.gcPending(), 6, 'a bad batch removes nothing');
        await ns.gcDone(await ns.gcDue(Number.MAX_SAFE_INTEGER, 100));
        assert.equal(await ns.gcPending(), 0);
        assert.deepEqual(await allGc(ns), []);
      }));

      it('keeps one entry per object, restamped when it is queued again', withNs(async ({ ns }) => {
        const f = await file(ns, ROOT_ID, 'f');
        const [x, y] = [r(f.id, 1), r(f.id, 2)];
        await commitOk(ns, f.id, 'data', { changes: [put(0, x)], now: T0 });
        await commitOk(ns, f.id, 'data', { changes: [put(0, y, x)], now: T0 + 1 });
        await commitOk(ns, f.id, 'data', { changes: [put(0, x, y)], now: T0 + 2 });
        await commitOk(ns, f.id, 'data', { changes: [put(0, null, x)], now: T0 + 3 });
        assert.deepEqual(await allGc(ns), [gc(f.id, 'data', 0, 2, T0 + 2), gc(f.id, 'data', 0, 1, T0 + 3)]);
      }));

      it('keeps block maps, generations, the block size and the GC queue across a reopen', withNs(async ({ h, t, ns, volume }) => {
        if (!h.reopen) {
          t.skip('backend has no reopen');
          return;
        }
        await ns.fixBlockSize(512);
        const f = await file(ns, ROOT_ID, 'f');
        const first = await ns.reserveGenerations(10);
        await commitOk(ns, f.id, 'data', { changes: [put(0, r(f.id, first)), put(1, r(f.id, first + 1))], length: 600, now: T0 });
        await commitOk(ns, f.id, 'data', { changes: [put(1, r(f.id, first + 2), r(f.id, first + 1))], now: T0 + 1 });
        await h.store.close();
        await h.peer?.close();
        const again = (await h.reopen()).namespace(volume, OPTS);
        assert.equal(await again.fixBlockSize(4096), 512);
        assert.equal(await again.reserveGenerations(1), first + 10);
        assert.deepEqual(await mapOf(again, f.id, 'data'), [[0, r(f.id, first)], [1, r(f.id, first + 2)]]);
        assert.deepEqual(await again.gcDue(Number.MAX_SAFE_INTEGER, 10), [gc(f.id, 'data', 1, first + 1, T0 + 1)]);
        assert.equal((await again.stats()).bytes, 600);
      }));

      it('matches an in-memory model over random commits', withNs(async ({ h }) => {
        let run = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(commitArb, { minLength: 1, maxLength: 15 }), async (steps) => {
            const volume = `blocks${++run}`;
            const ns = h.store.namespace(volume, OPTS);
            const peer = (h.peer ?? h.store).namespace(volume, OPTS);
            await ns.init('root', ROOT_INIT);
            await ns.fixBlockSize(BLOCK);
            const f = await file(ns, ROOT_ID, 'f');
            const model = new BlockModel(f.id);
            for (const [i, step] of steps.entries()) {
              const commit = model.commitFor(step, T0 + i);
              const want = model.commit(step.fork, commit);
              const got = await (i % 2 ? peer : ns).commitFork(f.id, step.fork, commit);
              if (want.ok) {
                assert.ok(got.ok, `step ${i}: ${JSON.stringify(got)}`);
                assert.deepEqual([got.node.dataLength, got.node.rsrcLength, got.node.modifiedAt], [model.length.data, model.length.rsrc, model.modifiedAt]);
              } else {
                assert.deepEqual(got, want, `step ${i}`);
              }
            }
            for (const fork of ['data', 'rsrc'] as const) {
              assert.deepEqual(await mapOf(ns, f.id, fork), [...model.maps[fork].entries()].sort((x, y) => x[0] - y[0]), fork);
            }
            assert.deepEqual(await allGc(ns), [...model.gc.values()].sort(compareGcEntries));
            assert.equal(await ns.gcPending(), model.gc.size);
            assert.equal((await ns.stats()).bytes, model.length.data + model.length.rsrc);
          }),
          { numRuns: 30 },
        );
      }));
    });

    describe('model', () => {
      it('matches an in-memory model over random creates, moves and removes', withNs(async ({ h }) => {
        let run = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 60 }), async (ops) => {
            const ns = h.store.namespace(`model${++run}`, OPTS);
            const peer = (h.peer ?? h.store).namespace(`model${run}`, OPTS);
            await ns.init('root', ROOT_INIT);
            const model = new Model();
            for (const [i, op] of ops.entries()) {
              const target = i % 2 ? peer : ns;
              const pick = (n: number) => model.pick(n);
              let got: number | NamespaceFailure;
              let want: number | NamespaceFailure;
              if (op.op === 'create') {
                const parent = pick(op.parent);
                want = model.create(parent, op.name, op.kind);
                got = await outcome(target.create(parent, op.name, op.kind, FILE_INIT, T0 + i));
              } else if (op.op === 'move') {
                const [id, parent] = [pick(op.node), pick(op.parent)];
                want = model.move(id, parent, op.name);
                got = await outcome(target.move(id, parent, op.name, T0 + i));
              } else {
                const id = pick(op.node);
                want = model.remove(id);
                got = await outcome(target.remove(id, T0 + i));
              }
              assert.equal(got, want, `step ${i}: ${JSON.stringify(op)}`);
            }
            await model.check(ns);
          }),
          { numRuns: 40 },
        );
      }));
    });

    describe('persistence', () => {
      it('keeps the namespace across a reopen', withNs(async ({ h, t, ns, volume }) => {
        if (!h.reopen) {
          t.skip('backend has no reopen');
          return;
        }
        const d = await dir(ns, ROOT_ID, 'd');
        const f = await ns.update((await file(ns, d.id, 'f')).id, { dataLength: 77, finderInfo: randomBytes(32) });
        await ns.setXattr(f.id, 'x', randomBytes(10), 'create');
        const x = await ns.getXattr(f.id, 'x');
        await ns.kvSet('k', Buffer.from('v'));
        const gone = await file(ns, d.id, 'gone');
        await ns.remove(gone.id, T0);
        await h.store.close();
        await h.peer?.close();

        const again = (await h.reopen()).namespace(volume, OPTS);
        assert.deepEqual(await again.get(f.id), f);
        assert.deepEqual(await again.lookup(d.id, 'F'), f);
        assert.deepEqual(await again.getXattr(f.id, 'x'), x);
        assert.deepEqual(await again.kvGet('k'), Buffer.from('v'));
        assert.deepEqual(await again.stats(), { nodes: 3, lastId: gone.id, bytes: 77 });
        assert.equal((await file(again, d.id, 'next')).id, gone.id + 1);
      }));
    });
  });
}

/** Creates the names under `parent`, `concurrency` at a time, in order of the names. */
async function createAll(ns: NamespaceStore, parent: number, names: string[], concurrency: number): Promise<NodeRecord[]> {
  const out: NodeRecord[] = [];
  for (let i = 0; i < names.length; i += concurrency) {
    out.push(...(await Promise.all(names.slice(i, i + concurrency).map((n) => ns.create(parent, n, 'file', FILE_INIT, T0)))));
  }
  return out;
}

/** Every node reaches the root, and every directory's childCount matches its listing. */
async function assertTree(ns: NamespaceStore): Promise<void> {
  const seen = new Map<number, NodeRecord>();
  const walk = async (d: NodeRecord): Promise<void> => {
    const kids = await allChildren(ns, d.id);
    assert.equal(kids.length, d.childCount, `childCount of ${d.id}`);
    for (const k of kids) {
      assert.equal(k.parent, d.id);
      assert.ok(!seen.has(k.id), `${k.id} listed twice`);
      seen.set(k.id, k);
      if (k.kind === 'dir') await walk(k);
    }
  };
  await walk((await ns.get(ROOT_ID))!);
  assert.equal((await ns.stats()).nodes, seen.size + 1, 'every node is reachable from the root');
}

type Op =
  | { op: 'create'; parent: number; name: string; kind: NodeKind }
  | { op: 'move'; node: number; parent: number; name: string }
  | { op: 'remove'; node: number };

/** Few names, many of them equal under the fold, so collisions are common. */
const modelName = fc.constantFrom('a', 'A', 'b', 'é', 'e\u0301', 'É', 'ß', 'ss', '😀', '\uff21', '\ue000');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('create' as const), parent: fc.nat(), name: modelName, kind: fc.constantFrom<NodeKind>('dir', 'dir', 'file') }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('move' as const), node: fc.nat(), parent: fc.nat(), name: modelName }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), node: fc.nat() }) },
);

interface ModelNode {
  id: number;
  parent: number;
  name: string;
  kind: NodeKind;
}

/** The namespace as the interface describes it, with the same order of checks. */
class Model {
  readonly nodes = new Map<number, ModelNode>([[ROOT_ID, { id: ROOT_ID, parent: PARENT_OF_ROOT, name: 'root', kind: 'dir' }]]);
  /** Every id an op may name: the fixed ones, a never-used one, and each one ever created. */
  readonly known: number[] = [PARENT_OF_ROOT, ROOT_ID, 999];
  private lastId = FIRST_FREE_ID - 1;

  /** Mostly a live node (so most ops can succeed), one time in ten any id ever seen. */
  pick(n: number): number {
    if (n % 10 === 0) return this.known[Math.floor(n / 10) % this.known.length]!;
    const live = [...this.nodes.keys()];
    return live[Math.floor(n / 10) % live.length]!;
  }

  create(parent: number, name: string, kind: NodeKind): number | NamespaceFailure {
    const p = this.nodes.get(parent);
    if (!p) return 'not-found';
    if (p.kind !== 'dir') return 'not-dir';
    if (this.holder(parent, name)) return 'exists';
    const id = ++this.lastId;
    this.nodes.set(id, { id, parent, name, kind });
    this.known.push(id);
    return id;
  }

  move(id: number, parent: number, name: string): number | NamespaceFailure {
    if (id === ROOT_ID) return 'is-root';
    const n = this.nodes.get(id);
    if (!n) return 'not-found';
    const p = this.nodes.get(parent);
    if (!p) return 'not-found';
    if (p.kind !== 'dir') return 'not-dir';
    if (n.kind === 'dir') {
      for (let a: number = parent; a !== PARENT_OF_ROOT; a = this.nodes.get(a)!.parent) if (a === id) return 'cycle';
    }
    const holder = this.holder(parent, name);
    if (holder && holder.id !== id) return 'exists';
    n.parent = parent;
    n.name = name;
    return id;
  }

  remove(id: number): number | NamespaceFailure {
    if (id === ROOT_ID) return 'is-root';
    const n = this.nodes.get(id);
    if (!n) return 'not-found';
    if (this.childrenOf(id).length > 0) return 'not-empty';
    this.nodes.delete(id);
    return id;
  }

  async check(ns: NamespaceStore): Promise<void> {
    for (const n of this.nodes.values()) {
      const got = await ns.get(n.id);
      assert.ok(got, `node ${n.id} exists`);
      const kids = this.childrenOf(n.id);
      assert.deepEqual(
        { id: got.id, parent: got.parent, name: got.name, kind: got.kind, childCount: got.childCount },
        { ...n, childCount: n.kind === 'dir' ? kids.length : 0 },
      );
      if (n.kind === 'dir') {
        const listed = await allChildren(ns, n.id, 3);
        assert.deepEqual(listed.map((c) => c.id), kids.sort((x, y) => byFold(x.name, y.name)).map((c) => c.id), `children of ${n.id}`);
      }
    }
    for (const id of this.known) if (!this.nodes.has(id)) assert.equal(await ns.get(id), undefined, `node ${id} is gone`);
    assert.deepEqual(await ns.stats(), { nodes: this.nodes.size, lastId: this.lastId, bytes: 0 });
  }

  private holder(parent: number, name: string): ModelNode | undefined {
    return this.childrenOf(parent).find((c) => FOLD(c.name) === FOLD(name));
  }

  private childrenOf(parent: number): ModelNode[] {
    return [...this.nodes.values()].filter((c) => c.parent === parent && c.id !== ROOT_ID);
  }
}

const BLOCK = 8;

interface CommitStep {
  fork: ForkKind;
  changes: { index: number; expect: 'current' | 'absent' | 'stale'; next: boolean }[];
  length: number | null;
  touch: boolean;
}

const commitArb: fc.Arbitrary<CommitStep> = fc.record({
  fork: fc.constantFrom<ForkKind>('data', 'data', 'rsrc'),
  changes: fc.uniqueArray(
    fc.record({ index: fc.nat({ max: 7 }), expect: fc.constantFrom('current' as const, 'current' as const, 'current' as const, 'absent' as const, 'stale' as const), next: fc.boolean() }),
    { selector: (c) => c.index, maxLength: 4 },
  ),
  length: fc.option(fc.nat({ max: 9 * BLOCK }), { nil: null }),
  touch: fc.boolean(),
});

/** One file's block maps, lengths and GC queue as block-maps.ts describes them. */
class BlockModel {
  readonly maps: Record<ForkKind, Map<number, BlockRef>> = { data: new Map(), rsrc: new Map() };
  readonly length: Record<ForkKind, number> = { data: 0, rsrc: 0 };
  /** By gcMember: an object has one entry. */
  readonly gc = new Map<string, GcEntry>();
  modifiedAt = T0;
  private gen = 0;

  constructor(private readonly file: number) {}

  /** Turns a step into a commit: fresh generations for every next, stale refs that never held. */
  commitFor(step: CommitStep, now: number): ForkCommit {
    const map = this.maps[step.fork];
    const changes = step.changes.map((c): BlockChange => {
      const expect = c.expect === 'current' ? map.get(c.index) ?? null : c.expect === 'absent' ? null : { file: this.file, gen: 1_000_000 + c.index };
      return { index: c.index, expect, next: c.next ? { file: this.file, gen: ++this.gen } : null };
    });
    return { changes, now, ...(step.length === null ? {} : { length: step.length }), ...(step.touch ? { modifiedAt: now } : {}) };
  }

  /** Like commitFork, but on success only says so: the caller compares the node with the model. */
  commit(fork: ForkKind, c: ForkCommit): { ok: true } | { ok: false; conflicts: number[] } {
    const map = this.maps[fork];
    const same = (a: BlockRef | null | undefined, b: BlockRef | null) => (a && b ? a.file === b.file && a.gen === b.gen : !a && !b);
    const conflicts = c.changes.filter((ch) => !same(map.get(ch.index), ch.expect)).map((ch) => ch.index);
    if (conflicts.length > 0) return { ok: false, conflicts };
    const drop = (index: number, ref: BlockRef) => {
      const e: GcEntry = { file: ref.file, fork, index, gen: ref.gen, at: c.now };
      this.gc.set(`${e.file}:${fork}:${index}:${e.gen}`, e);
    };
    for (const ch of c.changes) {
      const cur = map.get(ch.index) ?? null;
      if (same(cur, ch.next)) continue;
      if (cur) drop(ch.index, cur);
      if (ch.next) map.set(ch.index, ch.next);
      else map.delete(ch.index);
    }
    if (c.length !== undefined) {
      const keep = Math.ceil(c.length / BLOCK);
      for (const [index, ref] of [...map]) {
        if (index >= keep) {
          drop(index, ref);
          map.delete(index);
        }
      }
      this.length[fork] = c.length;
    }
    if (c.modifiedAt !== undefined) this.modifiedAt = c.modifiedAt;
    return { ok: true };
  }
}
