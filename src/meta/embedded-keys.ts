/**
 * The server-wide keys of the embedded store (see embedded-store.ts for what each holds),
 * shared by the store and by embedded-dump.ts, which reads the same records.
 */
export const STORE_KEYS = {
  user: (key: string) => `user:${key}`,
  uid: (uid: number) => `uid:${uid}`,
  uidCounter: 'counter:uid',
  identity: 'server:identity',
  node: (id: string) => `node:${id}`,
  lease: (name: string) => `lease:${name}`,
} as const;

/** Key ranges for listing: ';' is the character after ':', so [p:, p;) holds exactly the p: keys. */
export const USER_RANGE = { start: 'user:', end: 'user;' };
export const UID_RANGE = { start: 'uid:', end: 'uid;' };
export const NODE_RANGE = { start: 'node:', end: 'node;' };
