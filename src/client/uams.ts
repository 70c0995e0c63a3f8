import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { bigIntToBytes, bytesToBigInt, modPow } from '../auth/bigint.js';
import { cast128CbcDecrypt, cast128CbcEncrypt } from '../auth/cast128.js';
import { C2S_IV, DHCAST128_G, DHCAST128_P, S2C_IV } from '../auth/dh-params.js';
import { nonceAdd } from '../auth/uam.js';
import { Reader } from '../wire/reader.js';

/**
 * The client halves of the UAMs. Each is a small state machine: `initial` is the
 * UserAuthInfo of FPLogin(Ext), `next(reply)` turns a kFPAuthContinue reply into the
 * UserAuthInfo of the following FPLoginCont.
 */
export interface ClientUam {
  readonly name: string;
  readonly needsUserName: boolean;
  initial(): Buffer;
  next(reply: Buffer): Buffer;
}

function randomBelow(max: bigint, bytes: number): bigint {
  return (bytesToBigInt(randomBytes(bytes)) % (max - 2n)) + 1n;
}

function fixedField(text: string, size: number, what: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  if (b.length > size) throw new RangeError(`${what} is limited to ${size} bytes`);
  const out = Buffer.alloc(size);
  b.copy(out);
  return out;
}

export function clientDhx2(password: string): ClientUam {
  const pw = fixedField(password, 256, 'a DHX2 password');
  let round = 0;
  let key: Buffer;
  let clientNonce: Buffer;
  let id = 0;
  return {
    name: 'DHX2',
    needsUserName: true,
    initial: () => Buffer.alloc(0),
    next(reply) {
      const r = new Reader(reply);
      if (round === 0) {
        round = 1;
        id = r.u16();
        const g = BigInt(r.u32());
        const len = r.u16();
        const p = bytesToBigInt(r.bytes(len));
        const mb = bytesToBigInt(r.bytes(len));
        const ra = randomBelow(p, 32);
        const ma = bigIntToBytes(modPow(g, ra, p), len);
        key = createHash('md5').update(bigIntToBytes(modPow(mb, ra, p), len)).digest();
        clientNonce = randomBytes(16);
        const out = Buffer.alloc(2);
        out.writeUInt16BE(id);
        return Buffer.concat([out, ma, cast128CbcEncrypt(key, C2S_IV, clientNonce)]);
      }
      if (round === 1) {
        round = 2;
        const nextId = r.u16();
        if (nextId !== ((id + 1) & 0xffff)) throw new Error('DHX2: server answered with an unexpected id');
        const plain = cast128CbcDecrypt(key, S2C_IV, r.bytes(32));
        if (!timingSafeEqual(plain.subarray(0, 16), nonceAdd(clientNonce, 1))) throw new Error('DHX2: server failed the nonce check');
        const serverNonce = plain.subarray(16, 32);
        const out = Buffer.alloc(2);
        out.writeUInt16BE(nextId);
        return Buffer.concat([out, cast128CbcEncrypt(key, C2S_IV, Buffer.concat([nonceAdd(serverNonce, 1), pw]))]);
      }
      throw new Error('DHX2: unexpected extra round');
    },
  };
}

export function clientDhcast128(password: string): ClientUam {
  const pw = fixedField(password, 64, 'a DHCAST128 password');
  const ra = randomBelow(DHCAST128_P, 16);
  let done = false;
  return {
    name: 'DHCAST128',
    needsUserName: true,
    initial: () => bigIntToBytes(modPow(DHCAST128_G, ra, DHCAST128_P), 16),
    next(reply) {
      if (done) throw new Error('DHCAST128: unexpected extra round');
      done = true;
      const r = new Reader(reply);
      const id = r.u16();
      const mb = bytesToBigInt(r.bytes(16));
      const key = bigIntToBytes(modPow(mb, ra, DHCAST128_P), 16);
      const plain = cast128CbcDecrypt(key, S2C_IV, r.bytes(32));
      const out = Buffer.alloc(2);
      out.writeUInt16BE(id);
      return Buffer.concat([out, cast128CbcEncrypt(key, C2S_IV, Buffer.concat([nonceAdd(plain.subarray(0, 16), 1), pw]))]);
    },
  };
}

export function clientCleartext(password: string): ClientUam {
  const pw = fixedField(password, 8, 'a cleartext password');
  return {
    name: 'Cleartxt Passwrd',
    needsUserName: true,
    initial: () => pw,
    next() {
      throw new Error('cleartext login has one round');
    },
  };
}

export function clientGuest(): ClientUam {
  return {
    name: 'No User Authent',
    needsUserName: false,
    initial: () => Buffer.alloc(0),
    next() {
      throw new Error('guest login has one round');
    },
  };
}
