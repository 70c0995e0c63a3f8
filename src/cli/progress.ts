/**
 * Progress for `put` and `get` (bytes) and `migrate` (records): a redrawn bar on a terminal,
 * and one summary line when done (the only output when stderr is a file or a pipe, so logs
 * stay readable). Sizes and rates are decimal (MB = 10^6 bytes), as network tools usually
 * report them.
 */

/** Redraws at most this often: a bar repainted per 1 MiB reply would cost more than it tells. */
const REDRAW_MS = 100;
const BAR_WIDTH = 24;

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(n)} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A count of things: `12,345 records`, `1 record`. */
export function formatCount(n: number, one = 'record', many = `${one}s`): string {
  const whole = Math.round(n);
  return `${whole.toLocaleString('en-US')} ${whole === 1 ? one : many}`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly started: number;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: ProgressStream = process.stderr,
    private readonly now: () => number = Date.now,
    /** How an amount reads: bytes unless told otherwise (formatCount for records). */
    private readonly format: (n: number) => string = formatBytes,
  ) {
    this.started = now();
  }

  add(bytes: number): void {
    this.done += bytes;
    if (!this.out.isTTY) return;
    const t = this.now();
    if (t - this.lastDraw < REDRAW_MS && this.done < this.total) return;
    this.lastDraw = t;
    this.out.write('\r' + this.line(t) + '\x1b[K');
  }

  /** The bar: `[####------]  12.3 MB / 50.0 MB  24%  35.2 MB/s  ETA 0:02`. */
  line(t = this.now()): string {
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const filled = Math.round(fraction * BAR_WIDTH);
    const rate = this.rate(t);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const bar = '#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled);
    const f = this.format;
    return `${this.label} [${bar}] ${f(this.done)} / ${f(this.total)}  ${Math.floor(fraction * 100)}%  ${f(rate)}/s  ETA ${formatDuration(eta)}`;
  }

  /** Clears the bar and writes the summary: amount, time, average rate. */
  finish(): string {
    const t = this.now();
    const seconds = Math.max(0.001, (t - this.started) / 1000);
    const summary = `${this.label}: ${this.format(this.done)} in ${seconds.toFixed(1)} s (${this.format(this.done / seconds)}/s)`;
    this.out.write((this.out.isTTY ? '\r\x1b[K' : '') + summary + '\n');
    return summary;
  }

  /** Ends a bar that will not complete, so the error message starts on a fresh line. */
  abort(): void {
    if (this.out.isTTY) this.out.write('\n');
  }

  private rate(t: number): number {
    const seconds = (t - this.started) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }
}

/**
 * Progress of a run whose total is not known up front (verify's scans): `label: phase N`
 * redrawn on a terminal, nothing when stderr is a file or a pipe.
 */
export class Ticker {
  private lastDraw = 0;

  constructor(
    private readonly label: string,
    private readonly out: ProgressStream = process.stderr,
    private readonly now: () => number = Date.now,
  ) {}

  update(phase: string, count: number): void {
    if (!this.out.isTTY) return;
    const t = this.now();
    if (t - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = t;
    this.out.write(`\r${this.label}: ${phase} ${count}\x1b[K`);
  }

  /** Clears the line, so what follows starts on a clean one. */
  clear(): void {
    if (this.out.isTTY && this.lastDraw > 0) this.out.write('\r\x1b[K');
  }
}
