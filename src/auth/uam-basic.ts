import { AuthError, passwordFromField, UamName, type AuthenticatedUser, type PasswordChecker, type Uam, type UamStep } from './uam.js';

/** The guest identity: Unix "nobody". */
export const GUEST_USER: AuthenticatedUser = { name: 'nobody', uid: 65534, gid: 65534, guest: true };

export const guest: Uam = {
  name: UamName.Guest,
  needsUserName: false,
  async start(): Promise<UamStep> {
    return { kind: 'done', user: GUEST_USER };
  },
};

/** AFP's cleartext UAM: the password travels as an 8-byte NUL-padded field, so 8 characters at most. */
export const cleartext: Uam = {
  name: UamName.Cleartext,
  needsUserName: true,
  async start(userName: string, authInfo: Buffer, checker: PasswordChecker): Promise<UamStep> {
    if (authInfo.length < 8) throw new AuthError('bad-params', 'cleartext: password field shorter than 8 bytes');
    const user = await checker.check(userName, passwordFromField(authInfo.subarray(0, 8)));
    if (!user) throw new AuthError('bad-credentials', 'cleartext: wrong user name or password');
    return { kind: 'done', user };
  },
};
