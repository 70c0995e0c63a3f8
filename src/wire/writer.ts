/**
 * Growable big-endian buffer for building replies. Offsets that AFP expresses relative to
 * the start of a parameter block are patched in afterwards with `patchU16`.
 */
export class Writer {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initial));
  }

  get length(): number {
    return this.len;
  }

  /** Reserves n bytes and returns their offset. Callers must take the offset before touching
   * `this.buf`, because growing replaces the buffer. */
  private room(n: number): number {
    const need = this.len + n;
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < need) size *= 2;
      const next = Buffer.allocUnsafe(size);
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    const at = this.len;
    this.len = need;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1);
    this.buf[at] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    const at = this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, at);
    return this;
  }

  u32(v: number): this {
    const at = this.room(4);
    this.buf.writeUInt32BE(v >>> 0, at);
    return this;
  }

  i32(v: number): this {
    const at = this.room(4);
    this.buf.writeInt32BE(v | 0, at);
    return this;
  }

  i64(v: bigint): this {
    const at = this.room(8);
    this.buf.writeBigInt64BE(v, at);
    return this;
  }

  u64(v: bigint): this {
    const at = this.room(8);
    this.buf.writeBigUInt64BE(v, at);
    return this;
  }

  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }

  zeros(n: number): this {
    const at = this.room(n);
    this.buf.fill(0, at, at + n);
    return this;
  }

  /** Pascal string; callers validate length ≤ 255 where the protocol is stricter. */
  pstring(b: Uint8Array): this {
    if (b.length > 255) throw new RangeError(`pstring too long: ${b.length}`);
    return this.u8(b.length).bytes(b);
  }

  /** Adds a zero byte when the length since `base` is odd (AFP's conditional pad). */
  alignEven(base = 0): this {
    if ((this.len - base) & 1) this.u8(0);
    return this;
  }

  patchU16(at: number, v: number): this {
    this.buf.writeUInt16BE(v & 0xffff, at);
    return this;
  }

  patchU32(at: number, v: number): this {
    this.buf.writeUInt32BE(v >>> 0, at);
    return this;
  }

  /** A view over the written bytes; the Writer must not be reused afterwards. */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
