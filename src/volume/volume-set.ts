import type { BandCache } from '../blocks/band-cache.js';
import { GarbageCollector } from '../blocks/garbage-collector.js';
import type { UploadPipeline } from '../blocks/upload-pipeline.js';
import { VolumeData } from '../blocks/volume-data.js';
import type { MetaStore } from '../meta/meta-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Logger } from '../ops/log.js';
import type { VolumeCatalog, VolumeDef } from './catalog.js';
import { folder } from './names.js';
import type { SyncObserver } from './sync-observer.js';
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
  /** Told how long each FPSyncFork/FPSyncDir took. */
  syncs?: SyncObserver;
}

/**
 * Every configured volume, opened once per node. Wire IDs follow the configuration order
 * (first volume = 1), so they stay the same across restarts and on both nodes of a pair.
 */
export class VolumeSet {
  private constructor(
    readonly catalog: VolumeCatalog,
    private readonly byId: Map<number, Volume>,
    private readonly collectors: Map<string, GarbageCollector>,
    private readonly meta: MetaStore,
    private readonly plane: DataPlane,
  ) {}

  static async open(catalog: VolumeCatalog, meta: MetaStore, plane: DataPlane): Promise<VolumeSet> {
    const set = new VolumeSet(catalog, new Map(), new Map(), meta, plane);
    let wireId = 1;
    for (const def of catalog.all()) await set.openOne(def, wireId++);
    return set;
  }

  private async openOne(def: VolumeDef, wireId: number): Promise<Volume> {
    const { meta, plane } = this;
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
    this.collectors.set(key, gc);
    const v = await Volume.open(def, wireId, ns, fold, () => meta.sync(), { data, forks: meta.forks(key), nodeId: plane.nodeId, key, ...(plane.syncs ? { syncs: plane.syncs } : {}) });
    this.byId.set(wireId, v);
    return v;
  }

  /**
   * Applies a new list of volume definitions while sessions go on (SIGHUP). Who may use a
   * volume, its password and its size limit change in place; volumes added at the end of the
   * list are opened. What would change what a connected Mac already holds (a volume's name,
   * key, case sensitivity, block size or Time Machine flag; a removed or reordered volume)
   * waits for a restart, and is reported so.
   */
  async reload(defs: readonly VolumeDef[]): Promise<{ applied: string[]; needRestart: string[] }> {
    const applied: string[] = [];
    const needRestart: string[] = [];
    const current = this.all();
    for (let i = 0; i < Math.max(defs.length, current.length); i++) {
      const next = defs[i];
      const v = current[i];
      if (!v) {
        if (!next) continue;
        await this.openOne(next, this.byId.size + 1);
        this.catalog.add(next);
        applied.push(`volume ${next.name} added`);
        continue;
      }
      if (!next || volumeKey(next) !== v.key) {
        needRestart.push(next ? `volume ${i + 1} is now ${next.name} (was ${v.def.name})` : `volume ${v.def.name} removed`);
        continue;
      }
      for (const field of ['name', 'caseSensitive', 'blockSize', 'timeMachine'] as const) {
        if (next[field] !== v.def[field]) needRestart.push(`${v.def.name}: ${field}`);
      }
      const live = { users: next.users, allowGuest: next.allowGuest, sizeLimit: next.sizeLimit, password: next.password };
      for (const [field, value] of Object.entries(live)) {
        if (JSON.stringify(value) !== JSON.stringify(v.def[field as keyof typeof live])) applied.push(`${v.def.name}: ${field}`);
      }
      // The catalog and the volume share this object: access checks see the change at once.
      Object.assign(v.def, live);
      if (next.password === undefined) delete (v.def as { password?: string }).password;
    }
    return { applied, needRestart };
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

  /**
   * `afp-gateway gc`: one garbage collection pass on every volume now, instead of at the next
   * interval. Objects still within their grace period stay (a reader on the other node of a
   * pair may hold their refs); the count says how many objects went, per volume.
   */
  async collectGarbage(): Promise<{ volume: string; deleted: number }[]> {
    const out: { volume: string; deleted: number }[] = [];
    for (const v of this.all()) {
      const gc = this.collectors.get(v.key);
      if (gc) out.push({ volume: v.name, deleted: await gc.runOnce() });
    }
    return out;
  }

  async close(): Promise<void> {
    for (const gc of this.collectors.values()) await gc.stop();
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
