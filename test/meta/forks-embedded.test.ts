import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import { forksContract } from './forks-contract.js';

// Both commit modes: periodic runs each change as a synchronous LMDB transaction, commit
// as an asynchronous, batched one; the contract must hold either way.
for (const mode of ['periodic', 'commit'] as const) {
  forksContract(`EmbeddedForkStore (metadata.sync: ${mode})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'afpgw-forks-lmdb-'));
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
