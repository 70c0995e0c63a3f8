/** Big-endian bytes ↔ BigInt, and modular exponentiation for the DH-based UAMs. */

export function bytesToBigInt(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b).toString('hex'));
}

/** Left-pads with zeros to exactly `len` bytes, as DHX2 requires of every DH value. */
export function bigIntToBytes(v: bigint, len: number): Buffer {
  let hex = v.toString(16);
  if (hex.length & 1) hex = '0' + hex;
  const raw = Buffer.from(hex, 'hex');
  if (raw.length > len) throw new RangeError(`value needs ${raw.length} bytes, field has ${len}`);
  return Buffer.concat([Buffer.alloc(len - raw.length), raw]);
}

export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}
