/**
 * A volume's open forks, deny modes and byte-range locks in the embedded store's LMDB
 * database. All keys of a volume start with `fk:<volume>:` (the volume key URI-encoded);
 * open ids, sessions and nodes are URI-encoded too, so none of them contains a ':':
 *   o:<openId>                    the ForkOpen
 *   f:<fileId>:<fork>:<openId>    its mode: the opens of one file and fork (deny checks,
 *                                 opensOf scans f:<fileId>: for both forks)
 *   l:<fileId>:<fork>             StoredLock[]: every lock on that file and fork (at most
 *                                 MAX_LOCKS), so a lock or access check reads one value
 *   s:<session>:<openId>, n:<node>:<openId>
 *                                 the opens of a session and of a node, for release,
 *                                 opensOfSession and sessionsOfNode; nodes() skips through
 *                                 n: one node at a time (from n:<node>: on to n:<node>;)
 *
 * Each change runs in one `db.transaction()` callback that makes all of its checks before
 * its first write and returns a ForkError instead of throwing (lmdb-js keeps the writes a
 * throwing callback already made); `tx` throws it once the transaction is over. The
 * listings that read several keys (opensOfSession, sessionsOfNode, nodes) read them in one
 * read transaction, a consistent snapshot.
 */
import type { Database, Transaction } from 'lmdb';
import type { MetaCallObserver } from './call-observer.js';
import { writeTransaction } from './embedded-tx.js';
import { ForkError, type ByteRange, type ForkFailure, type ForkKind, type ForkOpen, type ForkStore } from './forks.js';
import { checkForkOpen, checkOpenId, checkRange, compareStrings, denyConflict, MAX_LOCKS_PER_FORK, sortByOpenId } from './forks-records.js';
import { checkString, checkVolumeKey, isId } from './namespace-records.js';


interface StoredLock {
  /** openId */
  o: string;
  s: number;
  e: number;
}

export class EmbeddedForkStore implements ForkStore {
  private readonly k: ReturnType<typeof keys>;

  /** `syncCommits`: run each change as a synchronous LMDB transaction (see EmbeddedNamespace). */
  constructor(private readonly db: Database<unknown, string>, volumeKey: string, private readonly syncCommits = false, private readonly calls?: MetaCallObserver) {
    checkVolumeKey(volumeKey);
    this.k = keys(`fk:${encodeURIComponent(volumeKey)}:`);
  }

  async open(o: ForkOpen): Promise<void> {
    checkForkOpen(o);
    const record: ForkOpen = { openId: o.openId, session: o.session, node: o.node, fileId: o.fileId, fork: o.fork, mode: o.mode };
    await this.tx(() => {
      if (this.db.get(this.k.open(o.openId)) !== undefined) return new RangeError(`open ${JSON.stringify(o.openId)} already exists`);
      for (const { key, value } of this.db.getRange(this.k.forkRange(o.fileId, o.fork))) {
        if (denyConflict(o.mode, value as number)) {
          return fail('deny-conflict', `mode ${o.mode} of ${o.openId} clashes with open ${decodeURIComponent(key.slice(this.k.forkRange(o.fileId, o.fork).start.length))}`);
        }
      }
      this.db.putSync(this.k.open(o.openId), record);
      this.db.putSync(this.k.forkOpen(o.fileId, o.fork, o.openId), o.mode);
      this.db.putSync(this.k.session(o.session, o.openId), 1);
      this.db.putSync(this.k.node(o.node, o.openId), 1);
      return undefined;
    });
  }

  async close(openId: string): Promise<void> {
    checkOpenId(openId);
    await this.tx(() => {
      const o = this.openOf(openId);
      if (!o) return fail('not-open', openId);
      this.remove(o);
      return undefined;
    });
  }

  async opensOf(fileId: number): Promise<ForkOpen[]> {
    if (!isId(fileId)) return [];
    const out: ForkOpen[] = [];
    for (const key of this.db.getKeys(this.k.fileRange(fileId))) {
      const openId = decodeURIComponent(key.slice(key.lastIndexOf(':') + 1));
      const o = this.openOf(openId);
      if (o) out.push(o);
    }
    return out;
  }

  async lock(openId: string, range: ByteRange): Promise<void> {
    checkOpenId(openId);
    checkRange(range, false);
    const { start, end } = range;
    await this.tx(() => {
      const o = this.openOf(openId);
      if (!o) return fail('not-open', openId);
      const locks = this.locks(o.fileId, o.fork);
      const failure = lockConflict(locks, openId, start, end);
      if (failure) return fail(failure, `[${start}, ${end}) of ${openId}`);
      if (locks.length >= MAX_LOCKS_PER_FORK) return fail('too-many', `${locks.length} locks on file ${o.fileId} ${o.fork}`);
      this.db.putSync(this.k.locks(o.fileId, o.fork), [...locks, { o: openId, s: start, e: end }]);
      return undefined;
    });
  }

  async unlock(openId: string, range: ByteRange): Promise<void> {
    checkOpenId(openId);
    checkRange(range, false);
    const { start, end } = range;
    await this.tx(() => {
      const o = this.openOf(openId);
      if (!o) return fail('not-open', openId);
      const locks = this.locks(o.fileId, o.fork);
      const at = locks.findIndex((l) => l.o === openId && l.s === start && l.e === end);
      if (at < 0) return fail('not-locked', `[${start}, ${end}) of ${openId}`);
      this.putLocks(o.fileId, o.fork, locks.filter((_, i) => i !== at));
      return undefined;
    });
  }

  async checkAccess(openId: string, range: ByteRange): Promise<void> {
    checkOpenId(openId);
    checkRange(range, true);
    const o = this.openOf(openId);
    if (!o) throw fail('not-open', openId);
    const { start, end } = range;
    // An empty range touches no byte.
    if (start < end && this.locks(o.fileId, o.fork).some((l) => l.o !== openId && l.s < end && start < l.e)) {
      throw fail('range-locked', `[${start}, ${end}) for ${openId}`);
    }
  }

  async releaseSession(session: string): Promise<number> {
    checkString(session, 'session');
    return this.release(this.k.sessionRange(session));
  }

  async releaseNode(node: string): Promise<number> {
    checkString(node, 'node');
    return this.release(this.k.nodeRange(node));
  }

  async opensOfSession(session: string): Promise<ForkOpen[]> {
    checkString(session, 'session');
    return this.read((transaction) => {
      const out: ForkOpen[] = [];
      for (const id of this.idsIn(this.k.sessionRange(session), transaction)) {
        const o = this.openOf(id, transaction);
        if (o) out.push(o);
      }
      return sortByOpenId(out);
    });
  }

  async adopt(openId: string, node: string): Promise<void> {
    checkOpenId(openId);
    checkString(node, 'node');
    await this.tx(() => {
      const o = this.openOf(openId);
      if (!o) return fail('not-open', openId);
      if (o.node === node) return undefined;
      this.db.removeSync(this.k.node(o.node, openId));
      this.db.putSync(this.k.node(node, openId), 1);
      this.db.putSync(this.k.open(openId), { ...o, node });
      return undefined;
    });
  }

  async sessionsOfNode(node: string): Promise<string[]> {
    checkString(node, 'node');
    return this.read((transaction) => {
      const sessions = new Set<string>();
      for (const id of this.idsIn(this.k.nodeRange(node), transaction)) {
        const o = this.openOf(id, transaction);
        if (o) sessions.add(o.session);
      }
      return [...sessions].sort(compareStrings);
    });
  }

  async nodes(): Promise<string[]> {
    return this.read((transaction) => {
      const { start: prefix, end } = this.k.allNodes();
      const out: string[] = [];
      let start = prefix;
      for (;;) {
        let key: string | undefined;
        for (const k of this.db.getKeys({ start, end, limit: 1, transaction })) key = k;
        if (key === undefined) break;
        // The encoded node holds no ':' (nor ';'), so n:<node>; sorts after all of n:<node>:…
        // and before the next node's keys.
        const encoded = key.slice(prefix.length, key.indexOf(':', prefix.length));
        out.push(decodeURIComponent(encoded));
        start = `${prefix}${encoded};`;
      }
      return out.sort(compareStrings);
    });
  }

  private release(range: { start: string; end: string }): Promise<number> {
    return this.tx(() => {
      const ids = this.idsIn(range);
      let n = 0;
      for (const id of ids) {
        const o = this.openOf(id);
        if (!o) continue;
        this.remove(o);
        n++;
      }
      return n;
    });
  }

  /** Removes an open, its index entries and its locks; inside a transaction. */
  private remove(o: ForkOpen): void {
    const locks = this.locks(o.fileId, o.fork);
    const kept = locks.filter((l) => l.o !== o.openId);
    if (kept.length !== locks.length) this.putLocks(o.fileId, o.fork, kept);
    this.db.removeSync(this.k.open(o.openId));
    this.db.removeSync(this.k.forkOpen(o.fileId, o.fork, o.openId));
    this.db.removeSync(this.k.session(o.session, o.openId));
    this.db.removeSync(this.k.node(o.node, o.openId));
  }

  private putLocks(fileId: number, fork: ForkKind, locks: StoredLock[]): void {
    if (locks.length === 0) this.db.removeSync(this.k.locks(fileId, fork));
    else this.db.putSync(this.k.locks(fileId, fork), locks);
  }

  private openOf(openId: string, transaction?: Transaction): ForkOpen | undefined {
    const o = this.db.get(this.k.open(openId), transaction && { transaction }) as ForkOpen | undefined;
    return o && { ...o };
  }

  /** The openIds of an index range (s:<session>: or n:<node>:). */
  private idsIn(range: { start: string; end: string }, transaction?: Transaction): string[] {
    return [...this.db.getKeys({ ...range, transaction })].map((key) => decodeURIComponent(key.slice(range.start.length)));
  }

  /** Runs `body` against one read transaction: every read it makes sees the same snapshot. */
  private read<T>(body: (transaction: Transaction) => T): T {
    const transaction = this.db.useReadTransaction();
    try {
      return body(transaction);
    } finally {
      transaction.done();
    }
  }

  private locks(fileId: number, fork: ForkKind): StoredLock[] {
    return (this.db.get(this.k.locks(fileId, fork)) as StoredLock[] | undefined) ?? [];
  }

  /** Runs `body` as one LMDB write transaction; an error it returns (ForkError, RangeError) is thrown here. */
  private tx<T>(body: () => T | Error): Promise<T> {
    return writeTransaction<T>(this.db, this.syncCommits, body, this.calls, 'forks.write');
  }
}

/** ';' follows ':', so [p:, p;) holds exactly the keys that start with p:. */
function keys(p: string) {
  const e = encodeURIComponent;
  const range = (prefix: string) => ({ start: `${prefix}:`, end: `${prefix};` });
  return {
    open: (openId: string) => `${p}o:${e(openId)}`,
    forkOpen: (fileId: number, fork: ForkKind, openId: string) => `${p}f:${fileId}:${fork}:${e(openId)}`,
    forkRange: (fileId: number, fork: ForkKind) => range(`${p}f:${fileId}:${fork}`),
    fileRange: (fileId: number) => range(`${p}f:${fileId}`),
    locks: (fileId: number, fork: ForkKind) => `${p}l:${fileId}:${fork}`,
    session: (session: string, openId: string) => `${p}s:${e(session)}:${e(openId)}`,
    sessionRange: (session: string) => range(`${p}s:${e(session)}`),
    node: (node: string, openId: string) => `${p}n:${e(node)}:${e(openId)}`,
    nodeRange: (node: string) => range(`${p}n:${e(node)}`),
    allNodes: () => range(`${p}n`),
  };
}

function fail(reason: ForkFailure, detail: string): ForkError {
  return new ForkError(reason, detail);
}

/** What a new lock [start, end) of `openId` runs into: its own lock first, then another open's. */
function lockConflict(locks: readonly StoredLock[], openId: string, start: number, end: number): ForkFailure | undefined {
  let other = false;
  for (const l of locks) {
    if (l.s < end && start < l.e) {
      if (l.o === openId) return 'range-overlap';
      other = true;
    }
  }
  return other ? 'range-locked' : undefined;
}
