import { createHash, getDiffieHellman, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { cast128CbcDecrypt, cast128CbcEncrypt } from './cast128.js';
import { bigIntToBytes, bytesToBigInt, modPow } from './bigint.js';
import { C2S_IV, S2C_IV } from './dh-params.js';
import { AuthError, nonceAdd, passwordFromField, UamName, type PasswordChecker, type Uam, type UamStep } from './uam.js';

/** Nonce (16) + password field (256) of the final DHX2 message. */
const FINAL_PLAINTEXT = 16 + 256;

const group = getDiffieHellman('modp2');
const P_BYTES = group.getPrime();
const P = bytesToBigInt(P_BYTES);
const G = bytesToBigInt(group.getGenerator());
const LEN = P_BYTES.length;
/**
 * 256-bit private exponents: far above the ~80-bit strength of a 1024-bit group, and a
 * BigInt modPow with them takes under a millisecond, where OpenSSL's generateKeys() spends
 * about 30 ms per login (measured with bench/dsi-roundtrip).
 */
const EXPONENT_BYTES = 32;

/**
 * DHX2 (AFP 3.1+), the Mac's preferred UAM. We use RFC 2409's 1024-bit safe prime
 * (Oakley group 2, g = 2) rather than a fresh prime per login as netatalk does: the client
 * only needs p, g and len, and a fixed well-known group costs nothing to prepare.
 */
export const dhx2: Uam = {
  name: UamName.DHX2,
  needsUserName: true,
  async start(userName: string, _authInfo: Buffer, checker: PasswordChecker): Promise<UamStep> {
    const len = LEN;
    const rb = bytesToBigInt(randomBytes(EXPONENT_BYTES)) | 1n;
    const id = randomInt(0, 0xfffe);
    const hello = Buffer.alloc(2 + 4 + 2 + len * 2);
    hello.writeUInt16BE(id, 0);
    hello.writeUInt32BE(Number(G), 2);
    hello.writeUInt16BE(len, 6);
    P_BYTES.copy(hello, 8);
    bigIntToBytes(modPow(G, rb, P), len).copy(hello, 8 + len);

    const awaitNonce = async (info: Buffer): Promise<UamStep> => {
      if (info.length < 2 + len + 16 || info.readUInt16BE(0) !== id) throw new AuthError('bad-params', 'DHX2: unexpected first LoginCont');
      const ma = bytesToBigInt(info.subarray(2, 2 + len));
      // 0, 1 and p-1 would force a known shared secret.
      if (ma <= 1n || ma >= P - 1n) throw new AuthError('bad-params', 'DHX2: client public value out of range');
      const key = createHash('md5').update(bigIntToBytes(modPow(ma, rb, P), len)).digest();
      const clientNonce = cast128CbcDecrypt(key, C2S_IV, info.subarray(2 + len, 2 + len + 16));
      const serverNonce = randomBytes(16);
      const reply = Buffer.alloc(2 + 32);
      reply.writeUInt16BE((id + 1) & 0xffff, 0);
      cast128CbcEncrypt(key, S2C_IV, Buffer.concat([nonceAdd(clientNonce, 1), serverNonce])).copy(reply, 2);

      const awaitPassword = async (final: Buffer): Promise<UamStep> => {
        // Some Apple clients append 10 bytes to this message; anything past the field is ignored.
        if (final.length < 2 + FINAL_PLAINTEXT || final.readUInt16BE(0) !== ((id + 1) & 0xffff)) {
          throw new AuthError('bad-params', 'DHX2: unexpected second LoginCont');
        }
        const plain = cast128CbcDecrypt(key, C2S_IV, final.subarray(2, 2 + FINAL_PLAINTEXT));
        if (!timingSafeEqual(plain.subarray(0, 16), nonceAdd(serverNonce, 1))) throw new AuthError('bad-credentials', 'DHX2: nonce mismatch');
        const user = await checker.check(userName, passwordFromField(plain.subarray(16)));
        if (!user) throw new AuthError('bad-credentials', 'DHX2: wrong user name or password');
        return { kind: 'done', user };
      };
      return { kind: 'continue', reply, next: awaitPassword };
    };
    return { kind: 'continue', reply: hello, next: awaitNonce };
  },
};
