import type { MetaStore } from '../meta/meta-store.js';
import { decoyHash, verifyPassword, type ScryptParams } from './password.js';
import type { AuthenticatedUser, PasswordChecker } from './uam.js';

/** Checks passwords against the users in the metadata store. */
export class UserAuthenticator implements PasswordChecker {
  constructor(private readonly meta: MetaStore, private readonly scrypt: ScryptParams) {}

  async check(name: string, password: string): Promise<AuthenticatedUser | null> {
    const user = name ? await this.meta.getUser(name) : undefined;
    if (!user) {
      // Spend the same scrypt work so an unknown name is not told apart by timing.
      await verifyPassword(password, await decoyHash(this.scrypt));
      return null;
    }
    if (!(await verifyPassword(password, user.password))) return null;
    return { name: user.name, uid: user.uid, gid: user.gid, guest: false };
  }
}
