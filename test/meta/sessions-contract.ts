/**
 * The SessionStore contract: one suite that every metadata backend must pass. A backend's
 * test file calls sessionsContract with a function that opens a fresh, empty MetaStore for
 * one test; the suite reaches the session store through MetaStore.sessions().
 *
 * Expiry is tested with real time: short ttls (tens of ms) and waits several times as long,
 * so a slow machine delays the tests rather than failing them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { MetaConflictError, type MetaStore } from '../../src/meta/meta-store.js';
import type { ReplayEntry, SessionRecord, SessionStore } from '../../src/meta/sessions.js';

export interface SessionHarness {
  store: MetaStore;
  /** A second store on the same backing state, like the other node of a pair. */
  peer?: MetaStore;
  /** Closes whatever the harness opened and removes the state. */
  cleanup(): Promise<void>;
}

/** Returns undefined when the backend is unavailable and the test has been skipped. */
export type OpenSessionStore = (t: TestContext) => Promise<SessionHarness | undefined>;

/** Long enough never to lapse during a test. */
const LONG = 60_000;
/** Short enough to wait for, long enough for the few calls a test makes before it lapses. */
const SHORT = 150;
/** Comfortably past SHORT, even on a loaded machine. */
const PAST_SHORT = 400;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function rec(id: string, extra: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    node: 'n1',
    user: 'alice',
    uid: 1000,
    token: `tok-${id}`,
    clientId: 'c0ffee',
    timestamp: 1_700_000_000,
    volumes: ['tm', 'share'],
    tmVolumes: ['tm'],
    forkVolumes: ['tm', 'share'],
    createdAt: 1_700_000_000_000,
    ...extra,
  };
}

export function reply(requestId: number, seq: number, payload: Buffer = Buffer.from(`reply ${seq}`), extra: Partial<ReplayEntry> = {}): ReplayEntry {
  return { requestId, command: 0x3c, seq, code: 0, payload, ...extra };
}

export function sessionsContract(name: string, openStore: OpenSessionStore): void {
  describe(`${name}: SessionStore contract`, () => {
    /** Runs `body` with the store's sessions (and the peer's, or the same, as `p`). */
    const withSessions = (title: string, body: (s: SessionStore, p: SessionStore, h: SessionHarness) => Promise<void>) =>
      it(title, async (t) => {
        const h = await openStore(t);
        if (!h) return;
        try {
          const s = h.store.sessions();
          await body(s, h.peer?.sessions() ?? s, h);
        } finally {
          await h.cleanup();
        }
      });

    withSessions('one instance per store', async (s, _p, h) => {
      assert.equal(h.store.sessions(), s);
    });

    withSessions('put and get round trip, as copies', async (s, p) => {
      const r = rec('1', { timestamp: null, tmVolumes: [], clientId: '', user: 'bob\u00e9' });
      await s.putSession(r, LONG);
      assert.deepEqual(await p.session('1'), r);
      const got = await s.session('1');
      assert.ok(got);
      got.tmVolumes.push('x');
      got.token = 'changed';
      assert.deepEqual(await s.session('1'), r, 'changing a returned record changes nothing stored');
      r.forkVolumes.push('y');
      assert.deepEqual((await s.session('1'))?.forkVolumes, ['tm', 'share'], 'the store keeps its own copy');
      assert.equal(await s.session('2'), undefined);
      assert.equal(await s.session(''), undefined);

      const replaced = rec('1', { node: 'n2', uid: 0xffffffff, timestamp: -5, tmVolumes: ['a:b', 'c'] });
      await s.putSession(replaced, LONG);
      assert.deepEqual(await p.session('1'), replaced);
    });

    withSessions('sessionByToken finds the holder; an empty token names nobody', async (s, p) => {
      await s.putSession(rec('1'), LONG);
      await s.putSession(rec('2', { token: '' }), LONG);
      assert.equal((await p.sessionByToken('tok-1'))?.id, '1');
      assert.deepEqual(await p.sessionByToken('tok-1'), rec('1'));
      assert.equal(await s.sessionByToken(''), undefined);
      assert.equal(await s.sessionByToken('tok-2'), undefined);
      assert.equal(await s.sessionByToken('nope'), undefined);
    });

    withSessions('a new token replaces the old one', async (s, p) => {
      await s.putSession(rec('1', { token: 'aa' }), LONG);
      await p.putSession(rec('1', { token: 'bb' }), LONG);
      assert.equal(await s.sessionByToken('aa'), undefined);
      assert.equal((await s.sessionByToken('bb'))?.id, '1');
      // The freed token may go to another session.
      await s.putSession(rec('2', { token: 'aa' }), LONG);
      assert.equal((await p.sessionByToken('aa'))?.id, '2');
      // Dropping the token altogether.
      await s.putSession(rec('1', { token: '' }), LONG);
      assert.equal(await s.sessionByToken('bb'), undefined);
      assert.equal((await s.session('1'))?.token, '');
    });

    withSessions('a token held by another session is a conflict that changes nothing', async (s, p) => {
      await s.putSession(rec('1', { token: 'aa' }), LONG);
      await s.putSession(rec('2', { token: 'bb', user: 'bob' }), LONG);
      await assert.rejects(p.putSession(rec('2', { token: 'aa', user: 'carol' }), LONG), MetaConflictError);
      assert.equal((await s.sessionByToken('aa'))?.id, '1');
      assert.equal((await s.sessionByToken('bb'))?.id, '2');
      assert.equal((await s.session('2'))?.user, 'bob');
      assert.deepEqual(await s.sessionsOfUser('carol'), []);
      await assert.rejects(s.putSession(rec('3', { token: 'aa' }), LONG), MetaConflictError);
      assert.equal(await s.session('3'), undefined);
      // Putting a session again with its own token is no conflict.
      await s.putSession(rec('1', { token: 'aa', node: 'n2' }), LONG);
      assert.equal((await p.sessionByToken('aa'))?.node, 'n2');
    });

    withSessions('sessionsOfUser lists that user\'s live sessions, sorted by id', async (s, p) => {
      for (const id of ['b', 'a:1', 'c{x}', 'A']) await s.putSession(rec(id, { user: 'alice' }), LONG);
      await s.putSession(rec('z', { user: 'bob' }), LONG);
      await s.putSession(rec('short', { user: 'alice' }), SHORT);
      await s.putSession(rec('gone', { user: 'alice' }), LONG);
      await s.dropSession('gone');
      assert.deepEqual((await p.sessionsOfUser('alice')).map((r) => r.id), ['A', 'a:1', 'b', 'c{x}', 'short']);
      assert.deepEqual(await p.sessionsOfUser('bob'), [rec('z', { user: 'bob' })]);
      assert.deepEqual(await s.sessionsOfUser('nobody'), []);
      assert.deepEqual(await s.sessionsOfUser(''), []);
      await sleep(PAST_SHORT);
      assert.deepEqual((await p.sessionsOfUser('alice')).map((r) => r.id), ['A', 'a:1', 'b', 'c{x}']);

      // A session that changes user moves between the lists.
      await s.putSession(rec('b', { user: 'bob' }), LONG);
      assert.deepEqual((await p.sessionsOfUser('alice')).map((r) => r.id), ['A', 'a:1', 'c{x}']);
      assert.deepEqual((await p.sessionsOfUser('bob')).map((r) => r.id), ['b', 'z']);
    });

    withSessions('expiry removes record, token, user index entry and replies together', async (s, p) => {
      await s.putSession(rec('1', { token: 'aa' }), SHORT);
      await s.putReply('1', 8, reply(1, 1), SHORT);
      await s.putSession(rec('2', { token: 'bb' }), LONG);
      await s.putReply('2', 8, reply(1, 1), LONG);
      assert.equal((await p.sessionByToken('aa'))?.id, '1');
      assert.equal((await p.replies('1', 8)).length, 1);
      await sleep(PAST_SHORT);
      assert.equal(await p.session('1'), undefined);
      assert.equal(await p.sessionByToken('aa'), undefined);
      assert.deepEqual((await p.sessionsOfUser('alice')).map((r) => r.id), ['2']);
      assert.deepEqual(await p.replies('1', 8), []);
      assert.equal(await p.touchSession('1', LONG), false, 'an expired session cannot be touched back to life');
      assert.equal(await p.session('1'), undefined);
      // The other session is untouched.
      assert.equal((await s.sessionByToken('bb'))?.id, '2');
      assert.equal((await s.replies('2', 8)).length, 1);

      // The expired session's id starts afresh: a new reply brings none of the old back.
      await s.putReply('1', 8, reply(5, 5), LONG);
      assert.deepEqual(await p.replies('1', 8), [reply(5, 5)]);
      // Its token is free.
      await s.putSession(rec('3', { token: 'aa' }), LONG);
      assert.equal((await p.sessionByToken('aa'))?.id, '3');
      await s.putSession(rec('1', { token: 'cc' }), LONG);
      assert.equal((await p.sessionByToken('cc'))?.id, '1');
      assert.deepEqual(await p.replies('1', 8), [reply(5, 5)], 'a record put later adopts the live replay cache');
    });

    withSessions('touchSession moves the expiry of record, token and replies', async (s, p) => {
      await s.putSession(rec('1', { token: 'aa' }), 300);
      await s.putReply('1', 8, reply(3, 3), 300);
      await sleep(100);
      assert.equal(await p.touchSession('1', 600), true);
      await sleep(350);
      assert.equal((await s.session('1'))?.id, '1', 'still there past the first ttl');
      assert.equal((await s.sessionByToken('aa'))?.id, '1');
      assert.deepEqual((await s.sessionsOfUser('alice')).map((r) => r.id), ['1']);
      assert.equal((await s.replies('1', 8)).length, 1);
      await sleep(600);
      assert.equal(await s.session('1'), undefined);
      assert.equal(await s.sessionByToken('aa'), undefined);
      assert.deepEqual(await s.replies('1', 8), []);
      assert.equal(await p.touchSession('1', LONG), false);
      assert.equal(await p.touchSession('never', LONG), false);
    });

    withSessions('dropSession removes everything and is idempotent', async (s, p) => {
      await s.putSession(rec('1', { token: 'aa' }), LONG);
      await s.putReply('1', 8, reply(1, 1), LONG);
      await s.putSession(rec('2', { token: 'bb' }), LONG);
      await s.putReply('2', 8, reply(1, 1), LONG);
      await p.dropSession('1');
      assert.equal(await s.session('1'), undefined);
      assert.equal(await s.sessionByToken('aa'), undefined);
      assert.deepEqual((await s.sessionsOfUser('alice')).map((r) => r.id), ['2']);
      assert.deepEqual(await s.replies('1', 8), []);
      assert.equal(await s.touchSession('1', LONG), false);
      await p.dropSession('1');
      await p.dropSession('never');
      assert.equal((await s.replies('2', 8)).length, 1);
      // The token is free again.
      await s.putSession(rec('3', { token: 'aa' }), LONG);
      assert.equal((await s.sessionByToken('aa'))?.id, '3');
      // A replay cache without a record is dropped too.
      await s.putReply('4', 8, reply(1, 1), LONG);
      await s.dropSession('4');
      assert.deepEqual(await s.replies('4', 8), []);
    });

    withSessions('replies: slot replacement, newest first', async (s, p) => {
      await s.putSession(rec('1'), LONG);
      for (let seq = 1; seq <= 4; seq++) await s.putReply('1', 4, reply(seq + 100, seq), LONG);
      assert.deepEqual((await p.replies('1', 4)).map((r) => r.seq), [4, 3, 2, 1]);
      // requestId 105 lands in slot 1, where 101 was.
      await p.putReply('1', 4, reply(105, 5, Buffer.from('five'), { command: 0x44, code: -5000 }), LONG);
      const got = await s.replies('1', 4);
      assert.deepEqual(got.map((r) => r.requestId), [105, 104, 103, 102]);
      assert.deepEqual(got[0], { requestId: 105, command: 0x44, seq: 5, code: -5000, payload: Buffer.from('five') });
      // The same request id again (a retransmitted request answered anew) replaces its own slot.
      await s.putReply('1', 4, reply(105, 6, Buffer.from('six')), LONG);
      assert.deepEqual((await s.replies('1', 4)).map((r) => [r.requestId, r.seq]), [[105, 6], [104, 4], [103, 3]]);
    });

    withSessions('replies: payload bytes and field extremes round-trip exactly', async (s, p) => {
      await s.putSession(rec('1'), LONG);
      const random = Buffer.concat([Buffer.from([0x00, 0xff, 0x80, 0x7f, 0xc3, 0x28, 0x0d, 0x0a]), randomBytes(4096), Buffer.from([0xff, 0x00])]);
      const entries: ReplayEntry[] = [
        { requestId: 0, command: 0, seq: 0, code: -2147483648, payload: Buffer.alloc(0) },
        { requestId: 1, command: 255, seq: 1, code: 2147483647, payload: random },
        { requestId: 65535, command: 0x7f, seq: 2, code: -1, payload: Buffer.from([0]) },
        { requestId: 2, command: 1, seq: 3, code: 0, payload: Buffer.alloc(100_000, 0xab) },
      ];
      for (const e of entries) await s.putReply('1', 1000, e, LONG);
      assert.deepEqual(await p.replies('1', 1000), [...entries].reverse());
      const empty = (await p.replies('1', 1000)).find((r) => r.seq === 0);
      assert.ok(empty && Buffer.isBuffer(empty.payload) && empty.payload.length === 0);

      // Large sequence numbers survive as well (they never wrap).
      await s.putSession(rec('2', { token: '' }), LONG);
      const big = Number.MAX_SAFE_INTEGER;
      await s.putReply('2', 4, reply(7, big - 1), LONG);
      await s.putReply('2', 4, reply(8, big), LONG);
      assert.deepEqual((await p.replies('2', 4)).map((r) => r.seq), [big, big - 1]);

      // A returned payload is the caller's to change.
      const [first] = await s.replies('2', 4);
      first!.payload.fill(0);
      assert.deepEqual((await s.replies('2', 4))[0]!.payload, Buffer.from(`reply ${big}`));
    });

    withSessions('replies: entries older than the window are left out even in untouched slots', async (s, p) => {
      await s.putSession(rec('1'), LONG);
      await s.putReply('1', 4, reply(1, 1), LONG);
      await s.putReply('1', 4, reply(10, 10), LONG);
      assert.deepEqual((await p.replies('1', 4)).map((r) => [r.requestId, r.seq]), [[10, 10]]);
      await s.putReply('1', 4, reply(7, 7), LONG);
      assert.deepEqual((await p.replies('1', 4)).map((r) => r.seq), [10, 7], 'seq 7 is within 4 of 10');
      await s.putReply('1', 4, reply(65535, 65535 + 10), LONG);
      assert.deepEqual((await p.replies('1', 4)).map((r) => r.seq), [65545]);
      // Request ids wrap, seq does not: requestId 0 after 65535 goes to slot 0.
      await s.putReply('1', 4, reply(0, 65546), LONG);
      assert.deepEqual((await p.replies('1', 4)).map((r) => [r.requestId, r.seq]), [[0, 65546], [65535, 65545]]);
    });

    withSessions('replies of one session are invisible to another', async (s, p) => {
      await s.putSession(rec('1'), LONG);
      await s.putSession(rec('2'), LONG);
      await s.putReply('1', 8, reply(1, 1, Buffer.from('one')), LONG);
      await s.putReply('2', 8, reply(1, 1, Buffer.from('two')), LONG);
      assert.deepEqual((await p.replies('1', 8)).map((r) => r.payload.toString()), ['one']);
      assert.deepEqual((await p.replies('2', 8)).map((r) => r.payload.toString()), ['two']);
      assert.deepEqual(await p.replies('3', 8), []);
      assert.deepEqual(await p.replies('', 8), []);
    });

    withSessions('replies expire with the session; without a record after their own ttl', async (s, p) => {
      // With a record the record's expiry rules, not putReply's ttl.
      await s.putSession(rec('1'), LONG);
      await s.putReply('1', 8, reply(1, 1), SHORT);
      // Without one the cache keeps its entries for ttlMs.
      await s.putReply('2', 8, reply(1, 1), SHORT);
      assert.equal((await p.replies('2', 8)).length, 1);
      assert.equal(await p.session('2'), undefined, 'a reply creates no record');
      await sleep(PAST_SHORT);
      assert.equal((await p.replies('1', 8)).length, 1);
      assert.deepEqual(await p.replies('2', 8), []);
    });

    withSessions('refuses malformed arguments', async (s) => {
      const bad: [string, () => Promise<unknown>][] = [
        ['empty id', () => s.putSession(rec(''), LONG)],
        ['control character in id', () => s.putSession(rec('a\nb'), LONG)],
        ['control character in token', () => s.putSession(rec('1', { token: 'a\u0000' }), LONG)],
        ['lone surrogate in user', () => s.putSession(rec('1', { user: 'a\ud800' }), LONG)],
        ['empty user', () => s.putSession(rec('1', { user: '' }), LONG)],
        ['fractional uid', () => s.putSession(rec('1', { uid: 1.5 }), LONG)],
        ['brace in a volume key', () => s.putSession(rec('1', { tmVolumes: ['{x}'] }), LONG)],
        ['zero ttl', () => s.putSession(rec('1'), 0)],
        ['bad touch ttl', () => s.touchSession('1', -1)],
        ['empty id to drop', () => s.dropSession('')],
        ['window 0', () => s.putReply('1', 0, reply(1, 1), LONG)],
        ['window 65536', () => s.putReply('1', 65536, reply(1, 1), LONG)],
        ['requestId 65536', () => s.putReply('1', 8, reply(65536, 1), LONG)],
        ['requestId -1', () => s.putReply('1', 8, reply(-1, 1), LONG)],
        ['command 256', () => s.putReply('1', 8, reply(1, 1, undefined, { command: 256 }), LONG)],
        ['code 2^31', () => s.putReply('1', 8, reply(1, 1, undefined, { code: 2 ** 31 }), LONG)],
        ['negative seq', () => s.putReply('1', 8, reply(1, -1), LONG)],
        ['payload not a Buffer', () => s.putReply('1', 8, reply(1, 1, 'x' as unknown as Buffer), LONG)],
        ['reply ttl', () => s.putReply('1', 8, reply(1, 1), 0)],
        ['replies window', () => s.replies('1', 0)],
      ];
      for (const [what, call] of bad) await assert.rejects(call(), RangeError, what);
      assert.equal(await s.session('1'), undefined);
      assert.deepEqual(await s.replies('1', 8), []);
    });
  });
}
