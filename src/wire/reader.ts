/**
 * Big-endian cursor over a request buffer. Every read is bounds-checked and throws
 * `WireUnderflow`, so a truncated or lying request becomes one typed error that the
 * protocol layer maps to a parameter error instead of a crash or an out-of-range read.
 */
export class WireUnderflow extends Error {
  constructor(public readonly wanted: number, public readonly available: number) {
    super(`request truncated: wanted ${wanted} bytes, ${available} left`);
    this.name = 'WireUnderflow';
  }
}

export class Reader {
  private pos: number;

  constructor(private readonly buf: Buffer, start = 0, private readonly end = buf.length) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): number {
    if (n < 0 || this.pos + n > this.end) throw new WireUnderflow(n, this.end - this.pos);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.buf[this.need(1)]!;
  }

  u16(): number {
    return this.buf.readUInt16BE(this.need(2));
  }

  u32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }

  i32(): number {
    return this.buf.readInt32BE(this.need(4));
  }

  i64(): bigint {
    return this.buf.readBigInt64BE(this.need(8));
  }

  u64(): bigint {
    return this.buf.readBigUInt64BE(this.need(8));
  }

  /** A view, not a copy: callers that keep the bytes past the request must copy. */
  bytes(n: number): Buffer {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  skip(n: number): void {
    this.need(n);
  }

  /** Pascal string: one length byte, then that many bytes. */
  pstring(): Buffer {
    return this.bytes(this.u8());
  }

  /** Skips one byte when the cursor is odd relative to `base` (AFP's conditional pad). */
  alignEven(base = 0): void {
    if ((this.pos - base) & 1) this.need(1);
  }
}
