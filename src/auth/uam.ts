/** User authentication methods: the pluggable login exchanges AFP negotiates by name. */

export interface AuthenticatedUser {
  name: string;
  uid: number;
  gid: number;
  guest: boolean;
}

/** Checks a name/password pair against the user database. */
export interface PasswordChecker {
  check(name: string, password: string): Promise<AuthenticatedUser | null>;
}

export type UamStep =
  | { kind: 'continue'; reply: Buffer; next: (authInfo: Buffer) => Promise<UamStep> }
  | { kind: 'done'; user: AuthenticatedUser };

export type AuthFailure = 'bad-credentials' | 'bad-params';

/** Login failed; the AFP layer maps the reason to kFPUserNotAuth or kFPParamErr. */
export class AuthError extends Error {
  constructor(readonly reason: AuthFailure, detail: string) {
    super(detail);
    this.name = 'AuthError';
  }
}

export interface Uam {
  /** The name advertised in FPGetSrvrInfo and sent in FPLogin. */
  readonly name: string;
  /** Whether the login carries a user name (every UAM but guest). */
  readonly needsUserName: boolean;
  start(userName: string, authInfo: Buffer, checker: PasswordChecker): Promise<UamStep>;
}

export const UamName = {
  Guest: 'No User Authent',
  Cleartext: 'Cleartxt Passwrd',
  DHCAST128: 'DHCAST128',
  DHX2: 'DHX2',
} as const;

/** Reads a NUL-padded password field. */
export function passwordFromField(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** 128-bit big-endian increment with wrap-around; always 16 bytes. */
export function nonceAdd(nonce: Buffer, delta: 1 | -1): Buffer {
  const out = Buffer.from(nonce);
  if (delta === 1) {
    for (let i = 15; i >= 0; i--) {
      out[i] = (out[i]! + 1) & 0xff;
      if (out[i] !== 0) break;
    }
  } else {
    for (let i = 15; i >= 0; i--) {
      out[i] = (out[i]! - 1) & 0xff;
      if (out[i] !== 0xff) break;
    }
  }
  return out;
}
