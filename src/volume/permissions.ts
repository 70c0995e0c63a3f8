import type { NodeRecord } from '../meta/namespace.js';

/** Who is asking: the logged-in user (uid/gid from the user database) or the guest. */
export interface Principal {
  name: string;
  uid: number;
  gid: number;
  guest: boolean;
}

export interface Rights {
  read: boolean;
  write: boolean;
  /** Execute on a file, search (enter) on a directory. */
  search: boolean;
  owner: boolean;
}

const STICKY = 0o1000;

/** Classic Unix permission evaluation: the owner class, else the group class, else others. */
export function rightsOf(who: Principal, node: NodeRecord): Rights {
  const owner = !who.guest && node.uid === who.uid;
  const shift = owner ? 6 : !who.guest && node.gid === who.gid ? 3 : 0;
  const bits = (node.mode >> shift) & 7;
  return { read: (bits & 4) !== 0, write: (bits & 2) !== 0, search: (bits & 1) !== 0, owner };
}

/**
 * May `who` remove or rename `child` inside `dir`? Write and search on the directory, and
 * in a sticky directory (the volume root) only the child's owner: on a shared Time Machine
 * volume, users must not delete each other's backups.
 */
export function mayUnlink(who: Principal, dir: NodeRecord, child: NodeRecord): boolean {
  const r = rightsOf(who, dir);
  if (!r.write || !r.search) return false;
  if (dir.mode & STICKY) return r.owner || (!who.guest && child.uid === who.uid);
  return true;
}

/** AFP access-rights bits (directories' AccessRights and the last word of UnixPrivs). */
export const AccessBit = {
  OwnerSearch: 0x01,
  OwnerRead: 0x02,
  OwnerWrite: 0x04,
  GroupSearch: 0x0100,
  GroupRead: 0x0200,
  GroupWrite: 0x0400,
  WorldSearch: 0x010000,
  WorldRead: 0x020000,
  WorldWrite: 0x040000,
  UserSearch: 0x01000000,
  UserRead: 0x02000000,
  UserWrite: 0x04000000,
  BlankAccess: 0x10000000,
  UserIsOwner: 0x80000000,
} as const;

/** Unix rwx of one class → AFP search/read/write bits (r→read, w→write, x→search, as netatalk maps them). */
function classBits(rwx: number): number {
  return ((rwx & 4) ? 0x02 : 0) | ((rwx & 2) ? 0x04 : 0) | ((rwx & 1) ? 0x01 : 0);
}

/** The AFP access-rights word for `node` as seen by `who`. */
export function accessRights(who: Principal, node: NodeRecord): number {
  const owner = classBits((node.mode >> 6) & 7);
  const group = classBits((node.mode >> 3) & 7);
  const world = classBits(node.mode & 7);
  const r = rightsOf(who, node);
  const user = (r.read ? 0x02 : 0) | (r.write ? 0x04 : 0) | (r.search ? 0x01 : 0);
  return ((r.owner ? AccessBit.UserIsOwner : 0) | (user << 24) | (world << 16) | (group << 8) | owner) >>> 0;
}
