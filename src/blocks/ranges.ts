/**
 * A set of byte ranges within one block: which bytes a client wrote since the block's base
 * object, so that an upload fetches only what it lacks and a lost compare-and-set can re-base
 * on another node's object without losing this node's bytes. Kept as sorted, disjoint,
 * non-adjacent [start, end) pairs; Time Machine writes bands sequentially, so a set rarely
 * holds more than a handful.
 */
export type Span = readonly [start: number, end: number];

export class Ranges {
  private spans: [number, number][] = [];

  static of(...spans: Span[]): Ranges {
    const r = new Ranges();
    for (const [s, e] of spans) r.add(s, e);
    return r;
  }

  get isEmpty(): boolean {
    return this.spans.length === 0;
  }

  /** Total bytes covered. */
  get size(): number {
    let n = 0;
    for (const [s, e] of this.spans) n += e - s;
    return n;
  }

  list(): Span[] {
    return this.spans.map(([s, e]) => [s, e] as const);
  }

  clone(): Ranges {
    const r = new Ranges();
    r.spans = this.spans.map(([s, e]) => [s, e]);
    return r;
  }

  add(start: number, end: number): this {
    if (end <= start) return this;
    const out: [number, number][] = [];
    let s = start;
    let e = end;
    let placed = false;
    for (const span of this.spans) {
      if (span[1] < s) out.push(span);
      else if (span[0] > e) {
        if (!placed) {
          out.push([s, e]);
          placed = true;
        }
        out.push(span);
      } else {
        s = Math.min(s, span[0]);
        e = Math.max(e, span[1]);
      }
    }
    if (!placed) out.push([s, e]);
    this.spans = out;
    return this;
  }

  addAll(other: Ranges): this {
    for (const [s, e] of other.spans) this.add(s, e);
    return this;
  }

  /** Keeps only bytes below `end` (a truncate inside the block). */
  clip(end: number): this {
    this.spans = this.spans.filter(([s]) => s < end).map(([s, e]) => [s, Math.min(e, end)]);
    return this;
  }

  covers(start: number, end: number): boolean {
    if (end <= start) return true;
    return this.spans.some(([s, e]) => s <= start && e >= end);
  }

  /** The parts of [start, end) not in the set, in order. */
  gaps(start: number, end: number): Span[] {
    const out: Span[] = [];
    let at = start;
    for (const [s, e] of this.spans) {
      if (e <= at) continue;
      if (s >= end) break;
      if (s > at) out.push([at, Math.min(s, end)]);
      at = Math.max(at, e);
      if (at >= end) break;
    }
    if (at < end) out.push([at, end]);
    return out;
  }
}
