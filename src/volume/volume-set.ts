import type { MetaStore } from '../meta/meta-store.js';
import type { VolumeCatalog, VolumeDef } from './catalog.js';
import { folder } from './names.js';
import { Volume } from './volume.js';

/**
 * Every configured volume, opened once per node. Wire IDs follow the configuration order
 * (first volume = 1), so they stay the same across restarts and on both nodes of a pair.
 */
export class VolumeSet {
  private constructor(readonly catalog: VolumeCatalog, private readonly byId: Map<number, Volume>) {}

  static async open(catalog: VolumeCatalog, meta: MetaStore): Promise<VolumeSet> {
    const byId = new Map<number, Volume>();
    let wireId = 1;
    for (const def of catalog.all()) {
      const fold = folder(def.caseSensitive);
      byId.set(wireId, await Volume.open(def, wireId, meta.namespace(volumeKey(def), { fold }), fold, () => meta.sync()));
      wireId++;
    }
    return new VolumeSet(catalog, byId);
  }

  byWireId(id: number): Volume | undefined {
    return this.byId.get(id);
  }

  byName(name: string): Volume | undefined {
    const def = this.catalog.find(name);
    return def ? [...this.byId.values()].find((v) => v.def === def) : undefined;
  }

  all(): Volume[] {
    return [...this.byId.values()];
  }
}

/**
 * The identity of a volume's data: its configured key, else its name, case-folded and
 * percent-encoded (braces would break the Redis hash tag the key is placed in).
 */
export function volumeKey(def: VolumeDef): string {
  return def.key ?? encodeURIComponent(def.name.normalize('NFC').toLowerCase());
}
