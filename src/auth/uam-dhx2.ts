import { createHash, getDiffieHellman, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { cast128CbcDecrypt, cast128CbcEncrypt } from './cast128.js';
import { leftPad } from './bigint.js';
import { C2S_IV, S2C_IV } from './dh-params.js';
import { AuthError, nonceAdd, passwordFromField, UamName, type PasswordChecker, type Uam, type UamStep } from './uam.js';

/** Nonce (16) + password field (256) of the final DHX2 message. */
const FINAL_PLAINTEXT = 16 + 256;

/**
 * DHX2 (AFP 3.1+), the Mac's preferred UAM. We use RFC 2409's 1024-bit safe prime
 * (Oakley group 2, g = 2) rather than a fresh prime per login as netatalk does: the client
 * only needs p, g and len, and a fixed well-known group costs nothing to prepare.
 */
export const dhx2: Uam = {
  name: UamName.DHX2,
  needsUserName: true,
  async start(userName: string, _authInfo: Buffer, checker: PasswordChecker): Promise<UamStep> {
    const dh = getDiffieHellman('modp2');
    dh.generateKeys();
    const p = dh.getPrime();
    const len = p.length;
    const g = dh.getGenerator();
    const id = randomInt(0, 0xfffe);
    const hello = Buffer.alloc(2 + 4 + 2 + len * 2);
    hello.writeUInt16BE(id, 0);
    hello.writeUInt32BE(g.readUIntBE(0, g.length), 2);
    hello.writeUInt16BE(len, 6);
    p.copy(hello, 8);
    leftPad(dh.getPublicKey(), len).copy(hello, 8 + len);

    const awaitNonce = async (info: Buffer): Promise<UamStep> => {
      if (info.length < 2 + len + 16 || info.readUInt16BE(0) !== id) throw new AuthError('bad-params', 'DHX2: unexpected first LoginCont');
      const ma = info.subarray(2, 2 + len);
      let shared: Buffer;
      try {
        shared = dh.computeSecret(ma);
      } catch {
        throw new AuthError('bad-params', 'DHX2: client public value out of range');
      }
      const key = createHash('md5').update(leftPad(shared, len)).digest();
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
