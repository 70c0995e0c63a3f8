import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { open } from 'lmdb';
import { EmbeddedNamespace } from '../../src/meta/embedded-namespace.js';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import type { MetaStore } from '../../src/meta/meta-store.js';
import { ROOT_ID } from '../../src/meta/namespace.js';
import { FOLD, namespaceContract } from './namespace-contract.js';

// Both commit modes: periodic runs each change as a synchronous LMDB transaction, commit
// as an asynchronous, batched one; the contract must hold either way.
for (const [mode, bigDirectory] of [['periodic', 100_000], ['commit', 5_000]] as const) {
  namespaceContract(
    `EmbeddedNamespace (metadata.sync: ${mode})`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'afpgw-ns-lmdb-'));
      const opened: MetaStore[] = [];
      const openAt = async () => {
        const s = await EmbeddedMetaStore.open(join(dir, 'meta'), { sync: mode });
        opened.push(s);
        return s;
      };
      return {
        store: await openAt(),
        reopen: openAt,
        async cleanup() {
          for (const s of opened) await s.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
    { bigDirectory },
  );
}

it('EmbeddedNamespace keeps every key under its volume prefix and leaves none behind', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-ns-lmdb-'));
  const db = open<unknown, string>({ path: join(dir, 'db'), encoding: 'msgpack' });
  try {
    await db.put('user:alice', 'not a volume key');
    const ns = new EmbeddedNamespace(db, 'vol:1/ä', { fold: FOLD });
    const other = new EmbeddedNamespace(db, 'vol', { fold: FOLD });
    await other.init('other', { uid: 0, gid: 0, mode: 0o755 });
    await ns.init('root', { uid: 0, gid: 0, mode: 0o755 });
    const d = await ns.create(ROOT_ID, 'd', 'dir', { uid: 1, gid: 1, mode: 0o755 }, 1);
    const f = await ns.create(d.id, 'F\u0000😀', 'file', { uid: 1, gid: 1, mode: 0o644 }, 1);
    const g = await ns.create(ROOT_ID, 'g', 'file', { uid: 1, gid: 1, mode: 0o644 }, 1);
    await ns.setXattr(f.id, 'x', Buffer.from('1'), 'create');
    await ns.setXattr(g.id, 'y', Buffer.from('2'), 'create');
    await ns.exchange(f.id, g.id);
    await ns.move(f.id, ROOT_ID, 'f2', 2);
    await ns.kvSet('k', Buffer.from('v'));

    const prefix = `ns:${encodeURIComponent('vol:1/ä')}:`;
    const mine = [...db.getKeys()].filter((k) => k.startsWith(prefix));
    assert.ok(mine.length >= 10, mine.join(' '));
    assert.ok([...db.getKeys()].every((k) => k.startsWith(prefix) || k.startsWith('ns:vol:') || k === 'user:alice'));

    await ns.remove(f.id, 3);
    await ns.remove(g.id, 3);
    await ns.remove(d.id, 3);
    await ns.kvDelete('k');
    assert.deepEqual(
      [...db.getKeys()].filter((k) => k.startsWith(prefix)).sort(),
      [`${prefix}meta`, `${prefix}n:${ROOT_ID}`],
      'removing every node leaves only the root and the counters',
    );
    assert.equal(db.get('user:alice'), 'not a volume key');
    assert.equal((await other.stats()).nodes, 1);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
