import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { open } from 'lmdb';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import { rec, reply, sessionsContract } from './sessions-contract.js';

// Both commit modes: periodic runs each change as a synchronous LMDB transaction, commit
// as an asynchronous, batched one; the contract must hold either way.
for (const mode of ['periodic', 'commit'] as const) {
  sessionsContract(`EmbeddedSessionStore (metadata.sync: ${mode})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'afpgw-sessions-lmdb-'));
    const store = await EmbeddedMetaStore.open(join(dir, 'meta'), { sync: mode });
    return {
      store,
      async cleanup() {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// LMDB has no expiry of its own: the store must not keep expired sessions for ever. The
// sweep runs on putSession and sessionsOfUser, a bounded number at a time.
it('EmbeddedSessionStore sweeps expired sessions and survives a reopen', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-sessions-lmdb-'));
  const path = join(dir, 'meta');
  let store = await EmbeddedMetaStore.open(path, { sync: 'commit' });
  try {
    const s = store.sessions();
    for (let i = 0; i < 50; i++) {
      await s.putSession(rec(`x${i}`, { token: `t${i}` }), 50);
      await s.putReply(`x${i}`, 4, reply(1, 1), 50);
    }
    await s.putReply('orphan', 4, reply(1, 1), 50);
    await s.putSession(rec('keep', { token: 'k', user: 'bob' }), 60_000);
    await s.putReply('keep', 4, reply(2, 2, Buffer.from([0, 0xff])), 60_000);
    await sleep(150);
    // Each sweep removes a bounded number; a few calls remove them all.
    for (let i = 0; i < 3; i++) await s.sessionsOfUser('alice');
    await s.putSession(rec('keep', { token: 'k', user: 'bob' }), 60_000);
    await store.close();

    // Read the raw keys with lmdb itself: only the live session's may be left.
    const raw = open<unknown, string>({ path, noSubdir: false, encoding: 'msgpack' });
    const left = [...raw.getKeys({ start: 'ss:', end: 'ss;' })];
    await raw.close();
    assert.equal(left.length, 5, left.join(' '));
    for (const key of left) assert.match(key, /^ss:(e:\d+:keep|r:keep:2|s:keep|t:k|u:bob:keep)$/);

    store = await EmbeddedMetaStore.open(path, { sync: 'commit' });
    const s2 = store.sessions();
    assert.equal((await s2.sessionByToken('k'))?.id, 'keep');
    assert.deepEqual((await s2.replies('keep', 4)).map((r) => [...r.payload]), [[0, 0xff]]);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
