import { userKey } from '../meta/meta-store.js';

export interface VolumeDef {
  name: string;
  timeMachine: boolean;
  /** Empty: every authenticated (non-guest) user. */
  users: readonly string[];
  /** AFP volume passwords are at most 8 bytes. */
  password?: string;
  allowGuest: boolean;
  sizeLimit: number | null;
  blockSize: number;
  /** Names compare case-sensitively (advertised as kCaseSensitive); HFS+-like folding otherwise. */
  caseSensitive: boolean;
  /** Stable identity of the volume's data, so that renaming the volume keeps it. */
  key?: string;
}

export interface Principal {
  name: string;
  guest: boolean;
}

/** The configured volumes and who may see them. */
export class VolumeCatalog {
  private readonly defs: VolumeDef[];

  constructor(defs: readonly VolumeDef[]) {
    this.defs = [...defs];
  }

  /** A volume configured while the server runs (a reload); it comes after the others. */
  add(def: VolumeDef): void {
    this.defs.push(def);
  }

  all(): readonly VolumeDef[] {
    return this.defs;
  }

  mayOpen(v: VolumeDef, who: Principal): boolean {
    if (who.guest) return v.allowGuest;
    if (v.users.length === 0) return true;
    const me = userKey(who.name);
    return v.users.some((u) => userKey(u) === me);
  }

  visibleTo(who: Principal): VolumeDef[] {
    return this.defs.filter((v) => this.mayOpen(v, who));
  }

  /** Volume names match case-insensitively, as Macs expect. */
  find(name: string): VolumeDef | undefined {
    const n = userKey(name);
    return this.defs.find((v) => userKey(v.name) === n);
  }
}
