/**
 * Looking up a local system account by name, for giving a file to the service user. Reads
 * /etc/passwd and /etc/group, where system users (systemd-sysusers, useradd --system) live.
 */
import { readFile } from 'node:fs/promises';

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  /** The name of the primary group. */
  group: string;
}

async function entries(file: string): Promise<string[][]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'));
}

export async function lookupSystemUser(name: string): Promise<SystemUser | undefined> {
  const user = (await entries('/etc/passwd')).find((f) => f[0] === name);
  if (!user) return undefined;
  const uid = Number(user[2]);
  const gid = Number(user[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  const group = (await entries('/etc/group')).find((f) => Number(f[2]) === gid)?.[0] ?? String(gid);
  return { name, uid, gid, group };
}
