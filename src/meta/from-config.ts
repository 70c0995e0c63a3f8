import type { MetadataConfig, RedisMetadataConfig } from '../config/schema.js';
import type { MetaCallObserver } from './call-observer.js';
import type { MetaStore } from './meta-store.js';
import { openMetaStore } from './open.js';
import type { RedisOptions } from './redis-store.js';

/** Opens the metadata backend a gateway config names; `calls` is told of each call it makes. */
export function openMetaStoreFromConfig(cfg: MetadataConfig, calls?: MetaCallObserver): Promise<MetaStore> {
  const measured = calls ? { calls } : {};
  if (cfg.backend === 'embedded') return openMetaStore({ backend: 'embedded', path: cfg.path, sync: cfg.sync, syncIntervalMs: cfg.syncIntervalMs, ...measured });
  return openMetaStore({ backend: 'redis', ...redisOptionsFromConfig(cfg), ...measured });
}

/** The connection settings of a redis metadata config. */
export function redisOptionsFromConfig(cfg: RedisMetadataConfig): RedisOptions {
  return {
    ...(cfg.url !== undefined ? { url: cfg.url } : {}),
    ...(cfg.sentinels !== undefined ? { sentinels: cfg.sentinels, sentinelName: cfg.sentinelName } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    keyPrefix: cfg.keyPrefix,
    waitReplicas: cfg.waitReplicas,
    waitTimeoutMs: cfg.waitTimeoutMs,
    failoverWaitMs: cfg.failoverWaitSeconds * 1000,
  };
}
