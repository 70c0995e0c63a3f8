/**
 * CAST-128 (CAST5, RFC 2144) with 128-bit keys, plus unpadded CBC, for the AFP
 * DHX2 and DHCAST128 user authentication methods.
 *
 * Node's OpenSSL 3 only offers cast5 through the legacy provider, which a normal
 * process does not load, so the cipher is implemented here instead of relying on
 * `node:crypto`.
 */
import { S1, S2, S3, S4, S5, S6, S7, S8 } from './cast128-sboxes.js';

const BLOCK = 8;
const KEY_BYTES = 16;

// Byte n of a big-endian word, 0 being the most significant: the RFC names key
// bytes x0..xF and z0..zF, and the schedule keeps them packed four to a word.
const b0 = (w: number): number => w >>> 24;
const b1 = (w: number): number => (w >>> 16) & 0xff;
const b2 = (w: number): number => (w >>> 8) & 0xff;
const b3 = (w: number): number => w & 0xff;

/**
 * RFC 2144 section 2.4. Writes K1..K32 into `k`; the caller uses K1..K16 as the
 * masking subkeys and the low five bits of K17..K32 as the rotations.
 * X0..X3 hold x0x1x2x3 .. xCxDxExF, Z0..Z3 hold z0z1z2z3 .. zCzDzEzF.
 */
function expandKey(key: Uint8Array, k: number[]): void {
  let X0 = readBE(key, 0);
  let X1 = readBE(key, 4);
  let X2 = readBE(key, 8);
  let X3 = readBE(key, 12);
  let Z0: number, Z1: number, Z2: number, Z3: number;

  // The second pass is the same computation continued from the updated x bytes;
  // it yields K17..K32.
  for (let o = 0; o < 32; o += 16) {
    Z0 = X0 ^ S5[b1(X3)]! ^ S6[b3(X3)]! ^ S7[b0(X3)]! ^ S8[b2(X3)]! ^ S7[b0(X2)]!;
    Z1 = X2 ^ S5[b0(Z0)]! ^ S6[b2(Z0)]! ^ S7[b1(Z0)]! ^ S8[b3(Z0)]! ^ S8[b2(X2)]!;
    Z2 = X3 ^ S5[b3(Z1)]! ^ S6[b2(Z1)]! ^ S7[b1(Z1)]! ^ S8[b0(Z1)]! ^ S5[b1(X2)]!;
    Z3 = X1 ^ S5[b2(Z2)]! ^ S6[b1(Z2)]! ^ S7[b3(Z2)]! ^ S8[b0(Z2)]! ^ S6[b3(X2)]!;
    k[o + 0] = S5[b0(Z2)]! ^ S6[b1(Z2)]! ^ S7[b3(Z1)]! ^ S8[b2(Z1)]! ^ S5[b2(Z0)]!;
    k[o + 1] = S5[b2(Z2)]! ^ S6[b3(Z2)]! ^ S7[b1(Z1)]! ^ S8[b0(Z1)]! ^ S6[b2(Z1)]!;
    k[o + 2] = S5[b0(Z3)]! ^ S6[b1(Z3)]! ^ S7[b3(Z0)]! ^ S8[b2(Z0)]! ^ S7[b1(Z2)]!;
    k[o + 3] = S5[b2(Z3)]! ^ S6[b3(Z3)]! ^ S7[b1(Z0)]! ^ S8[b0(Z0)]! ^ S8[b0(Z3)]!;

    X0 = Z2 ^ S5[b1(Z1)]! ^ S6[b3(Z1)]! ^ S7[b0(Z1)]! ^ S8[b2(Z1)]! ^ S7[b0(Z0)]!;
    X1 = Z0 ^ S5[b0(X0)]! ^ S6[b2(X0)]! ^ S7[b1(X0)]! ^ S8[b3(X0)]! ^ S8[b2(Z0)]!;
    X2 = Z1 ^ S5[b3(X1)]! ^ S6[b2(X1)]! ^ S7[b1(X1)]! ^ S8[b0(X1)]! ^ S5[b1(Z0)]!;
    X3 = Z3 ^ S5[b2(X2)]! ^ S6[b1(X2)]! ^ S7[b3(X2)]! ^ S8[b0(X2)]! ^ S6[b3(Z0)]!;
    k[o + 4] = S5[b3(X0)]! ^ S6[b2(X0)]! ^ S7[b0(X3)]! ^ S8[b1(X3)]! ^ S5[b0(X2)]!;
    k[o + 5] = S5[b1(X0)]! ^ S6[b0(X0)]! ^ S7[b2(X3)]! ^ S8[b3(X3)]! ^ S6[b1(X3)]!;
    k[o + 6] = S5[b3(X1)]! ^ S6[b2(X1)]! ^ S7[b0(X2)]! ^ S8[b1(X2)]! ^ S7[b3(X0)]!;
    k[o + 7] = S5[b1(X1)]! ^ S6[b0(X1)]! ^ S7[b2(X2)]! ^ S8[b3(X2)]! ^ S8[b3(X1)]!;

    Z0 = X0 ^ S5[b1(X3)]! ^ S6[b3(X3)]! ^ S7[b0(X3)]! ^ S8[b2(X3)]! ^ S7[b0(X2)]!;
    Z1 = X2 ^ S5[b0(Z0)]! ^ S6[b2(Z0)]! ^ S7[b1(Z0)]! ^ S8[b3(Z0)]! ^ S8[b2(X2)]!;
    Z2 = X3 ^ S5[b3(Z1)]! ^ S6[b2(Z1)]! ^ S7[b1(Z1)]! ^ S8[b0(Z1)]! ^ S5[b1(X2)]!;
    Z3 = X1 ^ S5[b2(Z2)]! ^ S6[b1(Z2)]! ^ S7[b3(Z2)]! ^ S8[b0(Z2)]! ^ S6[b3(X2)]!;
    k[o + 8] = S5[b3(Z0)]! ^ S6[b2(Z0)]! ^ S7[b0(Z3)]! ^ S8[b1(Z3)]! ^ S5[b1(Z2)]!;
    k[o + 9] = S5[b1(Z0)]! ^ S6[b0(Z0)]! ^ S7[b2(Z3)]! ^ S8[b3(Z3)]! ^ S6[b0(Z3)]!;
    k[o + 10] = S5[b3(Z1)]! ^ S6[b2(Z1)]! ^ S7[b0(Z2)]! ^ S8[b1(Z2)]! ^ S7[b2(Z0)]!;
    k[o + 11] = S5[b1(Z1)]! ^ S6[b0(Z1)]! ^ S7[b2(Z2)]! ^ S8[b3(Z2)]! ^ S8[b2(Z1)]!;

    X0 = Z2 ^ S5[b1(Z1)]! ^ S6[b3(Z1)]! ^ S7[b0(Z1)]! ^ S8[b2(Z1)]! ^ S7[b0(Z0)]!;
    X1 = Z0 ^ S5[b0(X0)]! ^ S6[b2(X0)]! ^ S7[b1(X0)]! ^ S8[b3(X0)]! ^ S8[b2(Z0)]!;
    X2 = Z1 ^ S5[b3(X1)]! ^ S6[b2(X1)]! ^ S7[b1(X1)]! ^ S8[b0(X1)]! ^ S5[b1(Z0)]!;
    X3 = Z3 ^ S5[b2(X2)]! ^ S6[b1(X2)]! ^ S7[b3(X2)]! ^ S8[b0(X2)]! ^ S6[b3(Z0)]!;
    k[o + 12] = S5[b0(X2)]! ^ S6[b1(X2)]! ^ S7[b3(X1)]! ^ S8[b2(X1)]! ^ S5[b3(X0)]!;
    k[o + 13] = S5[b2(X2)]! ^ S6[b3(X2)]! ^ S7[b1(X1)]! ^ S8[b0(X1)]! ^ S6[b3(X1)]!;
    k[o + 14] = S5[b0(X3)]! ^ S6[b1(X3)]! ^ S7[b3(X0)]! ^ S8[b2(X0)]! ^ S7[b0(X2)]!;
    k[o + 15] = S5[b2(X3)]! ^ S6[b3(X3)]! ^ S7[b1(X0)]! ^ S8[b0(X0)]! ^ S8[b1(X3)]!;
  }
}

function readBE(buf: Uint8Array, off: number): number {
  return (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
}

function writeBE(buf: Uint8Array, off: number, w: number): void {
  buf[off] = w >>> 24;
  buf[off + 1] = w >>> 16;
  buf[off + 2] = w >>> 8;
  buf[off + 3] = w;
}

// Round functions of RFC 2144 section 2.2. Results may exceed 32 bits before the
// final `| 0`; that truncation is the "modulo 2^32" the RFC's + and - imply.
// `t >>> (32 - r)` is harmless for r = 0 because JS masks shift counts to 5 bits.
function f1(d: number, m: number, r: number): number {
  const t = (m + d) | 0;
  const i = (t << r) | (t >>> (32 - r));
  return (((S1[i >>> 24]! ^ S2[(i >>> 16) & 0xff]!) - S3[(i >>> 8) & 0xff]!) + S4[i & 0xff]!) | 0;
}

function f2(d: number, m: number, r: number): number {
  const t = m ^ d;
  const i = (t << r) | (t >>> (32 - r));
  return (((S1[i >>> 24]! - S2[(i >>> 16) & 0xff]!) + S3[(i >>> 8) & 0xff]!) ^ S4[i & 0xff]!) | 0;
}

function f3(d: number, m: number, r: number): number {
  const t = (m - d) | 0;
  const i = (t << r) | (t >>> (32 - r));
  return (((S1[i >>> 24]! + S2[(i >>> 16) & 0xff]!) ^ S3[(i >>> 8) & 0xff]!) - S4[i & 0xff]!) | 0;
}

export class Cast128 {
  /**
   * Km1..Km16 then Kr1..Kr16. A plain array, not an Int32Array: typed arrays get
   * malloc'd backing stores, which made construction about ten times slower than
   * the key schedule itself (measured with the RFC B.2 test's 2,000,000 rekeys).
   */
  private readonly k: number[] = new Array<number>(32).fill(0);

  constructor(key: Uint8Array) {
    // RFC 2144 allows 40..128-bit keys with a 12-round variant for short ones; DHX2
    // and DHCAST128 only ever use 128-bit keys, so anything else is a caller bug.
    if (key.length !== KEY_BYTES) {
      throw new RangeError(`CAST-128 key must be ${KEY_BYTES} bytes, got ${key.length}`);
    }
    expandKey(key, this.k);
    for (let i = 16; i < 32; i++) this.k[i] &= 31;
  }

  /** Encrypts one 8-byte block; `src` and `dst` may be the same bytes. */
  encryptBlock(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    checkBlock(src, srcOff, dst, dstOff);
    const k = this.k;
    let l = readBE(src, srcOff);
    let h = readBE(src, srcOff + 4);
    // Unrolled so each round's f-type and subkey index are constants for the JIT.
    l ^= f1(h, k[0]!, k[16]!);
    h ^= f2(l, k[1]!, k[17]!);
    l ^= f3(h, k[2]!, k[18]!);
    h ^= f1(l, k[3]!, k[19]!);
    l ^= f2(h, k[4]!, k[20]!);
    h ^= f3(l, k[5]!, k[21]!);
    l ^= f1(h, k[6]!, k[22]!);
    h ^= f2(l, k[7]!, k[23]!);
    l ^= f3(h, k[8]!, k[24]!);
    h ^= f1(l, k[9]!, k[25]!);
    l ^= f2(h, k[10]!, k[26]!);
    h ^= f3(l, k[11]!, k[27]!);
    l ^= f1(h, k[12]!, k[28]!);
    h ^= f2(l, k[13]!, k[29]!);
    l ^= f3(h, k[14]!, k[30]!);
    h ^= f1(l, k[15]!, k[31]!);
    // Alternating which half is updated replaces the Feistel swap; after an even
    // number of rounds the halves come out as (R16, L16), which is the RFC output.
    writeBE(dst, dstOff, h);
    writeBE(dst, dstOff + 4, l);
  }

  /** Decrypts one 8-byte block; `src` and `dst` may be the same bytes. */
  decryptBlock(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    checkBlock(src, srcOff, dst, dstOff);
    const k = this.k;
    let h = readBE(src, srcOff);
    let l = readBE(src, srcOff + 4);
    h ^= f1(l, k[15]!, k[31]!);
    l ^= f3(h, k[14]!, k[30]!);
    h ^= f2(l, k[13]!, k[29]!);
    l ^= f1(h, k[12]!, k[28]!);
    h ^= f3(l, k[11]!, k[27]!);
    l ^= f2(h, k[10]!, k[26]!);
    h ^= f1(l, k[9]!, k[25]!);
    l ^= f3(h, k[8]!, k[24]!);
    h ^= f2(l, k[7]!, k[23]!);
    l ^= f1(h, k[6]!, k[22]!);
    h ^= f3(l, k[5]!, k[21]!);
    l ^= f2(h, k[4]!, k[20]!);
    h ^= f1(l, k[3]!, k[19]!);
    l ^= f3(h, k[2]!, k[18]!);
    h ^= f2(l, k[1]!, k[17]!);
    l ^= f1(h, k[0]!, k[16]!);
    writeBE(dst, dstOff, l);
    writeBE(dst, dstOff + 4, h);
  }
}

// Typed-array writes past the end are silently dropped and reads yield undefined
// (which `|` turns into 0), so an out-of-range offset would corrupt data quietly.
function checkBlock(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
  if (!(srcOff >= 0 && srcOff + BLOCK <= src.length && dstOff >= 0 && dstOff + BLOCK <= dst.length)) {
    throw new RangeError('CAST-128 block offset out of range');
  }
}

function checkCbcArgs(iv: Uint8Array, data: Uint8Array): void {
  if (iv.length !== BLOCK) throw new RangeError(`CAST-128 CBC IV must be ${BLOCK} bytes, got ${iv.length}`);
  // No padding: DHX2/DHCAST128 messages are already whole blocks, and a stray
  // length means a malformed login packet rather than something to pad.
  if (data.length % BLOCK !== 0) {
    throw new RangeError(`CAST-128 CBC data length must be a multiple of ${BLOCK}, got ${data.length}`);
  }
}

/**
 * CBC encryption without padding. Every call starts from `iv`; DHX2 and
 * DHCAST128 use fixed per-direction IVs rather than chaining across messages.
 */
export function cast128CbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  const cipher = new Cast128(key);
  checkCbcArgs(iv, data);
  const out = Buffer.allocUnsafe(data.length);
  let prev: Uint8Array = iv;
  let prevOff = 0;
  for (let off = 0; off < data.length; off += BLOCK) {
    for (let i = 0; i < BLOCK; i++) out[off + i] = data[off + i]! ^ prev[prevOff + i]!;
    cipher.encryptBlock(out, off, out, off);
    prev = out;
    prevOff = off;
  }
  return out;
}

/** CBC decryption without padding; the inverse of {@link cast128CbcEncrypt}. */
export function cast128CbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  const cipher = new Cast128(key);
  checkCbcArgs(iv, data);
  const out = Buffer.allocUnsafe(data.length);
  let prev: Uint8Array = iv;
  let prevOff = 0;
  for (let off = 0; off < data.length; off += BLOCK) {
    cipher.decryptBlock(data, off, out, off);
    for (let i = 0; i < BLOCK; i++) out[off + i] ^= prev[prevOff + i]!;
    prev = data;
    prevOff = off;
  }
  return out;
}
