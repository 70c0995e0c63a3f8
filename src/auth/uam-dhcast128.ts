import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { cast128CbcDecrypt, cast128CbcEncrypt } from './cast128.js';
import { bigIntToBytes, bytesToBigInt, modPow } from './bigint.js';
import { C2S_IV, DHCAST128_G, DHCAST128_P, S2C_IV } from './dh-params.js';
import { AuthError, nonceAdd, passwordFromField, UamName, type PasswordChecker, type Uam, type UamStep } from './uam.js';

/** Nonce (16) + password field (64). */
const FINAL_PLAINTEXT = 16 + 64;

/**
 * DHCAST128 ("DHX"), for AFP 3.0 clients. Its 128-bit group is far too small to protect
 * anything today; it exists so old Macs can log in, and the config can leave it off.
 */
export const dhcast128: Uam = {
  name: UamName.DHCAST128,
  needsUserName: true,
  async start(userName: string, authInfo: Buffer, checker: PasswordChecker): Promise<UamStep> {
    if (authInfo.length < 16) throw new AuthError('bad-params', 'DHCAST128: missing client public value');
    const ma = bytesToBigInt(authInfo.subarray(0, 16));
    if (ma <= 1n || ma >= DHCAST128_P - 1n) throw new AuthError('bad-params', 'DHCAST128: client public value out of range');
    const rb = bytesToBigInt(randomBytes(16)) % (DHCAST128_P - 2n) + 1n;
    const mb = bigIntToBytes(modPow(DHCAST128_G, rb, DHCAST128_P), 16);
    // DHCAST128 uses the raw shared secret as the key (no hash), unlike DHX2.
    const key = bigIntToBytes(modPow(ma, rb, DHCAST128_P), 16);
    const serverNonce = randomBytes(16);
    const id = randomInt(0, 0xffff);
    const reply = Buffer.alloc(2 + 16 + 32);
    reply.writeUInt16BE(id, 0);
    mb.copy(reply, 2);
    // The second half would be a server signature; servers send zeros there.
    cast128CbcEncrypt(key, S2C_IV, Buffer.concat([serverNonce, Buffer.alloc(16)])).copy(reply, 18);

    const awaitPassword = async (info: Buffer): Promise<UamStep> => {
      if (info.length < 2 + FINAL_PLAINTEXT || info.readUInt16BE(0) !== id) throw new AuthError('bad-params', 'DHCAST128: unexpected LoginCont');
      const plain = cast128CbcDecrypt(key, C2S_IV, info.subarray(2, 2 + FINAL_PLAINTEXT));
      if (!timingSafeEqual(plain.subarray(0, 16), nonceAdd(serverNonce, 1))) throw new AuthError('bad-credentials', 'DHCAST128: nonce mismatch');
      const user = await checker.check(userName, passwordFromField(plain.subarray(16)));
      if (!user) throw new AuthError('bad-credentials', 'DHCAST128: wrong user name or password');
      return { kind: 'done', user };
    };
    return { kind: 'continue', reply, next: awaitPassword };
  },
};
