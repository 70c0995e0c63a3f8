/** The one place that turns configuration into a metadata backend. */
import { EmbeddedMetaStore } from './embedded-store.js';
import type { MetaStore } from './meta-store.js';
import { RedisMetaStore, type RedisOptions } from './redis-store.js';

export type MetaStoreConfig = { backend: 'embedded'; path: string } | ({ backend: 'redis' } & RedisOptions);

export async function openMetaStore(cfg: MetaStoreConfig): Promise<MetaStore> {
  switch (cfg.backend) {
    case 'embedded':
      return EmbeddedMetaStore.open(cfg.path);
    case 'redis':
      return RedisMetaStore.connect(cfg);
  }
}
