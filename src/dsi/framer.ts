import { DSI_HEADER_SIZE, readHeader, type DsiHeader } from './header.js';

export interface DsiFrame extends DsiHeader {
  payload: Buffer;
}

export class DsiFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DsiFrameError';
  }
}

/**
 * Cuts a TCP byte stream into DSI frames. Frames split across reads and several frames in
 * one read both work. The header is checked before its payload is awaited, so a frame that
 * announces more than `maxPayload` allows is refused at once rather than buffered: a peer
 * cannot make a connection hold more than one allowed frame plus one socket read.
 */
export class DsiFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: DsiHeader | null = null;

  /** Set once a bad header is seen; the stream cannot be resynchronised after that. */
  error: DsiFrameError | null = null;

  constructor(private readonly maxPayload: (h: DsiHeader) => number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Appends bytes and returns the frames now complete. A bad header sets `error` instead of
   * throwing, so the valid frames that preceded it in the same read are still returned.
   */
  push(chunk: Buffer): DsiFrame[] {
    if (this.error) return [];
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: DsiFrame[] = [];
    for (;;) {
      if (this.header === null) {
        if (this.buffered < DSI_HEADER_SIZE) break;
        const h = readHeader(this.take(DSI_HEADER_SIZE));
        const max = this.maxPayload(h);
        if (h.flags > 1 || h.length > max) {
          this.error = new DsiFrameError(
            h.flags > 1 ? `bad DSI flags 0x${h.flags.toString(16)}` : `DSI frame of ${h.length} bytes exceeds ${max} for command ${h.command}`,
          );
          this.chunks = [];
          this.buffered = 0;
          break;
        }
        this.header = h;
      }
      if (this.buffered < this.header.length) break;
      const payload = this.header.length === 0 ? EMPTY : this.take(this.header.length);
      frames.push({ ...this.header, payload });
      this.header = null;
    }
    return frames;
  }

  /** Consumes n buffered bytes: a zero-copy view when they sit in one chunk. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    this.buffered -= n;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}

const EMPTY = Buffer.alloc(0);
