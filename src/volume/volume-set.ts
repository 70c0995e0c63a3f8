import type { BandCache } from '../blocks/band-cache.js';
import { GarbageCollector } from '../blocks/garbage-collector.js';
import type { UploadPipeline } from '../blocks/upload-pipeline.js';
import { VolumeData } from '../blocks/volume-data.js';
import type { MetaStore } from '../meta/meta-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Logger } from '../ops/log.js';
import type { VolumeCatalog, VolumeDef } from './catalog.js';
import { folder } from './names.js';
import { Volume } from './volume.js';

/** What every volume's data shares on one node. */
export interface DataPlane {
  objects: ObjectStore;
  cache: BandCache;
  uploads: UploadPipeline;
  nodeId: string;
  syncTimeoutMs: number;
  uploadDelayMs: number;
  gcGraceMs: number;
  gcIntervalMs: number;
  log: Logger;
}

/**
 * Every configured volume, opened once per node. Wire IDs follow the configuration order
 * (first volume = 1), so they stay the same across restarts and on both nodes of a pair.
 */
export class VolumeSet {
  private constructor(readonly catalog: VolumeCatalog, private readonly byId: Map<number, Volume>, private readonly collectors: GarbageCollector[]) {}

  static async open(catalog: VolumeCatalog, meta: MetaStore, plane: DataPlane): Promise<VolumeSet> {
    const byId = new Map<number, Volume>();
    const collectors: GarbageCollector[] = [];
    let wireId = 1;
    for (const def of catalog.all()) {
      const fold = folder(def.caseSensitive);
      const key = volumeKey(def);
      const ns = meta.namespace(key, { fold });
      const blockSize = await ns.fixBlockSize(def.blockSize);
      if (blockSize !== def.blockSize) {
        plane.log.warn({ volume: def.name, configured: def.blockSize, kept: blockSize }, 'volume blockSize differs from the one its data was written with; keeping the original');
      }
      const data = await VolumeData.open({
        volumeKey: key,
        blockSize,
        store: ns,
        objects: plane.objects,
        cache: plane.cache,
        uploads: plane.uploads,
        durable: () => meta.sync(),
        syncTimeoutMs: plane.syncTimeoutMs,
        uploadDelayMs: plane.uploadDelayMs,
        log: plane.log.child({ volume: def.name }),
      });
      const gc = new GarbageCollector({ volumeKey: key, store: ns, objects: plane.objects, graceMs: plane.gcGraceMs, intervalMs: plane.gcIntervalMs, log: plane.log });
      gc.start();
      collectors.push(gc);
      byId.set(wireId, await Volume.open(def, wireId, ns, fold, () => meta.sync(), { data, forks: meta.forks(key), nodeId: plane.nodeId, key }));
      wireId++;
    }
    return new VolumeSet(catalog, byId, collectors);
  }

  byWireId(id: number): Volume | undefined {
    return this.byId.get(id);
  }

  byName(name: string): Volume | undefined {
    const def = this.catalog.find(name);
    return def ? [...this.byId.values()].find((v) => v.def === def) : undefined;
  }

  /** The volume with this store key (volumeKey), e.g. one named by a session record. */
  byKey(key: string): Volume | undefined {
    return [...this.byId.values()].find((v) => v.key === key);
  }

  all(): Volume[] {
    return [...this.byId.values()];
  }

  async close(): Promise<void> {
    for (const gc of this.collectors) await gc.stop();
    for (const v of this.byId.values()) v.data.close();
  }
}

/**
 * The identity of a volume's data: its configured key, else its name, case-folded and
 * percent-encoded (braces would break the Redis hash tag the key is placed in).
 */
export function volumeKey(def: VolumeDef): string {
  return def.key ?? encodeURIComponent(def.name.normalize('NFC').toLowerCase());
}
