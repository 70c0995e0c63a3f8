import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import type { MetaStore } from '../../src/meta/meta-store.js';
import { openMetaStore } from '../../src/meta/open.js';
import { metaStoreContract } from './contract.js';

metaStoreContract('EmbeddedMetaStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-lmdb-'));
  const opened: MetaStore[] = [];
  const openAt = async () => {
    const s = await EmbeddedMetaStore.open(join(dir, 'meta'));
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
});

it('openMetaStore makes the directory, even one whose name has a dot', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-lmdb-'));
  try {
    const path = join(dir, 'a', 'b', 'meta.db');
    const store = await openMetaStore({ backend: 'embedded', path });
    try {
      assert.equal(store.kind, 'embedded');
      assert.equal((await store.createUser({ name: 'x', password: { algo: 'scrypt', N: 2, r: 1, p: 1, salt: '', hash: 'AA==' } })).uid, 1000);
    } finally {
      await store.close();
    }
    assert.ok((await stat(path)).isDirectory());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
