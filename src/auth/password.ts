import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { PasswordHash } from '../meta/meta-store.js';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };
const KEY_LEN = 32;

function scrypt(password: Buffer, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCb(password, salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const hash = await scrypt(Buffer.from(password, 'utf8'), salt, params);
  return { algo: 'scrypt', N: params.N, r: params.r, p: params.p, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  if (stored.algo !== 'scrypt') return false;
  const expected = Buffer.from(stored.hash, 'base64');
  const got = await scrypt(Buffer.from(password, 'utf8'), Buffer.from(stored.salt, 'base64'), stored);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/**
 * A hash nobody's password matches, checked when the user does not exist, so the reply to
 * an unknown name takes as long as the reply to a wrong password.
 */
let decoy: Promise<PasswordHash> | undefined;
export function decoyHash(params: ScryptParams): Promise<PasswordHash> {
  decoy ??= hashPassword(randomBytes(18).toString('base64'), params);
  return decoy;
}
