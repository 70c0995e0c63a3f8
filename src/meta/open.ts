/** The one place that turns configuration into a metadata backend. */
import { EmbeddedMetaStore, type EmbeddedSyncMode } from './embedded-store.js';
import type { MetaCallObserver } from './call-observer.js';
import type { MetaStore } from './meta-store.js';
import { RedisMetaStore, type RedisOptions } from './redis-store.js';

export type MetaStoreConfig = { backend: 'embedded'; path: string; sync?: EmbeddedSyncMode; syncIntervalMs?: number; calls?: MetaCallObserver } | ({ backend: 'redis' } & RedisOptions);

export async function openMetaStore(cfg: MetaStoreConfig): Promise<MetaStore> {
  switch (cfg.backend) {
    case 'embedded':
      return EmbeddedMetaStore.open(cfg.path, {
        ...(cfg.sync ? { sync: cfg.sync } : {}),
        ...(cfg.syncIntervalMs ? { intervalMs: cfg.syncIntervalMs } : {}),
        ...(cfg.calls ? { calls: cfg.calls } : {}),
      });
    case 'redis':
      return RedisMetaStore.connect(cfg);
  }
}
