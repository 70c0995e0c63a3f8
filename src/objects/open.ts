/**
 * Opens the object store the configuration names. No network I/O for S3: a gateway started in
 * process while the bucket is away still starts, and the first request that needs the bucket
 * reports ObjectStoreUnavailableError. (`serve` checks the bucket before it starts the gateway
 * and refuses to start without it: src/cli/preflight.ts.)
 */
import type { ObjectsConfig } from '../config/schema.js';
import { FsObjectStore } from './fs-store.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore } from './s3-store.js';

export async function openObjectStore(cfg: ObjectsConfig): Promise<ObjectStore> {
  switch (cfg.backend) {
    case 'fs':
      return FsObjectStore.open(cfg.path);
    case 's3':
      return new S3ObjectStore(cfg);
  }
}
