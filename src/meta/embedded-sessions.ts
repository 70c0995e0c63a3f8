/**
 * Session records and replay caches in the embedded store's LMDB database. Every key starts
 * with `ss:`; ids, tokens and user keys are URI-encoded, so none of them contains a ':':
 *   s:<id>               StoredHead { exp, rec }: the session's expiry (epoch ms) and its
 *                        record (null while only a replay cache exists). `exp` covers all
 *                        of the session's keys, so touching it is one write.
 *   t:<token>            the id holding the token
 *   u:<user>:<id>        1: the sessions of one user, listed by a range read
 *   r:<id>:<slot>        Buffer: one cached reply (encodeReplay)
 *   e:<exp>:<id>         1: expiry index (exp zero-padded), so a sweep finds expired
 *                        sessions without reading live ones
 *
 * LMDB has no expiry of its own: readers treat a head whose `exp` has passed as absent
 * (and then ignore its token, index entry and replies), and writers sweep up to
 * SWEEP_LIMIT expired sessions at a time. A writer that meets an expired head of the
 * session it is changing purges it first, so replies from before the expiry never
 * reappear behind a fresh record.
 *
 * Each change runs in one `db.transaction()` callback that checks everything before its
 * first write and returns failures (lmdb-js keeps the writes of a callback that throws).
 *
 * The argument checks and the reply encoding live here too and are shared with the Redis
 * backend (redis-sessions.ts), so both refuse the same inputs and keep the same bytes.
 */
import type { Database } from 'lmdb';
import type { MetaCallObserver } from './call-observer.js';
import { writeTransaction } from './embedded-tx.js';
import { MetaConflictError, MetaUnavailableError } from './meta-store.js';
import { checkTtl, compareKeys } from './records.js';
import type { ReplayEntry, SessionRecord, SessionStore } from './sessions.js';
import { checkSessionId, isSessionId, isToken, isUser, checkSessionRecord, copySessionRecord, checkWindow, checkReplayEntry, encodeReplay, decodeReplay, selectReplies } from './sessions-records.js';

/** Expired sessions one sweep removes: bounds the work a single write does on their behalf. */
const SWEEP_LIMIT = 32;

interface StoredHead {
  exp: number;
  rec: SessionRecord | null;
}

export class EmbeddedSessionStore implements SessionStore {
  /** `syncCommits`: run each change as a synchronous LMDB transaction (see EmbeddedNamespace). */
  constructor(private readonly db: Database<unknown, string>, private readonly syncCommits = false, private readonly calls?: MetaCallObserver) {}

  async putSession(rec: SessionRecord, ttlMs: number): Promise<void> {
    checkSessionRecord(rec);
    checkTtl(ttlMs);
    const record = copySessionRecord(rec);
    await this.tx(() => {
      const now = Date.now();
      if (record.token !== '') {
        const holder = this.db.get(K.token(record.token));
        if (typeof holder === 'string' && holder !== record.id && this.live(holder, now)?.rec?.token === record.token) {
          return new MetaConflictError(`token of session ${JSON.stringify(record.id)} is held by session ${JSON.stringify(holder)}`);
        }
      }
      this.sweep(now);
      const head = this.headFor(record.id, now);
      const old = head?.rec;
      if (old) {
        if (old.token !== record.token) this.dropToken(old.token, record.id);
        if (old.user !== record.user) this.db.removeSync(K.user(old.user, record.id));
      }
      this.setHead(record.id, head, { exp: now + ttlMs, rec: record });
      if (record.token !== '') this.db.putSync(K.token(record.token), record.id);
      this.db.putSync(K.user(record.user, record.id), 1);
      return undefined;
    });
  }

  async session(id: string): Promise<SessionRecord | undefined> {
    if (!isSessionId(id)) return undefined;
    const rec = this.live(id, Date.now())?.rec;
    return rec ? copySessionRecord(rec) : undefined;
  }

  async sessionByToken(token: string): Promise<SessionRecord | undefined> {
    if (!isToken(token) || token === '') return undefined;
    const id = this.db.get(K.token(token));
    if (typeof id !== 'string') return undefined;
    const rec = this.live(id, Date.now())?.rec;
    // The index entry of a replaced token is removed with the change, but check anyway:
    // a token must never resolve to a session that no longer holds it.
    return rec && rec.token === token ? copySessionRecord(rec) : undefined;
  }

  async sessionsOfUser(user: string): Promise<SessionRecord[]> {
    if (!isUser(user)) return [];
    let now = Date.now();
    if (this.db.getKeysCount({ ...this.expiredRange(now), limit: 1 }) > 0) {
      await this.tx(() => {
        this.sweep(Date.now());
        return undefined;
      });
      now = Date.now();
    }
    const range = K.userRange(user);
    const out: SessionRecord[] = [];
    for (const key of this.db.getKeys(range)) {
      const id = decodeURIComponent(key.slice(range.start.length));
      const rec = this.live(id, now)?.rec;
      if (rec && rec.user === user) out.push(copySessionRecord(rec));
    }
    return out.sort((a, b) => compareKeys(a.id, b.id));
  }

  async touchSession(id: string, ttlMs: number): Promise<boolean> {
    checkSessionId(id);
    checkTtl(ttlMs);
    return this.tx(() => {
      const now = Date.now();
      const head = this.headFor(id, now);
      if (!head?.rec) return false;
      this.setHead(id, head, { exp: now + ttlMs, rec: head.rec });
      return true;
    });
  }

  async dropSession(id: string): Promise<void> {
    checkSessionId(id);
    await this.tx(() => {
      this.purge(id);
      return undefined;
    });
  }

  async putReply(sessionId: string, window: number, entry: ReplayEntry, ttlMs: number): Promise<void> {
    checkSessionId(sessionId);
    checkWindow(window);
    checkReplayEntry(entry);
    checkTtl(ttlMs);
    const value = encodeReplay(entry);
    await this.tx(() => {
      const now = Date.now();
      const head = this.headFor(sessionId, now);
      // A live record sets the expiry; without one the cache lives on its own for ttlMs.
      if (!head?.rec) this.setHead(sessionId, head, { exp: now + ttlMs, rec: null });
      this.db.putSync(K.reply(sessionId, entry.requestId % window), value);
      return undefined;
    });
  }

  async replies(sessionId: string, window: number): Promise<ReplayEntry[]> {
    checkWindow(window);
    if (!isSessionId(sessionId) || !this.live(sessionId, Date.now())) return [];
    const entries: ReplayEntry[] = [];
    for (const { value } of this.db.getRange(K.replyRange(sessionId))) {
      const entry = value instanceof Uint8Array ? decodeReplay(value) : undefined;
      if (!entry) throw new MetaUnavailableError(`the embedded store holds a malformed reply of session ${JSON.stringify(sessionId)}`);
      entries.push(entry);
    }
    return selectReplies(entries, window);
  }

  /** The session's head if it has not expired. */
  private live(id: string, now: number): StoredHead | undefined {
    const head = this.db.get(K.head(id)) as StoredHead | undefined;
    return head && head.exp > now ? head : undefined;
  }

  /** Inside a transaction: the live head, after purging an expired one so that nothing of it survives. */
  private headFor(id: string, now: number): StoredHead | undefined {
    const head = this.db.get(K.head(id)) as StoredHead | undefined;
    if (!head) return undefined;
    if (head.exp > now) return head;
    this.purge(id);
    return undefined;
  }

  /** Inside a transaction: writes a head and moves its expiry-index entry. */
  private setHead(id: string, old: StoredHead | undefined, head: StoredHead): void {
    if (old && old.exp !== head.exp) this.db.removeSync(K.expiry(old.exp, id));
    this.db.putSync(K.head(id), head);
    this.db.putSync(K.expiry(head.exp, id), 1);
  }

  /** Inside a transaction: removes everything of a session, live or not. */
  private purge(id: string): void {
    const head = this.db.get(K.head(id)) as StoredHead | undefined;
    if (head) {
      if (head.rec) {
        this.dropToken(head.rec.token, id);
        this.db.removeSync(K.user(head.rec.user, id));
      }
      this.db.removeSync(K.expiry(head.exp, id));
      this.db.removeSync(K.head(id));
    }
    // Collected first: removing while a range read is open would move it under our feet.
    for (const key of [...this.db.getKeys(K.replyRange(id))]) this.db.removeSync(key);
  }

  private dropToken(token: string, id: string): void {
    if (token !== '' && this.db.get(K.token(token)) === id) this.db.removeSync(K.token(token));
  }

  /** Inside a transaction: purges up to SWEEP_LIMIT sessions that expired by `now`. */
  private sweep(now: number): void {
    const prefix = K.expiryStart;
    const keys = [...this.db.getKeys({ ...this.expiredRange(now), limit: SWEEP_LIMIT })];
    for (const key of keys) {
      const rest = key.slice(prefix.length);
      const id = decodeURIComponent(rest.slice(rest.indexOf(':') + 1));
      const head = this.db.get(K.head(id)) as StoredHead | undefined;
      if (head && head.exp <= now) this.purge(id);
      // An entry left behind by a head that moved on (should not happen, but costs nothing).
      else this.db.removeSync(key);
    }
  }

  /** The expiry-index entries of sessions that expired by `now`. */
  private expiredRange(now: number): { start: string; end: string } {
    return { start: K.expiryStart, end: K.expiryBefore(now) };
  }

  /** Runs `body` as one LMDB write transaction; an error it returns is thrown here. */
  private tx<T>(body: () => T | Error): Promise<T> {
    return writeTransaction<T>(this.db, this.syncCommits, body, this.calls, 'sessions.write');
  }
}

/** Expiry times are padded so that key order is time order (16 digits reach year 318857). */
const EXP_DIGITS = 16;
const pad = (ms: number) => String(ms).padStart(EXP_DIGITS, '0');
const e = encodeURIComponent;

/** ';' follows ':', so [p:, p;) holds exactly the keys that start with p:. */
const K = {
  head: (id: string) => `ss:s:${e(id)}`,
  token: (token: string) => `ss:t:${e(token)}`,
  user: (user: string, id: string) => `ss:u:${e(user)}:${e(id)}`,
  userRange: (user: string) => ({ start: `ss:u:${e(user)}:`, end: `ss:u:${e(user)};` }),
  reply: (id: string, slot: number) => `ss:r:${e(id)}:${slot}`,
  replyRange: (id: string) => ({ start: `ss:r:${e(id)}:`, end: `ss:r:${e(id)};` }),
  expiry: (exp: number, id: string) => `ss:e:${pad(exp)}:${e(id)}`,
  expiryStart: 'ss:e:',
  /** Ends below every entry of an expiry later than `now`: the ones with exp ≤ now come before it. */
  expiryBefore: (now: number) => `ss:e:${pad(now)};`,
} as const;
