/**
 * Prometheus metrics without a client library: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4). Gauges that mirror state held
 * elsewhere (cache fill, queue depth) are read at scrape time through a callback instead of
 * being kept up to date on every change; so are counters kept as plain numbers by the layer
 * that counts (`counterFrom`).
 */
export type Labels = Readonly<Record<string, string>>;

interface Family {
  render(out: string[]): void;
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
}

type Level<S> = Map<string | undefined, Level<S> | S>;

/**
 * A family's series, found by their label values. Observations run on hot paths (every AFP
 * command, every Redis call), so a lookup walks one Map per label name, in the declared
 * order, and builds no key: no sorting, no string, no allocation once the series exists.
 * The label names are declared with the family or, when not, taken from its first
 * observation. A label left out of an observation is left out of its series' text.
 */
class SeriesIndex<S extends { labels: Labels }> {
  private readonly root: Level<S> = new Map();
  private single: S | undefined;
  private names: readonly string[] | undefined;
  /** Every series, in the order they first appeared (the order they are rendered in). */
  readonly all: S[] = [];

  constructor(private readonly metric: string, names: readonly string[] | undefined, private readonly make: (labels: Labels) => S) {
    this.names = names;
  }

  /** The series for `labels`, made on first use. */
  get(labels: Labels): S {
    const names = (this.names ??= Object.keys(labels));
    const n = names.length;
    if (n === 0) return (this.single ??= this.add(labels, names));
    let level = this.root;
    for (let i = 0; i < n - 1; i++) {
      const v = labels[names[i]!];
      let next = level.get(v) as Level<S> | undefined;
      if (!next) level.set(v, (next = new Map()));
      level = next;
    }
    const last = labels[names[n - 1]!];
    let s = level.get(last) as S | undefined;
    if (!s) level.set(last, (s = this.add(labels, names)));
    return s;
  }

  /** The series for `labels`, if it was ever observed. */
  find(labels: Labels): S | undefined {
    const names = this.names;
    if (!names) return undefined;
    if (names.length === 0) return this.single;
    let at: Level<S> | S | undefined = this.root;
    for (const name of names) {
      if (!(at instanceof Map)) return undefined;
      at = at.get(labels[name]);
    }
    return at instanceof Map ? undefined : at;
  }

  /** Only here, once per series: checks the labels and copies them in the declared order. */
  private add(labels: Labels, names: readonly string[]): S {
    const copy: Record<string, string> = {};
    for (const k of Object.keys(labels)) {
      if (!names.includes(k)) throw new RangeError(`metric ${this.metric} has no label ${k} (its labels: ${names.join(', ') || 'none'})`);
    }
    for (const k of names) if (labels[k] !== undefined) copy[k] = labels[k];
    const s = this.make(copy);
    this.all.push(s);
    return s;
  }
}

export class Counter implements Family {
  private readonly series: SeriesIndex<{ labels: Labels; text: string; value: number }>;
  constructor(readonly name: string, private readonly help: string, labelNames?: readonly string[]) {
    this.series = new SeriesIndex(name, labelNames, (labels) => ({ labels, text: labelText(labels), value: 0 }));
  }

  inc(labels: Labels = {}, by = 1): void {
    this.series.get(labels).value += by;
  }

  get(labels: Labels = {}): number {
    return this.series.find(labels)?.value ?? 0;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'counter');
    for (const { text, value } of this.series.all) out.push(`${this.name}${text} ${num(value)}`);
  }
}

export type Sample = { labels?: Labels; value: number };

/** A gauge, or a counter kept elsewhere, read when scraped: `collect` returns its samples. */
export class Collected implements Family {
  constructor(readonly name: string, private readonly help: string, private readonly type: 'gauge' | 'counter', private readonly collect: () => Sample[]) {}

  render(out: string[]): void {
    header(out, this.name, this.help, this.type);
    for (const { labels, value } of this.collect()) out.push(`${this.name}${labelText(labels ?? {})} ${num(value)}`);
  }
}

interface HistogramSeries {
  labels: Labels;
  text: string;
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram implements Family {
  private readonly series: SeriesIndex<HistogramSeries>;
  constructor(readonly name: string, private readonly help: string, private readonly buckets: readonly number[], labelNames?: readonly string[]) {
    this.series = new SeriesIndex(name, labelNames, (labels) => ({ labels, text: labelText(labels), counts: buckets.map(() => 0), sum: 0, count: 0 }));
  }

  observe(labels: Labels, value: number): void {
    const s = this.series.get(labels);
    // Cumulative at render time; here each observation counts in the first bucket it fits.
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  count(labels: Labels = {}): number {
    return this.series.find(labels)?.count ?? 0;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'histogram');
    for (const { labels, text, counts, sum, count } of this.series.all) {
      let running = 0;
      this.buckets.forEach((b, i) => {
        running += counts[i]!;
        out.push(`${this.name}_bucket${labelText(labels, ['le', num(b)])} ${running}`);
      });
      out.push(`${this.name}_bucket${labelText(labels, ['le', '+Inf'])} ${count}`);
      out.push(`${this.name}_sum${text} ${num(sum)}`, `${this.name}_count${text} ${count}`);
    }
  }
}

/** Seconds, from 100 µs to 30 s: AFP commands, syncs, S3 and Redis calls all fall inside. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  /** `labelNames`: the labels its samples carry (taken from the first `inc` when left out). */
  counter(name: string, help: string, labelNames?: readonly string[]): Counter {
    return this.add(name, new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, collect: () => Sample[]): Collected {
    return this.add(name, new Collected(name, help, 'gauge', collect));
  }

  /** A counter the counting layer keeps as plain numbers, read when scraped. */
  counterFrom(name: string, help: string, collect: () => Sample[]): Collected {
    return this.add(name, new Collected(name, help, 'counter', collect));
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS, labelNames?: readonly string[]): Histogram {
    return this.add(name, new Histogram(name, help, buckets, labelNames));
  }

  /** The exposition text (Content-Type: text/plain; version=0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) f.render(out);
    return out.join('\n') + '\n';
  }

  private add<T extends Family>(name: string, f: T): T {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new RangeError(`bad metric name ${name}`);
    if (this.families.has(name)) throw new RangeError(`metric ${name} is defined twice`);
    this.families.set(name, f);
    return f;
  }
}
