/**
 * Opens the object store the configuration names. No network I/O for S3: a branch box that
 * boots while its uplink is down must still start and serve from its cache; the first request
 * that needs the bucket reports ObjectStoreUnavailableError instead.
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
