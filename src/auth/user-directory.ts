import type { MetaStore } from '../meta/meta-store.js';
import { GUEST_USER } from './uam-basic.js';

/**
 * Names for the IDs the Mac shows (FPMapID / FPMapName). Each user has a personal group
 * whose id equals the uid, so groups map through users; "nobody"/"nogroup" are built in.
 */
export class UserDirectory {
  constructor(private readonly meta: MetaStore) {}

  async userName(uid: number): Promise<string | undefined> {
    if (uid === GUEST_USER.uid) return GUEST_USER.name;
    return (await this.meta.getUserByUid(uid))?.name;
  }

  async groupName(gid: number): Promise<string | undefined> {
    if (gid === GUEST_USER.gid) return 'nogroup';
    const u = await this.meta.getUserByUid(gid);
    return u && u.gid === gid ? u.name : undefined;
  }

  async uidOf(name: string): Promise<number | undefined> {
    if (name === GUEST_USER.name) return GUEST_USER.uid;
    return (await this.meta.getUser(name))?.uid;
  }

  async gidOf(name: string): Promise<number | undefined> {
    if (name === 'nogroup') return GUEST_USER.gid;
    return (await this.meta.getUser(name))?.gid;
  }
}
