/**
 * The ForkStore contract: one suite that every metadata backend must pass. A backend's test
 * file calls forksContract with a function that opens a fresh, empty MetaStore for one test;
 * the suite reaches fork stores through MetaStore.forks().
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { MetaStore } from '../../src/meta/meta-store.js';
import { Access, ForkError, LOCK_TO_END, type ForkFailure, type ForkKind, type ForkOpen, type ForkStore } from '../../src/meta/forks.js';

export interface ForkHarness {
  store: MetaStore;
  /** A second store on the same backing state, like the other node of a pair. */
  peer?: MetaStore;
  /** Closes whatever the harness opened and removes the state. */
  cleanup(): Promise<void>;
}

/** Returns undefined when the backend is unavailable and the test has been skipped. */
export type OpenForkStore = (t: TestContext) => Promise<ForkHarness | undefined>;

const { Read: R, Write: W, DenyRead: DR, DenyWrite: DW } = Access;
const VOLUME = 'tm';

/** Every combination of the four bits, 0 included. */
const MODES = Array.from({ length: 16 }, (_, i) => (i & 1 ? R : 0) | (i & 2 ? W : 0) | (i & 4 ? DR : 0) | (i & 8 ? DW : 0));

/** The rule of AFP-FACTS 4.6, written out independently of the stores. */
function expectConflict(newMode: number, existing: number): boolean {
  const bit = (m: number, b: number) => (m & b) !== 0;
  return (
    (bit(newMode, R) && bit(existing, DR)) ||
    (bit(newMode, W) && bit(existing, DW)) ||
    (bit(newMode, DR) && bit(existing, R)) ||
    (bit(newMode, DW) && bit(existing, W))
  );
}

function mk(openId: string, fileId: number, mode: number, extra: Partial<ForkOpen> = {}): ForkOpen {
  return { openId, session: 's1', node: 'n1', fileId, fork: 'data', mode, ...extra };
}

async function rejectsWith(p: Promise<unknown>, reason: ForkFailure, message?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ForkError, `expected a ForkError, got ${String(err)}`);
    assert.equal(err.reason, reason, message);
    return true;
  });
}

const sortOpens = (opens: ForkOpen[]) => [...opens].sort((a, b) => (a.openId < b.openId ? -1 : a.openId > b.openId ? 1 : 0));

export function forksContract(name: string, openStore: OpenForkStore): void {
  describe(`${name}: ForkStore contract`, () => {
    /** Runs `body` with the volume's fork store (and the peer's, when the backend has one). */
    const withForks = (title: string, body: (f: ForkStore, h: ForkHarness) => Promise<void>) =>
      it(title, async (t) => {
        const h = await openStore(t);
        if (!h) return;
        try {
          await body(h.store.forks(VOLUME), h);
        } finally {
          await h.cleanup();
        }
      });

    withForks('one instance per volume', async (f, h) => {
      assert.equal(h.store.forks(VOLUME), f);
      assert.notEqual(h.store.forks('other'), f);
    });

    withForks('the full deny-mode matrix, within one session and across sessions', async (f) => {
      let fileId = 1000;
      for (const sameSession of [true, false]) {
        for (const first of MODES) {
          for (const second of MODES) {
            fileId++;
            await f.open(mk(`a${fileId}`, fileId, first, { session: 'sa' }));
            const p = f.open(mk(`b${fileId}`, fileId, second, { session: sameSession ? 'sa' : 'sb', node: sameSession ? 'n1' : 'n2' }));
            const what = `existing ${first.toString(16)}, new ${second.toString(16)}, same session ${sameSession}`;
            if (expectConflict(second, first)) {
              await rejectsWith(p, 'deny-conflict', what);
              assert.equal((await f.opensOf(fileId)).length, 1, what);
            } else {
              await p;
              assert.equal((await f.opensOf(fileId)).length, 2, what);
            }
          }
        }
      }
    });

    withForks('mode 0 opens coexist with every deny mode', async (f) => {
      await f.open(mk('all', 1, R | W | DR | DW));
      await f.open(mk('none1', 1, 0, { session: 's2' }));
      await f.open(mk('none2', 1, 0));
      await f.open(mk('none3', 2, 0));
      await f.open(mk('all2', 2, R | W | DR | DW, { session: 's2' }));
      assert.equal((await f.opensOf(1)).length, 3);
      assert.equal((await f.opensOf(2)).length, 2);
    });

    withForks('a new open is checked against every existing open (the union of their modes)', async (f) => {
      await f.open(mk('r', 1, R));
      await f.open(mk('w', 1, W, { session: 's2' }));
      await rejectsWith(f.open(mk('dr', 1, DR, { session: 's3' })), 'deny-conflict');
      await rejectsWith(f.open(mk('dw', 1, DW, { session: 's3' })), 'deny-conflict');
      await f.close('r');
      await f.open(mk('dr', 1, DR, { session: 's3' }));
      await rejectsWith(f.open(mk('r2', 1, R)), 'deny-conflict');
      await rejectsWith(f.open(mk('dw', 1, DW, { session: 's3' })), 'deny-conflict');
      await f.close('w');
      await f.open(mk('dw', 1, DW, { session: 's3' }));
      await rejectsWith(f.open(mk('w2', 1, W)), 'deny-conflict');
      await f.open(mk('zero', 1, 0));
    });

    withForks('data and resource forks are tracked separately', async (f) => {
      await f.open(mk('d', 7, R | W | DR | DW));
      await f.open(mk('r', 7, R | W | DR | DW, { fork: 'rsrc', session: 's2' }));
      await rejectsWith(f.open(mk('d2', 7, R, { session: 's2' })), 'deny-conflict');
      await rejectsWith(f.open(mk('r2', 7, W, { fork: 'rsrc' })), 'deny-conflict');
      const opens = sortOpens(await f.opensOf(7));
      assert.deepEqual(opens, [
        { openId: 'd', session: 's1', node: 'n1', fileId: 7, fork: 'data', mode: R | W | DR | DW },
        { openId: 'r', session: 's2', node: 'n1', fileId: 7, fork: 'rsrc', mode: R | W | DR | DW },
      ]);
      assert.deepEqual(await f.opensOf(8), []);

      // Locks too: a lock on the data fork does not touch the resource fork.
      await f.close('d');
      await f.close('r');
      for (const [id, fork, session] of [['d1', 'data', 'a'], ['d2', 'data', 'b'], ['r1', 'rsrc', 'a'], ['r2', 'rsrc', 'b']] as [string, ForkKind, string][]) {
        await f.open(mk(id, 7, R | W, { fork, session }));
      }
      await f.lock('d1', { start: 0, end: 100 });
      await f.checkAccess('r2', { start: 0, end: 100 });
      await f.lock('r2', { start: 0, end: 100 });
      await rejectsWith(f.checkAccess('d2', { start: 50, end: 51 }), 'range-locked');
      await rejectsWith(f.checkAccess('r1', { start: 50, end: 51 }), 'range-locked');
      await rejectsWith(f.lock('d2', { start: 99, end: 100 }), 'range-locked');
    });

    withForks('lock, overlap, locked, unlock only by exact match', async (f) => {
      await f.open(mk('a', 1, R | W));
      await f.open(mk('b', 1, R | W, { session: 's2' }));
      await f.open(mk('c', 2, R | W, { session: 's2' }));
      await f.lock('a', { start: 0, end: 10 });
      await rejectsWith(f.lock('a', { start: 5, end: 15 }), 'range-overlap');
      await rejectsWith(f.lock('a', { start: 0, end: 10 }), 'range-overlap');
      await rejectsWith(f.lock('a', { start: 9, end: 10 }), 'range-overlap');
      await rejectsWith(f.lock('b', { start: 5, end: 15 }), 'range-locked');
      await rejectsWith(f.lock('b', { start: 0, end: 1 }), 'range-locked');
      await f.lock('b', { start: 10, end: 20 }); // adjacent: [0, 10) and [10, 20) share no byte
      await f.lock('a', { start: 20, end: 30 });
      await f.lock('c', { start: 0, end: 100 }); // another file

      await rejectsWith(f.unlock('a', { start: 0, end: 5 }), 'not-locked');
      await rejectsWith(f.unlock('a', { start: 0, end: 11 }), 'not-locked');
      await rejectsWith(f.unlock('b', { start: 0, end: 10 }), 'not-locked');
      await rejectsWith(f.unlock('a', { start: 10, end: 20 }), 'not-locked');
      await f.unlock('a', { start: 0, end: 10 });
      await rejectsWith(f.unlock('a', { start: 0, end: 10 }), 'not-locked');
      await f.lock('b', { start: 0, end: 10 });
      await rejectsWith(f.lock('a', { start: 0, end: 5 }), 'range-locked');

      // To the end of any possible fork.
      await f.lock('a', { start: 1000, end: LOCK_TO_END });
      await rejectsWith(f.lock('b', { start: 2 ** 52, end: 2 ** 52 + 1 }), 'range-locked');
      await rejectsWith(f.lock('b', { start: LOCK_TO_END - 1, end: LOCK_TO_END }), 'range-locked');
      await rejectsWith(f.lock('a', { start: LOCK_TO_END - 1, end: LOCK_TO_END }), 'range-overlap');
      await f.lock('b', { start: 999, end: 1000 });
      await rejectsWith(f.unlock('a', { start: 1000, end: LOCK_TO_END - 1 }), 'not-locked');
      await f.unlock('a', { start: 1000, end: LOCK_TO_END });
      await f.lock('b', { start: 2 ** 52, end: 2 ** 52 + 1 });
      await f.unlock('b', { start: 2 ** 52, end: 2 ** 52 + 1 });

      for (const op of [() => f.lock('zz', { start: 0, end: 1 }), () => f.unlock('zz', { start: 0, end: 1 }), () => f.checkAccess('zz', { start: 0, end: 1 }), () => f.close('zz')]) {
        await rejectsWith(op(), 'not-open');
      }
      for (const bad of [{ start: 5, end: 5 }, { start: 6, end: 5 }, { start: -1, end: 5 }, { start: 0.5, end: 5 }, { start: 0, end: LOCK_TO_END + 2 }, { start: 0, end: Number.NaN }]) {
        await assert.rejects(f.lock('a', bad), RangeError, JSON.stringify(bad));
      }
      await assert.rejects(f.open(mk('a', 3, R)), RangeError, 'an openId in use');
      await assert.rejects(f.open(mk('', 3, R)), RangeError);
      await assert.rejects(f.open(mk('x', 0, R)), RangeError);
      await assert.rejects(f.open({ ...mk('x', 3, R), fork: 'both' as ForkKind }), RangeError);
    });

    withForks('closing an open releases its locks and only its locks', async (f) => {
      await f.open(mk('a', 1, R | W));
      await f.open(mk('b', 1, R | W, { session: 's2' }));
      await f.open(mk('c', 1, R, { session: 's3' }));
      await f.lock('a', { start: 0, end: 10 });
      await f.lock('a', { start: 50, end: LOCK_TO_END });
      await f.lock('c', { start: 20, end: 30 });
      await f.close('a');
      await rejectsWith(f.close('a'), 'not-open');
      await rejectsWith(f.unlock('a', { start: 0, end: 10 }), 'not-open');
      assert.deepEqual((await f.opensOf(1)).map((o) => o.openId).sort(), ['b', 'c']);
      await rejectsWith(f.checkAccess('b', { start: 0, end: LOCK_TO_END }), 'range-locked', 'c still holds [20, 30)');
      await f.checkAccess('b', { start: 0, end: 20 });
      await f.checkAccess('b', { start: 30, end: LOCK_TO_END });
      await f.lock('b', { start: 0, end: 10 });
      await f.lock('b', { start: 50, end: LOCK_TO_END });
      await rejectsWith(f.lock('b', { start: 25, end: 26 }), 'range-locked');
      // The same openId may be used again once closed.
      await f.open(mk('a', 1, R));
      await rejectsWith(f.lock('a', { start: 0, end: 1 }), 'range-locked');
    });

    withForks('checkAccess sees other opens\' locks, not the open\'s own', async (f) => {
      await f.open(mk('a', 1, R | W));
      await f.open(mk('b', 1, R | W, { session: 's2' }));
      await f.open(mk('a2', 1, R, { session: 's1' })); // same session, another open: still "another"
      await f.open(mk('other', 2, R | W));
      await f.lock('a', { start: 100, end: 200 });
      await f.checkAccess('a', { start: 0, end: 1000 });
      await f.checkAccess('b', { start: 0, end: 100 });
      await f.checkAccess('b', { start: 200, end: 300 });
      await f.checkAccess('b', { start: 150, end: 150 }); // empty
      await f.checkAccess('other', { start: 0, end: 1000 });
      await rejectsWith(f.checkAccess('b', { start: 199, end: 300 }), 'range-locked');
      await rejectsWith(f.checkAccess('b', { start: 0, end: 101 }), 'range-locked');
      await rejectsWith(f.checkAccess('a2', { start: 150, end: 151 }), 'range-locked');
      await assert.rejects(f.checkAccess('b', { start: 10, end: 9 }), RangeError);
      await f.unlock('a', { start: 100, end: 200 });
      await f.checkAccess('b', { start: 0, end: LOCK_TO_END });
    });

    withForks('releaseSession ends a session\'s opens and locks', async (f) => {
      await f.open(mk('s1a', 1, R | W | DW, { session: 's1' }));
      await f.open(mk('s1b', 2, R | W | DR | DW, { session: 's1', fork: 'rsrc' }));
      await f.open(mk('s2a', 1, R, { session: 's2', node: 'n2' }));
      await f.lock('s1a', { start: 0, end: LOCK_TO_END });
      await rejectsWith(f.open(mk('x', 1, W, { session: 's3' })), 'deny-conflict');
      await rejectsWith(f.lock('s2a', { start: 5, end: 6 }), 'range-locked');

      assert.equal(await f.releaseSession('s1'), 2);
      assert.equal(await f.releaseSession('s1'), 0);
      assert.equal(await f.releaseSession('nobody'), 0);
      assert.deepEqual((await f.opensOf(1)).map((o) => o.openId), ['s2a']);
      assert.deepEqual(await f.opensOf(2), []);
      await rejectsWith(f.close('s1a'), 'not-open');
      await f.lock('s2a', { start: 5, end: 6 });
      await f.open(mk('x', 1, W | DW, { session: 's3' }));
      await f.open(mk('y', 2, R | W | DR | DW, { session: 's3', fork: 'rsrc' }));
    });

    withForks('releaseNode ends every open a node held, across sessions', async (f) => {
      await f.open(mk('a', 1, R | W | DR | DW, { session: 'sa', node: 'dead' }));
      await f.open(mk('b', 2, W | DW, { session: 'sb', node: 'dead' }));
      await f.open(mk('c', 3, R | W | DW, { session: 'sc', node: 'live' }));
      await f.lock('a', { start: 0, end: 10 });
      await f.lock('c', { start: 0, end: 10 });

      assert.equal(await f.releaseNode('dead'), 2);
      assert.equal(await f.releaseNode('dead'), 0);
      await f.open(mk('a2', 1, R | W | DR | DW, { session: 'sd', node: 'live' }));
      await f.open(mk('b2', 2, W | DW, { session: 'sd', node: 'live' }));
      await f.lock('a2', { start: 0, end: 10 });
      await rejectsWith(f.open(mk('c2', 3, W, { session: 'sd', node: 'live' })), 'deny-conflict');
      assert.equal(await f.releaseSession('sa'), 0, 'the node release also cleared the session index');
      assert.equal(await f.releaseSession('sd'), 2);
      assert.equal(await f.releaseNode('live'), 1);
      for (const id of [1, 2, 3]) assert.deepEqual(await f.opensOf(id), []);
    });

    withForks('at most 4096 locks per file and fork', async (f) => {
      await f.open(mk('a', 1, R | W));
      await f.open(mk('b', 1, R | W, { session: 's2' }));
      await f.open(mk('r', 1, R | W, { fork: 'rsrc' }));
      // Concurrent calls: each is its own atomic change, so this only speeds the test up.
      const batch = async (from: number, to: number) => {
        const all: Promise<void>[] = [];
        for (let i = from; i < to; i++) all.push(f.lock(i % 2 === 0 ? 'a' : 'b', { start: i * 10, end: i * 10 + 5 }));
        await Promise.all(all);
      };
      for (let i = 0; i < 4096; i += 512) await batch(i, i + 512);
      await rejectsWith(f.lock('a', { start: 1_000_000, end: 1_000_001 }), 'too-many');
      await rejectsWith(f.lock('b', { start: 1_000_000, end: 1_000_001 }), 'too-many');
      await f.lock('r', { start: 0, end: 1 }); // the resource fork has its own limit
      await f.unlock('a', { start: 0, end: 5 });
      await f.lock('b', { start: 1_000_000, end: 1_000_001 });
      await rejectsWith(f.lock('a', { start: 2_000_000, end: 2_000_001 }), 'too-many');
      await f.close('b');
      await f.lock('a', { start: 2_000_000, end: 2_000_001 });
    });

    withForks('opensOfSession lists exactly a session\'s opens, sorted by openId', async (f) => {
      assert.deepEqual(await f.opensOfSession('s1'), []);
      // 'a~' < 'aé' as strings, while their URI encodings sort the other way round.
      await f.open(mk('aé', 2, R | W | DW, { node: 'n2' }));
      await f.open(mk('a~', 1, R, { fork: 'rsrc' }));
      await f.open(mk('n1:s1:10', 1, R | W));
      await f.open(mk('n1:s1:2', 3, 0));
      await f.open(mk('other', 1, R, { session: 's2' }));
      await f.open(mk('prefix', 1, R, { session: 's1:2' }));
      await f.open(mk('prefix2', 4, R, { session: 's' }));
      await f.open(mk('empty', 4, R, { session: '' }));
      assert.deepEqual(await f.opensOfSession('s1'), [
        { openId: 'a~', session: 's1', node: 'n1', fileId: 1, fork: 'rsrc', mode: R },
        { openId: 'aé', session: 's1', node: 'n2', fileId: 2, fork: 'data', mode: R | W | DW },
        { openId: 'n1:s1:10', session: 's1', node: 'n1', fileId: 1, fork: 'data', mode: R | W },
        { openId: 'n1:s1:2', session: 's1', node: 'n1', fileId: 3, fork: 'data', mode: 0 },
      ]);
      assert.deepEqual((await f.opensOfSession('s2')).map((o) => o.openId), ['other']);
      assert.deepEqual((await f.opensOfSession('s1:2')).map((o) => o.openId), ['prefix']);
      assert.deepEqual((await f.opensOfSession('s')).map((o) => o.openId), ['prefix2']);
      assert.deepEqual((await f.opensOfSession('')).map((o) => o.openId), ['empty']);
      assert.deepEqual(await f.opensOfSession('nobody'), []);
      assert.deepEqual(await f.opensOfSession('s1:'), []);

      await f.close('aé');
      assert.deepEqual((await f.opensOfSession('s1')).map((o) => o.openId), ['a~', 'n1:s1:10', 'n1:s1:2']);
      assert.equal(await f.releaseSession('s1'), 3);
      assert.deepEqual(await f.opensOfSession('s1'), []);
      assert.deepEqual((await f.opensOfSession('s2')).map((o) => o.openId), ['other']);
      await assert.rejects(f.opensOfSession('\ud800'), RangeError);
    });

    withForks('adopt moves an open to another node with its deny modes and locks', async (f) => {
      await f.open(mk('a', 1, R | W | DW, { session: 's1', node: 'dead' }));
      await f.open(mk('c', 2, R, { session: 's1', node: 'dead' }));
      await f.open(mk('b', 1, R, { session: 's2', node: 'live' }));
      await f.lock('a', { start: 0, end: 10 });
      await f.lock('a', { start: 100, end: LOCK_TO_END });

      await f.adopt('a', 'new');
      assert.deepEqual(sortOpens(await f.opensOf(1)), [
        { openId: 'a', session: 's1', node: 'new', fileId: 1, fork: 'data', mode: R | W | DW },
        { openId: 'b', session: 's2', node: 'live', fileId: 1, fork: 'data', mode: R },
      ]);
      assert.deepEqual((await f.opensOfSession('s1')).map((o) => [o.openId, o.node]), [['a', 'new'], ['c', 'dead']]);
      // The locks are still a's: they block b, not a.
      await rejectsWith(f.lock('b', { start: 5, end: 6 }), 'range-locked');
      await rejectsWith(f.checkAccess('b', { start: 200, end: 201 }), 'range-locked');
      await f.checkAccess('a', { start: 0, end: LOCK_TO_END });
      await rejectsWith(f.lock('a', { start: 5, end: 6 }), 'range-overlap');
      // Its deny mode too.
      await rejectsWith(f.open(mk('w', 1, W, { session: 's3', node: 'live' })), 'deny-conflict');
      await f.unlock('a', { start: 0, end: 10 });
      await f.checkAccess('b', { start: 0, end: 100 });

      // The old node no longer answers for it; the new one does.
      assert.equal(await f.releaseNode('dead'), 1, 'only c');
      assert.deepEqual((await f.opensOf(1)).map((o) => o.openId).sort(), ['a', 'b']);
      await rejectsWith(f.checkAccess('b', { start: 200, end: 201 }), 'range-locked');
      assert.equal(await f.releaseNode('new'), 1);
      assert.deepEqual((await f.opensOf(1)).map((o) => o.openId), ['b']);
      await f.checkAccess('b', { start: 0, end: LOCK_TO_END });
      await f.lock('b', { start: 200, end: 201 });
      await f.open(mk('w', 1, W, { session: 's3', node: 'live' }));

      // Unknown or closed opens.
      await rejectsWith(f.adopt('a', 'new'), 'not-open');
      await rejectsWith(f.adopt('zz', 'live'), 'not-open');
      await assert.rejects(f.adopt('', 'live'), RangeError);
      await assert.rejects(f.adopt('b', '\ud800'), RangeError);

      // Onto the node that holds it: nothing changes.
      await f.adopt('b', 'live');
      assert.deepEqual((await f.opensOf(1)).map((o) => [o.openId, o.node]).sort(), [['b', 'live'], ['w', 'live']]);

      // The session index is untouched: releaseSession still finds an adopted open.
      await f.adopt('b', 'elsewhere');
      assert.equal(await f.releaseSession('s2'), 1);
      assert.equal(await f.releaseNode('elsewhere'), 0);
      assert.equal(await f.releaseNode('live'), 1, 'w');
      assert.deepEqual(await f.opensOf(1), []);
    });

    withForks('sessionsOfNode lists each session with an open on the node, once, sorted', async (f) => {
      assert.deepEqual(await f.sessionsOfNode('n1'), []);
      await f.open(mk('1', 1, R, { session: 'sb', node: 'n1' }));
      await f.open(mk('2', 2, R, { session: 'sb', node: 'n1' }));
      await f.open(mk('3', 1, R, { session: 'sa', node: 'n1', fork: 'rsrc' }));
      await f.open(mk('4', 3, R, { session: 'sc', node: 'n2' }));
      await f.open(mk('5', 3, R, { session: 'sb', node: 'n2' }));
      await f.open(mk('6', 3, R, { session: 'sd', node: 'n1:x' }));
      assert.deepEqual(await f.sessionsOfNode('n1'), ['sa', 'sb']);
      assert.deepEqual(await f.sessionsOfNode('n2'), ['sb', 'sc']);
      assert.deepEqual(await f.sessionsOfNode('n1:x'), ['sd']);
      assert.deepEqual(await f.sessionsOfNode('n'), []);
      assert.deepEqual(await f.sessionsOfNode('nobody'), []);

      await f.adopt('3', 'n2');
      assert.deepEqual(await f.sessionsOfNode('n1'), ['sb']);
      assert.deepEqual(await f.sessionsOfNode('n2'), ['sa', 'sb', 'sc']);
      await f.close('1');
      assert.deepEqual(await f.sessionsOfNode('n1'), ['sb'], 'sb still holds 2 there');
      await f.close('2');
      assert.deepEqual(await f.sessionsOfNode('n1'), []);
      assert.equal(await f.releaseSession('sb'), 1);
      assert.deepEqual(await f.sessionsOfNode('n2'), ['sa', 'sc']);
      assert.equal(await f.releaseNode('n2'), 2);
      assert.deepEqual(await f.sessionsOfNode('n2'), []);
      await assert.rejects(f.sessionsOfNode('\udc00'), RangeError);
    });

    withForks('nodes() lists the nodes holding opens and drops each with its last open', async (f) => {
      assert.deepEqual(await f.nodes(), []);
      await f.open(mk('a', 1, R | W | DW, { node: 'n2' }));
      await f.open(mk('b', 2, R, { node: 'n1' }));
      assert.deepEqual(await f.nodes(), ['n1', 'n2']);
      await f.open(mk('c', 2, R, { node: 'n1', fork: 'rsrc' }));
      await f.close('b');
      assert.deepEqual(await f.nodes(), ['n1', 'n2'], 'n1 still holds c');
      await f.close('c');
      assert.deepEqual(await f.nodes(), ['n2']);

      // A refused open adds no node.
      await rejectsWith(f.open(mk('x', 1, W, { session: 's2', node: 'n9' })), 'deny-conflict');
      assert.deepEqual(await f.nodes(), ['n2']);

      await f.open(mk('d', 3, R, { session: 'sd', node: 'n3' }));
      await f.open(mk('d2', 4, R, { session: 'sd', node: 'n3' }));
      assert.deepEqual(await f.nodes(), ['n2', 'n3']);
      assert.equal(await f.releaseSession('sd'), 2);
      assert.deepEqual(await f.nodes(), ['n2']);

      await f.open(mk('e', 3, R, { session: 'se', node: 'n4' }));
      await f.open(mk('e2', 4, R, { session: 'sf', node: 'n4' }));
      await f.open(mk('e3', 4, R, { session: 'sf', node: 'n4:x' }));
      assert.deepEqual(await f.nodes(), ['n2', 'n4', 'n4:x']);
      assert.equal(await f.releaseNode('n4'), 2);
      assert.deepEqual(await f.nodes(), ['n2', 'n4:x']);
      assert.equal(await f.releaseNode('n4:x'), 1);
      assert.deepEqual(await f.nodes(), ['n2']);

      // Adopting the last open moves the node; adopting onto the same node changes nothing.
      await f.adopt('a', 'n5');
      assert.deepEqual(await f.nodes(), ['n5']);
      await f.adopt('a', 'n5');
      assert.deepEqual(await f.nodes(), ['n5']);
      await f.open(mk('g', 5, R, { node: 'n5' }));
      await f.adopt('g', 'n0');
      assert.deepEqual(await f.nodes(), ['n0', 'n5']);
      await rejectsWith(f.adopt('zz', 'n7'), 'not-open');
      assert.deepEqual(await f.nodes(), ['n0', 'n5']);
      assert.equal(await f.releaseNode('n5'), 1);
      assert.deepEqual(await f.nodes(), ['n0']);
      await f.close('g');
      assert.deepEqual(await f.nodes(), []);
    });

    withForks('nodes, sessions and session opens are per volume', async (f, h) => {
      const other = h.store.forks('other');
      await other.open(mk('a', 1, R, { node: 'n1', session: 's1' }));
      assert.deepEqual(await f.nodes(), []);
      assert.deepEqual(await f.sessionsOfNode('n1'), []);
      assert.deepEqual(await f.opensOfSession('s1'), []);
      await rejectsWith(f.adopt('a', 'n2'), 'not-open');
      assert.deepEqual(await other.nodes(), ['n1']);
      assert.deepEqual(await other.sessionsOfNode('n1'), ['s1']);
      assert.equal((await other.opensOfSession('s1')).length, 1);
      await other.close('a');
    });

    withForks('adopt racing releaseNode: each open is released or adopted, never both or neither', async (f, h) => {
      const peer = h.peer?.forks(VOLUME) ?? f;
      const N = 40;
      for (let i = 0; i < N; i++) {
        await f.open(mk(`o${i}`, 100 + i, R | W | DW, { session: `s${i % 3}`, node: 'dead' }));
        await f.lock(`o${i}`, { start: 0, end: 10 });
      }
      const adopts = Array.from({ length: N }, (_, i) => f.adopt(`o${i}`, 'live'));
      const released = await peer.releaseNode('dead');
      const results = await Promise.allSettled(adopts);
      let adopted = 0;
      for (const r of results) {
        if (r.status === 'fulfilled') adopted++;
        else assert.ok(r.reason instanceof ForkError && r.reason.reason === 'not-open', String(r.reason));
      }
      assert.equal(adopted + released, N);
      assert.deepEqual(await f.nodes(), adopted > 0 ? ['live'] : []);
      assert.deepEqual(await f.sessionsOfNode('dead'), []);
      let open = 0;
      for (let i = 0; i < N; i++) {
        const opens = await f.opensOf(100 + i);
        open += opens.length;
        for (const o of opens) {
          assert.equal(o.node, 'live');
          // An adopted open kept its lock.
          await f.open(mk(`p${i}`, 100 + i, 0, { session: 'probe', node: 'probe' }));
          await rejectsWith(f.checkAccess(`p${i}`, { start: 5, end: 6 }), 'range-locked');
          await f.close(`p${i}`);
        }
      }
      assert.equal(open, adopted);
      assert.equal(await f.releaseNode('live'), adopted);
      assert.deepEqual(await f.nodes(), []);
    });

    withForks('20 concurrent opens with DenyWrite and Write: exactly one wins', async (f, h) => {
      const stores = [f, h.peer?.forks(VOLUME) ?? f];
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => stores[i % 2]!.open(mk(`o${i}`, 42, W | DW, { session: `s${i}`, node: `n${i % 2}` }))),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof ForkError && r.reason.reason === 'deny-conflict', String(r.reason));
      }
      assert.equal((await f.opensOf(42)).length, 1);
    });
  });
}
