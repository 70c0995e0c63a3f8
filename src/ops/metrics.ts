/**
 * Prometheus metrics without a client library: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4). Gauges that mirror state held
 * elsewhere (cache fill, queue depth) are read at scrape time through a callback instead of
 * being kept up to date on every change.
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

function key(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
}

export class Counter implements Family {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, private readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const v = this.values.get(k);
    if (v) v.value += by;
    else this.values.set(k, { labels: { ...labels }, value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.value ?? 0;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'counter');
    for (const { labels, value } of this.values.values()) out.push(`${this.name}${labelText(labels)} ${num(value)}`);
  }
}

/** A gauge read when scraped: `collect` returns its samples. */
export class Gauge implements Family {
  constructor(readonly name: string, private readonly help: string, private readonly collect: () => { labels?: Labels; value: number }[]) {}

  render(out: string[]): void {
    header(out, this.name, this.help, 'gauge');
    for (const { labels, value } of this.collect()) out.push(`${this.name}${labelText(labels ?? {})} ${num(value)}`);
  }
}

export class Histogram implements Family {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, private readonly help: string, private readonly buckets: readonly number[]) {}

  observe(labels: Labels, value: number): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    // Cumulative at render time; here each observation counts in the first bucket it fits.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  count(labels: Labels = {}): number {
    return this.series.get(key(labels))?.count ?? 0;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'histogram');
    for (const { labels, counts, sum, count } of this.series.values()) {
      let running = 0;
      this.buckets.forEach((b, i) => {
        running += counts[i]!;
        out.push(`${this.name}_bucket${labelText(labels, ['le', num(b)])} ${running}`);
      });
      out.push(`${this.name}_bucket${labelText(labels, ['le', '+Inf'])} ${count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${num(sum)}`, `${this.name}_count${labelText(labels)} ${count}`);
    }
  }
}

/** Seconds, from 100 µs to 30 s: AFP commands, syncs, S3 and Redis calls all fall inside. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  counter(name: string, help: string): Counter {
    return this.add(name, new Counter(name, help));
  }

  gauge(name: string, help: string, collect: () => { labels?: Labels; value: number }[]): Gauge {
    return this.add(name, new Gauge(name, help, collect));
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS): Histogram {
    return this.add(name, new Histogram(name, help, buckets));
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
