/**
 * How Redis keeps the server-wide records (the keys listed in redis-store.ts): key names and
 * encodings, shared by the store and by redis-load.ts, which writes the same records in bulk.
 */
import { MetaUnavailableError, type NodeInfo, type ServerIdentity, type UserRecord, type PasswordHash } from './meta-store.js';
import { copyNodeInfo, copyPassword } from './records.js';

/** The server-wide keys, all under the hash tag {global}. */
export function globalKeys(prefix: string) {
  const g = `${prefix}:{global}`;
  return {
    user: (key: string) => `${g}:user:${key}`,
    users: `${g}:users`,
    uids: `${g}:uids`,
    uidCounter: `${g}:counter:uid`,
    identity: `${g}:identity`,
    node: (id: string) => `${g}:node:${id}`,
    nodes: `${g}:nodes`,
    lease: (name: string) => `${g}:lease:${name}`,
  };
}

export function parseUser(h: Record<string, string>): UserRecord {
  if (h.name === undefined || h.password === undefined) throw new MetaUnavailableError('Redis holds a malformed user record');
  return {
    name: h.name,
    uid: parseInteger(h.uid, 'uid'),
    gid: parseInteger(h.gid, 'gid'),
    password: parseJson(h.password, 'password') as PasswordHash,
    createdAt: parseInteger(h.createdAt, 'createdAt'),
    updatedAt: parseInteger(h.updatedAt, 'updatedAt'),
  };
}

/** The user hash's field/value pairs, as afpgwCreateUser writes them and parseUser reads them. */
export function encodeUser(u: UserRecord): string[] {
  return ['name', u.name, 'uid', String(u.uid), 'gid', String(u.gid), 'password', JSON.stringify(copyPassword(u.password)), 'createdAt', String(u.createdAt), 'updatedAt', String(u.updatedAt)];
}

export function encodeIdentity(id: ServerIdentity): string {
  return JSON.stringify({ signature: id.signature.toString('base64'), createdAt: id.createdAt });
}

export function parseIdentity(json: string): ServerIdentity {
  const v = parseJson(json, 'identity') as { signature?: unknown; createdAt?: unknown };
  if (typeof v.signature !== 'string' || typeof v.createdAt !== 'number') throw new MetaUnavailableError('Redis holds a malformed server identity');
  const signature = Buffer.from(v.signature, 'base64');
  if (signature.length !== 16) throw new MetaUnavailableError('Redis holds a server signature that is not 16 bytes');
  return { signature, createdAt: v.createdAt };
}

export function parseNodeInfo(json: string): NodeInfo {
  return copyNodeInfo(parseJson(json, 'node info') as NodeInfo);
}

export function parseInteger(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || s === '' || !Number.isSafeInteger(n)) throw new MetaUnavailableError(`Redis holds a malformed ${what}: ${String(s)}`);
  return n;
}

function parseJson(s: string, what: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    throw new MetaUnavailableError(`Redis holds malformed JSON for ${what}`);
  }
}
