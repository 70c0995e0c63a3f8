/**
 * A Time Machine backup as a Mac runs it over AFP (AFP-FACTS §9.3–9.4, §7), end to end over
 * real TCP with the project's client, on either metadata store with S3 (s3rver) underneath:
 *
 *   a. connect, DHX2 login, FPGetSessionToken type 3 (client ID + boot time T1), FPGetSrvrParms,
 *      FPOpenVol, FPGetVolParms (kSupportsTMLockSteal), look for `<host>.sparsebundle` (absent);
 *   b. create the bundle: Info.plist, Info.bckup, empty token, bands/, the MachineID plist,
 *      com.apple.* xattrs on the bundle and Info.plist, FPSyncDir;
 *   c. attach: `token` open with deny-write (and a byte lock) for the whole session, Info.plist
 *      read back;
 *   d. bands: FPWriteExt of 4 KiB..1 MiB at random offsets inside the bands, pipelined,
 *      FPFlushFork / FPSyncFork at intervals, FPSetForkParms growing and shrinking bands,
 *      FPDelete of bands (compaction), appends (offset from the end) to a log in the bundle;
 *   e. the connection drops with requests in flight (writes, an FPCreateFile of a new band, an
 *      append): primary reconnect with the token, the lost replies come from the replay cache,
 *      FPGetSessionToken type 4, carry on;
 *   f. the Mac restarts mid-backup: the old connection just dies; a new session (same client
 *      ID, boot time T2) is refused the token's deny modes until its FPGetSessionToken type 3
 *      steals the old session's locks, then goes on writing;
 *   g. detach: close forks, FPCloseVol, FPLogout;
 *   h. (verifyBundle) every file's bytes, the band list and the xattrs against an exact model,
 *      through a fresh session; the suite does it again through a gateway with an empty cache.
 *
 * The sync contract is checked mid-backup too (TmWorkloadOptions.syncCheck): right after a
 * round of FPSyncFork, with those bands still open on the writing node and nothing uploading by
 * itself, the suite reads them through a second gateway with an empty cache.
 *
 * With TmWorkloadOptions.failover, the drop in (e) is the death of the node: the workload
 * makes every acknowledged byte durable first, the node runs the whole in-flight batch (which
 * ends with syncs), the connection is cut, `failover` kills the node and names the survivor,
 * and the reconnect and every later connection go there (test/cluster/tm-failover.test.ts).
 *
 * The band traffic is a plan made up front from a seed (makePlan), so bench/time-machine.ts
 * can run the very same writes, truncations, deletes and syncs against plain local files.
 * Sizes: AFPGW_TEST_TM_MIB (band bytes written, default 64), AFPGW_TEST_TM_SEED.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AfpError } from '../../src/afp/errors.js';
import { kFPDenyConflict, kFPObjectNotFound } from '../../src/afp/result-codes.js';
import { hashPassword } from '../../src/auth/password.js';
import { AfpClient, type LoginOptions } from '../../src/client/afp-client.js';
import { ForkMode, type AfpFork } from '../../src/client/afp-fork.js';
import { ROOT, type AfpVolume, type Entry } from '../../src/client/afp-volume.js';
import type { Backend } from '../helpers/backends.js';
import { resultCode } from '../helpers/afp.js';
import { TEST_SCRYPT } from '../helpers/gateway.js';
import { s3Config } from '../helpers/s3-server.js';
import { dataWorld, firstDifference, MiB } from './helpers.js';

export { MiB };
export const KiB = 1024;

// ---- the Mac --------------------------------------------------------------------------------

export const TM_USER = { name: 'tm', password: 'tm-secret' };
export const TM_LOGIN: LoginOptions = { uam: 'DHX2', user: TM_USER.name, password: TM_USER.password };
export const TM_VOLUME = 'TimeMachine';
/** What FPGetSessionToken carries as the client ID: bytes identifying this Mac. */
export const MAC_ID = Buffer.from('C02ZK1TMLVDQ/ada-macbook-pro/00:1b:63:84:45:e6');
export const HOST_NAME = 'Ada’s MacBook Pro';
const SUPPORTS_TM_LOCK_STEAL = 0x2000;
const TOKEN = 'token';
const INFO = 'Info.plist';
const BCKUP = 'Info.bckup';
const MACHINE_ID = 'com.apple.TimeMachine.MachineID.plist';
const BANDS = 'bands';
const LOG = 'backup.log';
/** hdiutil's opens: read/write, others may read but not write (the attach lock). */
const TOKEN_MODE = ForkMode.Read | ForkMode.Write | ForkMode.DenyWrite;
const BAND_MODE = ForkMode.Read | ForkMode.Write | ForkMode.DenyWrite;
const RW = ForkMode.Read | ForkMode.Write;
/** Band writes come out of this many bytes of random data (any offset). */
export const POOL_BYTES = 9 * MiB;

export function bandName(band: number): string {
  return band.toString(16);
}

// ---- the plan -------------------------------------------------------------------------------

export type TmOp =
  /** FPCreateFile bands/<hex> (soft: it must not exist). */
  | { kind: 'create'; band: number }
  /** FPOpenFork of the band, read/write, deny write. */
  | { kind: 'open'; band: number }
  /** FPWriteExt of pool[src, src+length) at offset. */
  | { kind: 'write'; band: number; offset: number; length: number; src: number }
  /** FPWriteExt from the end of the log (an append). */
  | { kind: 'append'; length: number; src: number }
  | { kind: 'flush'; band: number }
  | { kind: 'sync'; band: number }
  | { kind: 'syncLog' }
  /** FPSetForkParms of the 64-bit data fork length. */
  | { kind: 'truncate'; band: number; length: number }
  | { kind: 'close'; band: number }
  | { kind: 'delete'; band: number }
  /** FPSyncDir of bands/ and of the bundle; `bands` are closed bands with unsynced writes (the local reference fsyncs them). */
  | { kind: 'syncDirs'; bands: number[] }
  /** The connection drops with `batch` in flight; primary reconnect. */
  | { kind: 'drop'; batch: TmOp[] }
  /** The Mac restarts: its session dies with its forks; a new session steals the locks. */
  | { kind: 'restart' };

export interface TmPlanOptions {
  bandSize: number;
  /** Band indices the backup writes to (the image's size in bands). */
  bands: number;
  /** Band bytes to write in all. */
  totalBytes: number;
  seed: number;
  /** Bands a Mac keeps open at once; the least recently used is flushed and closed. */
  maxOpen?: number;
  /** FPSyncFork of every dirty open band (and the log) after this many bytes. */
  syncEveryBytes?: number;
  /** FPFlushFork of one dirty band after this many bytes. */
  flushEveryBytes?: number;
  minWrite?: number;
  maxWrite?: number;
}

export interface TmPlan {
  options: Required<TmPlanOptions>;
  ops: TmOp[];
  /** Band bytes the plan writes (appends to the log not counted). */
  bandBytes: number;
  counts: Record<TmOp['kind'], number>;
}

/** mulberry32: small, fast, good enough to make a workload repeatable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The band traffic of one backup, repeatable from the seed. The drop comes at 45 % of the
 * bytes, the restart at 75 %; the plan ends with every band synced and closed.
 */
export function makePlan(opts: TmPlanOptions): TmPlan {
  const o: Required<TmPlanOptions> = {
    maxOpen: 12,
    syncEveryBytes: 4 * opts.bandSize,
    flushEveryBytes: Math.max(opts.bandSize, 1.5 * MiB),
    minWrite: 4 * KiB,
    maxWrite: Math.min(MiB, opts.bandSize),
    ...opts,
  };
  assert.ok(o.maxWrite <= MiB && o.maxWrite <= o.bandSize, 'writes are at most 1 MiB and fit in a band');
  const r = prng(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const ops: TmOp[] = [];
  const exists = new Set<number>();
  const lengths = new Map<number, number>();
  const open = new Map<number, true>(); // insertion order = least recently used first
  const dirty = new Set<number>();
  let logDirty = false;
  let limit = o.bands;
  let written = 0;
  let sinceSync = 0;
  let sinceFlush = 0;
  let last = 0;
  let dropped = false;
  let restarted = false;

  const ensureOpen = (b: number): void => {
    if (!exists.has(b)) {
      ops.push({ kind: 'create', band: b });
      exists.add(b);
      lengths.set(b, 0);
    }
    if (open.has(b)) {
      open.delete(b);
      open.set(b, true);
      return;
    }
    if (open.size >= o.maxOpen) {
      const lru = open.keys().next().value as number;
      ops.push({ kind: 'flush', band: lru }, { kind: 'close', band: lru });
      open.delete(lru);
    }
    ops.push({ kind: 'open', band: b });
    open.set(b, true);
  };
  const size = () => Math.round(Math.exp(Math.log(o.minWrite) + r() * (Math.log(o.maxWrite) - Math.log(o.minWrite))));
  const writeOp = (b: number): TmOp => {
    const n = size();
    // Half the writes on 4 KiB boundaries, as a file system in the image writes; half anywhere.
    const offset = r() < 0.5 ? int(0, Math.floor((o.bandSize - n) / 4096)) * 4096 : int(0, o.bandSize - n);
    lengths.set(b, Math.max(lengths.get(b) ?? 0, offset + n));
    dirty.add(b);
    written += n;
    sinceSync += n;
    sinceFlush += n;
    last = b;
    return { kind: 'write', band: b, offset, length: n, src: int(0, POOL_BYTES - n) };
  };
  const appendOp = (): TmOp => {
    const n = int(40, 600);
    logDirty = true;
    return { kind: 'append', length: n, src: int(0, POOL_BYTES - n) };
  };
  const pickBand = (): number => {
    const x = r();
    // Mostly where the last write went or the band after it (files grow), else anywhere.
    if (x < 0.45) return last;
    if (x < 0.6) return Math.min(last + 1, limit - 1);
    return int(0, limit - 1);
  };
  const existing = (): number[] => [...exists].sort((a, b) => a - b);

  while (written < o.totalBytes) {
    if (!dropped && written >= 0.45 * o.totalBytes) {
      dropped = true;
      // Two bands open to write to while the connection goes.
      ensureOpen(last);
      ensureOpen(last === 0 ? 1 : last - 1);
      const openNow = [...open.keys()];
      const batch: TmOp[] = [];
      for (let i = 0; i < 3; i++) batch.push(writeOp(openNow[int(0, openNow.length - 1)]!));
      const fresh = limit++; // the image grows by a band
      batch.push({ kind: 'create', band: fresh });
      exists.add(fresh);
      lengths.set(fresh, 0);
      batch.push(appendOp());
      for (let i = 0; i < 2; i++) batch.push(writeOp(openNow[int(0, openNow.length - 1)]!));
      ops.push({ kind: 'drop', batch });
      continue;
    }
    if (dropped && !restarted && written >= 0.75 * o.totalBytes) {
      restarted = true;
      ops.push({ kind: 'restart' });
      open.clear(); // the dead session's forks are gone; unsynced bands stay dirty
      continue;
    }
    const x = r();
    if (x < 0.025 && exists.size > 3) {
      const all = existing();
      const b = all[int(0, all.length - 1)]!;
      if (open.delete(b)) ops.push({ kind: 'close', band: b });
      ops.push({ kind: 'delete', band: b });
      exists.delete(b);
      lengths.delete(b);
      dirty.delete(b);
    } else if (x < 0.07 && exists.size > 0) {
      const all = existing();
      const b = all[int(0, all.length - 1)]!;
      ensureOpen(b);
      const cur = lengths.get(b)!;
      const length = r() < 0.5 ? int(cur, o.bandSize) : int(0, cur);
      ops.push({ kind: 'truncate', band: b, length });
      lengths.set(b, length);
      dirty.add(b);
    } else if (x < 0.1) {
      ops.push(appendOp());
    } else {
      const b = pickBand();
      ensureOpen(b);
      ops.push(writeOp(b));
    }
    if (sinceFlush >= o.flushEveryBytes) {
      sinceFlush = 0;
      const candidates = [...open.keys()].filter((b) => dirty.has(b));
      if (candidates.length > 0) ops.push({ kind: 'flush', band: candidates[int(0, candidates.length - 1)]! });
    }
    if (sinceSync >= o.syncEveryBytes) {
      sinceSync = 0;
      for (const b of open.keys()) {
        if (!dirty.has(b)) continue;
        ops.push({ kind: 'sync', band: b });
        dirty.delete(b);
      }
      if (logDirty) ops.push({ kind: 'syncLog' });
      logDirty = false;
    }
  }
  for (const b of open.keys()) {
    if (dirty.has(b)) ops.push({ kind: 'sync', band: b });
    dirty.delete(b);
    ops.push({ kind: 'close', band: b });
  }
  open.clear();
  if (logDirty) ops.push({ kind: 'syncLog' });
  ops.push({ kind: 'syncDirs', bands: [...dirty].sort((a, b) => a - b) });

  const counts = {} as Record<TmOp['kind'], number>;
  const count = (op: TmOp) => {
    counts[op.kind] = (counts[op.kind] ?? 0) + 1;
    if (op.kind === 'drop') op.batch.forEach(count);
  };
  ops.forEach(count);
  return { options: o, ops, bandBytes: written, counts };
}

/** A round of FPSyncFork in a plan: a run of consecutive sync/syncLog steps with at least one band. */
export interface SyncRound {
  /** Index among the plan's rounds. */
  index: number;
  /** Index in plan.ops of the round's last step. */
  at: number;
  /** The bands synced (open at that point, and left open by the round). */
  bands: number[];
  /** Whether the round also syncs the log. */
  log: boolean;
  /** Where in the backup: before the drop, between the reconnect and the restart, after the restart. */
  phase: 'before-drop' | 'after-reconnect' | 'after-restart';
}

export function syncRounds(plan: TmPlan): SyncRound[] {
  const rounds: SyncRound[] = [];
  let phase: SyncRound['phase'] = 'before-drop';
  let run: { bands: number[]; log: boolean } | null = null;
  const end = (at: number) => {
    if (run && run.bands.length > 0) rounds.push({ index: rounds.length, at, bands: run.bands, log: run.log, phase });
    run = null;
  };
  plan.ops.forEach((op, i) => {
    if (op.kind === 'sync' || op.kind === 'syncLog') {
      run ??= { bands: [], log: false };
      if (op.kind === 'sync') run.bands.push(op.band);
      else run.log = true;
      return;
    }
    end(i - 1);
    if (op.kind === 'drop') phase = 'after-reconnect';
    else if (op.kind === 'restart') phase = 'after-restart';
  });
  end(plan.ops.length - 1);
  return rounds;
}

// ---- the model ------------------------------------------------------------------------------

/** A file's exact bytes: writes past the end zero-fill, truncation forgets the tail. */
export class FileBytes {
  private buf = Buffer.alloc(0);
  length = 0;

  private reserve(n: number): void {
    if (n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(n, this.buf.length * 2, 4096));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  write(at: number, data: Buffer): void {
    this.reserve(at + data.length);
    data.copy(this.buf, at);
    this.length = Math.max(this.length, at + data.length);
  }

  truncate(n: number): void {
    if (n < this.length) this.buf.fill(0, n, this.length);
    else this.reserve(n);
    this.length = n;
  }

  get bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** What the bundle must hold: files by path inside it ('bands/1f'), xattrs by path ('' = the bundle). */
export interface BundleModel {
  name: string;
  files: Map<string, FileBytes>;
  dirs: Set<string>;
  xattrs: Map<string, Map<string, Buffer>>;
}

export interface TmStats {
  bandBytes: number;
  /** Time spent on the plan's band traffic, without the reconnect and the restart. */
  bandSeconds: number;
  /** Time of the primary reconnect: drop, new connection, login, FPDisconnectOldSession, replays, type 4. */
  reconnectSeconds: number;
  /** Time of the restart: new connection, login, denied open, type 3 steal, reopen. */
  restartSeconds: number;
  totalSeconds: number;
  /** Requests the dropped connection left unanswered, sent again after the reconnect. */
  replayed: number;
  /** Of those, how many the server had run before the drop (proven by another session). */
  ranBeforeDrop: number;
  /** Time spent in TmWorkloadOptions.syncCheck (not in bandSeconds). */
  syncCheckSeconds: number;
  counts: Record<string, number>;
  /** The band-traffic request that waited longest for its reply (a stall shows here), and when it was answered (performance.now()). */
  slowest: { what: string; seconds: number; answeredAt: number };
  /**
   * With TmWorkloadOptions.failover (performance.now() times): when `failover` named the new
   * endpoint, when the reconnect there was accepted (FPDisconnectOldSession answered) and when
   * the first request left unanswered by the dead node was answered.
   */
  failover?: { endpointAt: number; reconnectedAt: number; firstReplyAt: number };
}

export interface TmWorkloadOptions {
  host: string;
  port: number;
  plan: TmPlan;
  /** POOL_BYTES of data the plan's writes are cut from. */
  pool: Buffer;
  login?: LoginOptions;
  volume?: string;
  hostName?: string;
  clientId?: Buffer;
  /** Requests kept in flight during the band traffic. */
  depth?: number;
  progress?: (msg: string) => void;
  /**
   * After the sync round `round` (see syncRounds) is answered, with its bands still open and
   * nothing else in flight, `check` gets the exact bytes each synced file (bundle path) must
   * hold now; the backup goes on once it resolves.
   */
  syncCheck?: { round: number; check: (o: { bundle: string; files: Map<string, Buffer> }) => Promise<void> };
  /**
   * The drop is the death of the node: called once the connection is cut and before the
   * reconnect (kill the node here), it returns where the Mac reaches the pair now; the
   * reconnect and every later connection (the restart's) go there.
   *
   * A dead node may lose what it acknowledged but had not synced (the durability contract),
   * and which of it survives is up to its uploads, so to keep the model exact the Mac syncs
   * every dirty fork before the drop, and the batch in flight ends with FPSyncFork of the
   * bands it wrote and of the log, then an FPSetExtAttr on the bundle; the drop waits until
   * the node has run the whole batch (requests of a session run in order, so the xattr shows
   * it) before cutting the connection. Every lost reply is then the replay cache's to answer.
   */
  failover?: () => Promise<{ host: string; port: number }>;
  /** Hears of every band-traffic reply: what, and when it was sent and answered (performance.now()). */
  onReply?: (what: string, sentAt: number, answeredAt: number) => void;
}

export function newPool(): Buffer {
  return randomBytes(POOL_BYTES);
}

// ---- helpers --------------------------------------------------------------------------------

function plist(entries: [string, string | number][]): Buffer {
  const body = entries.map(([k, v]) => `\t<key>${k}</key>\n\t${typeof v === 'number' ? `<integer>${v}</integer>` : `<string>${v}</string>`}`).join('\n');
  return Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
      `<plist version="1.0">\n<dict>\n${body}\n</dict>\n</plist>\n`,
    'utf8',
  );
}

export function infoPlist(bandSize: number, size: number): Buffer {
  return plist([
    ['CFBundleInfoDictionaryVersion', '6.0'],
    ['band-size', bandSize],
    ['bundle-backingstore-version', 1],
    ['diskimage-bundle-type', 'com.apple.diskimage.sparsebundle'],
    ['size', size],
  ]);
}


async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (a hang)`)), ms);
    }),
  ]);
}

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Requests in flight, at most `depth`; the first failure is rethrown by the next add or drain. */
class Pipeline {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | null = null;

  /** `answered` hears of every reply, with the milliseconds from send to answer. */
  constructor(
    private readonly depth: number,
    private readonly answered: (what: string, ms: number) => void = () => undefined,
  ) {}

  async add(what: string, p: Promise<unknown>): Promise<void> {
    const sent = performance.now();
    const q = p.then(
      () => this.answered(what, performance.now() - sent),
      (e: unknown) => {
        this.failure ??= new Error(`${what}: ${describeError(e)}`, { cause: e });
      },
    );
    this.inFlight.add(q);
    void q.finally(() => this.inFlight.delete(q));
    while (this.inFlight.size >= this.depth) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  async drain(): Promise<void> {
    await withTimeout(Promise.all(this.inFlight), 60_000, 'requests in flight');
    if (this.failure) throw this.failure;
  }
}

async function writeWholeFile(v: AfpVolume, dir: number, name: string, data: Buffer): Promise<void> {
  await v.createFile(dir, name);
  const f = await v.openFork(dir, name, { mode: RW });
  if (data.length > 0) await f.write(0, data);
  await f.close();
}

// ---- the workload ---------------------------------------------------------------------------

/**
 * Runs a whole backup (a–g) against a gateway; throws (assert) on any deviation. Returns the
 * model of what the bundle must now hold, for verifyBundle.
 */
export async function timeMachineWorkload(o: TmWorkloadOptions): Promise<{ model: BundleModel; stats: TmStats }> {
  const { plan, pool } = o;
  // Where the Mac reaches the server; after a failover, the surviving node.
  let { host, port } = o;
  const login = o.login ?? TM_LOGIN;
  const volume = o.volume ?? TM_VOLUME;
  const clientId = o.clientId ?? MAC_ID;
  const depth = o.depth ?? 4;
  const progress = o.progress ?? (() => undefined);
  const { bandSize } = plan.options;
  const bundle = `${o.hostName ?? HOST_NAME}.sparsebundle`;
  const started = performance.now();
  // The Mac's boot time (its AFP client's load time), and the one after the restart.
  const T1 = Math.floor(Date.now() / 1000) - 7200;
  const T2 = T1 + 7000;

  const model: BundleModel = { name: bundle, files: new Map(), dirs: new Set([BANDS]), xattrs: new Map() };
  const file = (path: string): FileBytes => {
    let f = model.files.get(path);
    if (!f) model.files.set(path, (f = new FileBytes()));
    return f;
  };
  /** FPSetExtAttr on `path` in the bundle ('' = the bundle itself). */
  const setXattr = async (v: AfpVolume, bundleId: number, path: string, name: string, value: Buffer): Promise<void> => {
    if (path === '') await v.setXattr(ROOT, [bundle], name, value);
    else await v.setXattr(bundleId, path, name, value);
    let m = model.xattrs.get(path);
    if (!m) model.xattrs.set(path, (m = new Map()));
    m.set(name, value);
  };

  // a. connect as a Mac, log in, present the Mac's identity, open the volume.
  let c = await AfpClient.connect(host, port, { holdUnanswered: true });
  assert.ok(c.session.replayCacheSize !== null && c.session.replayCacheSize >= 32, `DSIOpenSession advertises a replay cache (got ${c.session.replayCacheSize})`);
  await c.login(login);
  await c.getUserInfo();
  const token1 = await c.getSessionToken(3, { id: clientId, timestamp: T1 });
  assert.ok(token1.length > 0, 'a session token');
  const srvr = await c.getSrvrParms();
  assert.ok(
    srvr.volumes.some((x) => x.name === volume),
    `FPGetSrvrParms lists ${volume}: ${srvr.volumes.map((x) => x.name).join(', ')}`,
  );
  let v = await c.openVolume(volume);
  const vp = await v.getParms();
  assert.ok(((vp.attributes ?? 0) & SUPPORTS_TM_LOCK_STEAL) !== 0, `FPGetVolParms attributes 0x${(vp.attributes ?? 0).toString(16)} lack kSupportsTMLockSteal`);
  const rootList = await v.enumerateAll(ROOT, []);
  assert.ok(!rootList.some((e) => (e.params.utf8Name ?? e.params.longName) === bundle), 'no bundle yet');
  assert.equal(await resultCode(v.getFileDirParms(ROOT, [bundle])), kFPObjectNotFound, `${bundle} is not there yet`);

  // b. hdiutil creates the bundle.
  const bundleId = await v.createDir(ROOT, [bundle]);
  const info = infoPlist(bandSize, (plan.options.bands + 8) * bandSize);
  await writeWholeFile(v, bundleId, INFO, info);
  file(INFO).write(0, info);
  await writeWholeFile(v, bundleId, BCKUP, info);
  file(BCKUP).write(0, info);
  await v.createFile(bundleId, TOKEN);
  file(TOKEN);
  const bandsId = await v.createDir(bundleId, BANDS);
  const machine = plist([
    ['com.apple.backupd.HostUUID', '5F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0'],
    ['com.apple.backupd.BackupMachineAddress', '00:1b:63:84:45:e6'],
    ['VerificationState', 1],
    ['VerificationDate', '2024-05-01T03:04:05Z'],
  ]);
  await writeWholeFile(v, bundleId, MACHINE_ID, machine);
  file(MACHINE_ID).write(0, machine);
  await v.createFile(bundleId, LOG);
  file(LOG);
  await setXattr(v, bundleId, '', 'com.apple.backupd.SnapshotVolumeUUID', randomBytes(320));
  await setXattr(v, bundleId, '', 'com.apple.timemachine.private.structure.metadata', randomBytes(2900));
  await setXattr(v, bundleId, '', 'com.apple.backupd.ComputerName', Buffer.from(HOST_NAME, 'utf8'));
  await setXattr(v, bundleId, INFO, 'com.apple.diskimages.fsck', randomBytes(480));
  await setXattr(v, bundleId, INFO, 'com.apple.diskimages.recentcksum', randomBytes(1800));
  await v.syncDir(bundleId);
  await v.syncDir(ROOT);
  progress('bundle created');

  // c. attach: the token with deny-write and a byte lock, Info.plist read back, the log.
  let token = await v.openFork(bundleId, TOKEN, { mode: TOKEN_MODE });
  await token.lock(0, 1);
  let infoFork = await v.openFork(bundleId, INFO, { mode: ForkMode.Read });
  assert.deepEqual((await infoFork.read(0, 64 * KiB)).data, info, 'Info.plist reads back');
  let log = await v.openFork(bundleId, LOG, { mode: RW });
  assert.deepEqual(await v.enumerateAll(bandsId, []), [], 'bands/ starts empty');

  // d–f. the band traffic.
  let forks = new Map<number, AfpFork>();
  let slowest = { what: '(none)', seconds: 0, answeredAt: 0 };
  const answered = (what: string, ms: number): void => {
    const now = performance.now();
    if (ms / 1000 > slowest.seconds) slowest = { what, seconds: ms / 1000, answeredAt: now };
    o.onReply?.(what, now - ms, now);
  };
  let pipe = new Pipeline(depth, answered);
  /** Bands written or truncated since their last FPSyncFork (or FPSyncDir), open or not; the log likewise. */
  const dirty = new Set<number>();
  let logDirty = false;
  let failoverStats: TmStats['failover'];
  let reconnectMs = 0;
  let restartMs = 0;
  let replayed = 0;
  let ranBeforeDrop = 0;
  const bandsStarted = performance.now();
  const bandFile = (b: number) => `${BANDS}/${bandName(b)}`;
  const forkOf = (b: number): AfpFork => {
    const f = forks.get(b);
    assert.ok(f, `band ${bandName(b)} is open`);
    return f;
  };
  /** Sends one op (model updated in send order); resolves when the op is under way (open: when answered). */
  const request = (op: TmOp): { what: string; reply: Promise<unknown> } | null => {
    switch (op.kind) {
      case 'create':
        file(bandFile(op.band));
        return { what: `FPCreateFile ${bandFile(op.band)}`, reply: v.createFile(bandsId, bandName(op.band)) };
      case 'write': {
        const data = pool.subarray(op.src, op.src + op.length);
        file(bandFile(op.band)).write(op.offset, data);
        dirty.add(op.band);
        const end = op.offset + op.length;
        const what = `FPWriteExt ${bandFile(op.band)} [${op.offset}, ${end})`;
        return {
          what,
          reply: forkOf(op.band).writeExt(op.offset, data).then((got) => {
            if (got !== end) throw new Error(`the server wrote up to ${got}, not ${end}`);
          }),
        };
      }
      case 'append': {
        const data = pool.subarray(op.src, op.src + op.length);
        logDirty = true;
        const f = file(LOG);
        f.write(f.length, data);
        const end = f.length;
        return {
          what: `FPWriteExt from the end of ${LOG} (${op.length} bytes)`,
          reply: log.writeExt(0, data, true).then((got) => {
            if (got !== end) throw new Error(`the append ended at ${got}, not ${end}`);
          }),
        };
      }
      case 'flush':
        return { what: `FPFlushFork ${bandFile(op.band)}`, reply: forkOf(op.band).flush() };
      case 'sync':
        dirty.delete(op.band);
        return { what: `FPSyncFork ${bandFile(op.band)}`, reply: forkOf(op.band).sync() };
      case 'syncLog':
        logDirty = false;
        return { what: `FPSyncFork ${LOG}`, reply: log.sync() };
      case 'truncate':
        file(bandFile(op.band)).truncate(op.length);
        dirty.add(op.band);
        return { what: `FPSetForkParms ${bandFile(op.band)} length ${op.length}`, reply: forkOf(op.band).setLength(op.length) };
      case 'close': {
        const f = forkOf(op.band);
        forks.delete(op.band);
        return { what: `FPCloseFork ${bandFile(op.band)}`, reply: f.close() };
      }
      case 'delete':
        model.files.delete(bandFile(op.band));
        dirty.delete(op.band);
        return { what: `FPDelete ${bandFile(op.band)}`, reply: v.delete(bandsId, bandName(op.band)) };
      case 'syncDirs':
        // Every fork of a file in bands/ and in the bundle is durable after it.
        dirty.clear();
        logDirty = false;
        return { what: 'FPSyncDir bands/ and the bundle', reply: v.syncDir(bandsId).then(() => v.syncDir(bundleId)) };
      default:
        return null;
    }
  };

  /** The failover's barrier: FPSyncFork of every dirty open band and the log, FPSyncDir of bands/ for closed ones. */
  const syncEverything = async (): Promise<void> => {
    const closedDirty = [...dirty].some((b) => !forks.has(b));
    for (const b of [...dirty].filter((x) => forks.has(x))) {
      const r = request({ kind: 'sync', band: b })!;
      await pipe.add(r.what, r.reply);
    }
    if (logDirty) {
      const r = request({ kind: 'syncLog' })!;
      await pipe.add(r.what, r.reply);
    }
    if (closedDirty) await pipe.add('FPSyncDir bands/', v.syncDir(bandsId));
    dirty.clear();
    await pipe.drain();
  };

  const drop = async (batch: TmOp[]): Promise<void> => {
    await pipe.drain();
    const failover = o.failover;
    if (failover) await syncEverything();
    const t = performance.now();
    // Another session (same user, no session token) watches the server run the requests.
    const watcher = await AfpClient.connect(host, port);
    await watcher.login(login);
    const wv = await watcher.openVolume(volume);
    const logBefore = model.files.get(LOG)!.length;
    // Replies are no longer read: they are lost with the connection.
    c.dsi.socket.pause();
    const sent: { what: string; reply: Promise<unknown> }[] = batch.map((op) => request(op)!);
    let marker: Buffer | undefined;
    if (failover) {
      // The node will die: what it acknowledged must be synced by then (see TmWorkloadOptions.failover).
      const written = [...new Set(batch.flatMap((op) => (op.kind === 'write' ? [op.band] : [])))].sort((x, y) => x - y);
      for (const b of written) sent.push(request({ kind: 'sync', band: b })!);
      sent.push(request({ kind: 'syncLog' })!);
      const name = 'com.apple.backupd.SnapshotVolumeUUID';
      const value = randomBytes(340);
      sent.push({ what: `FPSetExtAttr ${bundle} ${name}`, reply: v.setXattr(ROOT, [bundle], name, value) });
      let m = model.xattrs.get('');
      if (!m) model.xattrs.set('', (m = new Map()));
      m.set(name, value);
      marker = value;
    }
    let firstReplyAt: number | undefined;
    const outcomes = sent.map((r) =>
      r.reply.then(
        () => {
          firstReplyAt ??= performance.now();
          return { what: r.what, error: null as string | null };
        },
        (e: unknown) => ({ what: r.what, error: describeError(e) }),
      ),
    );
    const created = batch.find((op) => op.kind === 'create')!;
    const appendAt = batch.findIndex((op) => op.kind === 'append');
    const logAfter = model.files.get(LOG)!.length;
    // The append follows the FPCreateFile: once the log has grown, both ran (one request at a time, in order).
    await until('the server to run the FPCreateFile and the append', async () => {
      if ((await resultCode(wv.getFileDirParms(bandsId, bandName(created.band)))) !== 0) return false;
      const len = (await wv.getFileDirParms(bundleId, LOG)).params.dataLength;
      assert.ok(len === logBefore || len === logAfter, `the log is ${len} bytes: neither ${logBefore} nor ${logAfter}`);
      return len === logAfter;
    });
    ranBeforeDrop = appendAt + 1;
    if (marker) {
      // The xattr is the batch's last request: once it is set, the node ran (and synced) everything.
      const want = marker;
      const current = () => wv.getXattr(ROOT, [bundle], 'com.apple.backupd.SnapshotVolumeUUID').catch(() => Buffer.alloc(0));
      await until('the server to run the whole batch, up to the FPSetExtAttr', async () => (await current()).equals(want), 60_000);
      ranBeforeDrop = sent.length;
    }
    c.dsi.socket.destroy();
    await watcher.close();
    progress(`connection dropped with ${sent.length} requests unanswered`);
    if (failover) {
      ({ host, port } = await failover());
      const endpointAt = performance.now();
      progress(`failing over to ${host}:${port}`);
      await c.reconnect(host, port, login, token1);
      failoverStats = { endpointAt, reconnectedAt: performance.now(), firstReplyAt: 0 };
    } else {
      await c.reconnect(host, port, login, token1);
    }
    const results = await withTimeout(Promise.all(outcomes), 30_000, 'the requests in flight at the drop, after the reconnect');
    if (failoverStats) failoverStats.firstReplyAt = firstReplyAt ?? performance.now();
    replayed = results.length;
    const failed = results.filter((x) => x.error !== null);
    assert.deepEqual(failed, [], 'every request in flight at the drop succeeds after the reconnect (no kFPObjectExists, no second append)');
    const again = await c.getSessionToken(4, { id: clientId, timestamp: T1 });
    assert.deepEqual(again, token1, 'type 4 after the reconnect: the same session');
    assert.equal(await log.length(), logAfter, `the append landed exactly once (${logBefore} + ${logAfter - logBefore} bytes)`);
    reconnectMs += performance.now() - t;
  };

  const restart = async (): Promise<void> => {
    await pipe.drain();
    const t = performance.now();
    // The Mac panics: the connection dies, nothing is closed, nobody reconnects.
    c.dsi.socket.destroy();
    progress('Mac restarted');
    c = await AfpClient.connect(host, port, { holdUnanswered: true });
    await c.login(login);
    await c.getUserInfo();
    // Before presenting its identity, the old session's deny modes keep it out...
    await c.getSrvrParms();
    v = await c.openVolume(volume);
    assert.equal((await v.getFileDirParms(ROOT, [bundle])).params.nodeId, bundleId, 'the bundle keeps its directory ID');
    let denied: number;
    try {
      denied = (await v.openForkReply(bundleId, TOKEN, { mode: TOKEN_MODE })).code;
    } catch (e) {
      if (!(e instanceof AfpError)) throw e;
      denied = e.code;
    }
    assert.equal(denied, kFPDenyConflict, 'the token is still held by the dead session before the steal');
    // ...and FPGetSessionToken type 3 with the same ID and a new boot time steals them.
    const token2 = await c.getSessionToken(3, { id: clientId, timestamp: T2 });
    assert.notDeepEqual(token2, token1, 'a new session, a new token');
    token = await v.openFork(bundleId, TOKEN, { mode: TOKEN_MODE });
    await token.lock(0, 1);
    infoFork = await v.openFork(bundleId, INFO, { mode: ForkMode.Read });
    assert.deepEqual((await infoFork.read(0, 64 * KiB)).data, info);
    log = await v.openFork(bundleId, LOG, { mode: RW });
    assert.equal(await log.length(), model.files.get(LOG)!.length, 'the log kept every acknowledged append');
    forks = new Map();
    pipe = new Pipeline(depth, answered);
    restartMs += performance.now() - t;
  };

  const checkRound = o.syncCheck ? syncRounds(plan)[o.syncCheck.round] : undefined;
  if (o.syncCheck) assert.ok(checkRound, `the plan has no sync round ${o.syncCheck.round}`);
  let syncChecked = false;
  let syncCheckMs = 0;
  const syncCheck = async (round: SyncRound): Promise<void> => {
    await pipe.drain();
    const files = new Map<string, Buffer>();
    for (const b of round.bands) {
      assert.ok(forks.has(b), `band ${bandName(b)} is still open at the sync check`);
      files.set(bandFile(b), Buffer.from(model.files.get(bandFile(b))!.bytes));
    }
    if (round.log) files.set(LOG, Buffer.from(model.files.get(LOG)!.bytes));
    const t = performance.now();
    await o.syncCheck!.check({ bundle, files });
    syncCheckMs += performance.now() - t;
    syncChecked = true;
  };

  for (const [i, op] of plan.ops.entries()) {
    if (op.kind === 'drop') await drop(op.batch);
    else if (op.kind === 'restart') await restart();
    else if (op.kind === 'open') {
      const sent = performance.now();
      const f = await v.openFork(bandsId, bandName(op.band), { mode: BAND_MODE }).catch((e: unknown) => {
        throw new Error(`FPOpenFork ${bandFile(op.band)}: ${describeError(e)}`, { cause: e });
      });
      answered(`FPOpenFork ${bandFile(op.band)}`, performance.now() - sent);
      forks.set(op.band, f);
    } else {
      const r = request(op)!;
      await pipe.add(r.what, r.reply);
    }
    if (checkRound && i === checkRound.at) await syncCheck(checkRound);
  }
  await pipe.drain();
  assert.equal(syncChecked, o.syncCheck !== undefined, 'the sync check ran');
  const bandsEnded = performance.now();
  assert.equal(forks.size, 0, 'the plan closes every band');

  // g. detach.
  await setXattr(v, bundleId, INFO, 'com.apple.diskimages.recentcksum', randomBytes(1900));
  await setXattr(v, bundleId, '', 'com.apple.backupd.SnapshotVolumeUUID', randomBytes(360));
  await log.close();
  await infoFork.close();
  await token.unlock(0, 1);
  await token.close();
  await v.syncDir(bundleId);
  await v.close();
  await c.logout();
  await c.close();

  const ended = performance.now();
  return {
    model,
    stats: {
      bandBytes: plan.bandBytes,
      bandSeconds: (bandsEnded - bandsStarted - reconnectMs - restartMs - syncCheckMs) / 1000,
      reconnectSeconds: reconnectMs / 1000,
      restartSeconds: restartMs / 1000,
      totalSeconds: (ended - started) / 1000,
      replayed,
      ranBeforeDrop,
      syncCheckSeconds: syncCheckMs / 1000,
      counts: plan.counts,
      slowest,
      ...(failoverStats ? { failover: failoverStats } : {}),
    },
  };
}

// ---- verification ---------------------------------------------------------------------------

function nameOf(e: Entry): string {
  return (e.params.utf8Name ?? e.params.longName ?? '').normalize('NFC');
}

/**
 * Checks the bundle against the model through a fresh session: its listing, the band list,
 * every file's length and bytes, every xattr. Returns the bytes compared.
 */
export async function verifyBundle(host: string, port: number, model: BundleModel, o: { login?: LoginOptions; volume?: string; label?: string } = {}): Promise<number> {
  const label = o.label ?? 'fresh session';
  const c = await AfpClient.connect(host, port);
  try {
    await c.login(o.login ?? TM_LOGIN);
    const v = await c.openVolume(o.volume ?? TM_VOLUME);
    const root = await v.getFileDirParms(ROOT, [model.name]);
    assert.ok(root.isDir, `${label}: ${model.name} is a directory`);
    const bundleId = root.params.nodeId!;
    const dirIds = new Map<string, number>([['', bundleId]]);
    const listings = new Map<string, Entry[]>();
    for (const dir of ['', ...model.dirs]) {
      const id = dir === '' ? bundleId : (await v.getFileDirParms(bundleId, dir)).params.nodeId!;
      dirIds.set(dir, id);
      listings.set(dir, await v.enumerateAll(id, []));
    }
    // The names in each directory: exactly the model's.
    for (const [dir, entries] of listings) {
      const prefix = dir === '' ? '' : `${dir}/`;
      const want = [
        ...[...model.files.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length)),
        ...(dir === '' ? [...model.dirs] : []),
      ].sort();
      const got = entries.map(nameOf).sort();
      assert.deepEqual(got, want, `${label}: the entries of ${dir === '' ? model.name : dir}`);
      for (const e of entries) {
        const path = prefix + nameOf(e);
        if (e.isDir) continue;
        assert.equal(e.params.dataLength, model.files.get(path)!.length, `${label}: the length of ${path} (FPEnumerateExt2)`);
      }
    }
    let bytes = 0;
    for (const [path, want] of [...model.files].sort(([a], [b]) => a.localeCompare(b))) {
      const slash = path.lastIndexOf('/');
      const dirId = dirIds.get(slash < 0 ? '' : path.slice(0, slash))!;
      const fork = await v.openFork(dirId, path.slice(slash + 1), { mode: ForkMode.Read });
      assert.equal(await fork.length(), want.length, `${label}: the length of ${path} (FPGetForkParms)`);
      const diff = await firstDifference(fork, want.bytes);
      assert.equal(diff, -1, `${label}: ${path} differs from the model at byte ${diff} of ${want.length}`);
      const tail = await fork.readExt(want.length, 4096);
      assert.ok(tail.eof && tail.data.length === 0, `${label}: ${path} ends at ${want.length}`);
      await fork.close();
      bytes += want.length;
    }
    for (const [path, attrs] of model.xattrs) {
      const dirId = path === '' ? ROOT : bundleId;
      const target = path === '' ? [model.name] : path;
      assert.deepEqual((await v.listXattrs(dirId, target)).sort(), [...attrs.keys()].sort(), `${label}: the xattrs of ${path || model.name}`);
      for (const [name, value] of attrs) assert.deepEqual(await v.getXattr(dirId, target, name), value, `${label}: ${path || model.name} ${name}`);
    }
    await v.close();
    return bytes;
  } finally {
    await c.close();
  }
}

/**
 * Checks some files of the bundle (bundle paths, `bands/1f`) against their exact bytes through
 * a fresh session, opening them read-only. With `heldElsewhere`, the bands must also be open
 * for writing with deny-write by someone else (the writing node): opening them for writing is
 * refused. Returns the bytes compared.
 */
export async function verifyFiles(host: string, port: number, bundle: string, files: Map<string, Buffer>, o: { label: string; heldElsewhere?: boolean; login?: LoginOptions; volume?: string }): Promise<number> {
  const c = await AfpClient.connect(host, port);
  try {
    await c.login(o.login ?? TM_LOGIN);
    const v = await c.openVolume(o.volume ?? TM_VOLUME);
    const bundleId = (await v.getFileDirParms(ROOT, [bundle])).params.nodeId!;
    const bandsId = (await v.getFileDirParms(bundleId, BANDS)).params.nodeId!;
    let bytes = 0;
    for (const [path, want] of files) {
      const inBands = path.startsWith(`${BANDS}/`);
      const dirId = inBands ? bandsId : bundleId;
      const name = inBands ? path.slice(BANDS.length + 1) : path;
      if (o.heldElsewhere && inBands) {
        assert.equal(await resultCode(v.openFork(dirId, name, { mode: RW })), kFPDenyConflict, `${o.label}: ${path} is still open with deny-write on the writing node`);
      }
      const fork = await v.openFork(dirId, name, { mode: ForkMode.Read });
      assert.equal(await fork.length(), want.length, `${o.label}: the length of ${path} (FPGetForkParms)`);
      const diff = await firstDifference(fork, want);
      assert.equal(diff, -1, `${o.label}: ${path} differs from the model at byte ${diff} of ${want.length}`);
      const tail = await fork.readExt(want.length, 4096);
      assert.ok(tail.eof && tail.data.length === 0, `${o.label}: ${path} ends at ${want.length}`);
      await fork.close();
      bytes += want.length;
    }
    await v.close();
    return bytes;
  } finally {
    await c.close();
  }
}

// ---- the same band traffic on local files ---------------------------------------------------

/**
 * Runs the plan's band traffic against plain files in `dir` with fs writes: pwrite for
 * FPWriteExt, fdatasync for FPFlushFork, fsync for FPSyncFork, ftruncate, unlink; the
 * restart closes every file. Returns the seconds it took.
 */
export async function runPlanOnDisk(dir: string, plan: TmPlan, pool: Buffer): Promise<number> {
  const bands = join(dir, BANDS);
  await mkdir(bands, { recursive: true });
  const log = await open(join(dir, LOG), 'w+');
  let logLength = 0;
  const handles = new Map<number, FileHandle>();
  const path = (b: number) => join(bands, bandName(b));
  const h = (b: number): FileHandle => {
    const f = handles.get(b);
    if (!f) throw new Error(`band ${bandName(b)} is not open`);
    return f;
  };
  const t0 = performance.now();
  const run = async (op: TmOp): Promise<void> => {
    switch (op.kind) {
      case 'create':
        await (await open(path(op.band), 'wx')).close();
        return;
      case 'open':
        handles.set(op.band, await open(path(op.band), 'r+'));
        return;
      case 'write':
        await h(op.band).write(pool, op.src, op.length, op.offset);
        return;
      case 'append':
        await log.write(pool, op.src, op.length, logLength);
        logLength += op.length;
        return;
      case 'flush':
        await h(op.band).datasync();
        return;
      case 'sync':
        await h(op.band).sync();
        return;
      case 'syncLog':
        await log.sync();
        return;
      case 'truncate':
        await h(op.band).truncate(op.length);
        return;
      case 'close':
        await h(op.band).close();
        handles.delete(op.band);
        return;
      case 'delete':
        await unlink(path(op.band));
        return;
      case 'syncDirs': {
        for (const b of op.bands) {
          const f = await open(path(b), 'r+');
          await f.sync();
          await f.close();
        }
        for (const d of [bands, dir]) {
          const f = await open(d, 'r');
          await f.sync();
          await f.close();
        }
        return;
      }
      case 'drop':
        for (const x of op.batch) await run(x);
        return;
      case 'restart':
        for (const f of handles.values()) await f.close();
        handles.clear();
        return;
    }
  };
  for (const op of plan.ops) await run(op);
  const seconds = (performance.now() - t0) / 1000;
  await log.close();
  return seconds;
}

// ---- the suite ------------------------------------------------------------------------------

const TEST_BAND = MiB;
const TEST_MIB = Number(process.env.AFPGW_TEST_TM_MIB ?? 64);
const TEST_SEED = Number(process.env.AFPGW_TEST_TM_SEED ?? Math.floor(Math.random() * 2 ** 31));

export function timeMachineSuite(backend: Backend): void {
  describe(`a Time Machine backup over AFP (${backend} metadata, S3)`, () => {
    const world = dataWorld(backend, 'tm', (name, { s3, work }) => ({
      // 256 KiB blocks: a 1 MiB band spans four, so writes straddle blocks as 8 MiB bands do with 4 MiB blocks.
      volumes: [{ name: TM_VOLUME, timeMachine: true, blockSize: '256KiB' }],
      objects: { ...s3Config(s3, { prefix: `tm-${backend}` }) },
      // Blocks not written to their end are uploaded only when a sync asks or their fork closes (the upload
      // delay is past the test), and the first node stops without draining: the node with an empty cache
      // sees what FPSyncFork, FPSyncDir and FPCloseFork put in S3, nothing else.
      cache: { dir: join(work, `cache-${name}`), size: '1GiB', dirtyLimit: '256MiB', uploadDelayMs: 600_000 },
    }));
    const start = (name: string) => world.start(name);

    it('backs up, survives a dropped connection and a restart, and every byte is in S3', async (t) => {
      if (!world.ready) return t.skip('redis-server not installed');
      const a = await start('a');
      await a.gw.meta.createUser({ name: TM_USER.name, password: await hashPassword(TM_USER.password, TEST_SCRYPT) });
      const plan = makePlan({ bandSize: TEST_BAND, bands: 40, totalBytes: TEST_MIB * MiB, seed: TEST_SEED });
      t.diagnostic(`seed ${TEST_SEED} (AFPGW_TEST_TM_SEED), ${plan.ops.length} steps: ${JSON.stringify(plan.counts)}`);
      // The sync contract mid-backup: after a round of FPSyncFork (the one syncing the most bands between the
      // reconnect and the restart, else anywhere), with the bands still open and dirty blocks left alone by the
      // upload delay, a second node with an empty cache over the same metadata store and bucket reads exactly
      // what was synced, while the writing node runs on and holds the forks. Closing forks cannot help here.
      const rounds = syncRounds(plan);
      assert.ok(rounds.length > 0, 'the plan syncs');
      const mid = rounds.filter((r) => r.phase === 'after-reconnect');
      const round = (mid.length > 0 ? mid : rounds).reduce((x, y) => (y.bands.length > x.bands.length ? y : x));
      const syncCheck = async ({ bundle, files }: { bundle: string; files: Map<string, Buffer> }): Promise<void> => {
        const t0 = performance.now();
        const second = await start('sync-check');
        try {
          const bytes = await verifyFiles(second.host, second.port, bundle, files, {
            label: `a second node with an empty cache, after sync round ${round.index} (${round.phase})`,
            heldElsewhere: true,
          });
          t.diagnostic(
            `sync round ${round.index} of ${rounds.length} (${round.phase}): ${round.bands.length} open bands${round.log ? ' + the log' : ''}, ` +
              `${(bytes / MiB).toFixed(1)} MiB verified through a second node with an empty cache in ${((performance.now() - t0) / 1000).toFixed(2)} s ` +
              `(${a.gw.dirtyBytes} bytes dirty on the writing node)`,
          );
        } finally {
          await second.stop();
        }
      };
      const { model, stats } = await timeMachineWorkload({ host: a.host, port: a.port, plan, pool: newPool(), syncCheck: { round: round.index, check: syncCheck } });
      const mib = stats.bandBytes / MiB;
      t.diagnostic(
        `${mib.toFixed(1)} MiB of band writes in ${stats.bandSeconds.toFixed(1)} s (${(mib / stats.bandSeconds).toFixed(1)} MiB/s incl. syncs); ` +
          `reconnect ${stats.reconnectSeconds.toFixed(2)} s with ${stats.replayed} requests replayed (${stats.ranBeforeDrop} had run before the drop); ` +
          `restart + lock steal ${stats.restartSeconds.toFixed(2)} s; whole backup ${stats.totalSeconds.toFixed(1)} s`,
      );
      assert.ok(stats.replayed >= 5 && stats.ranBeforeDrop >= 5, 'the drop left requests to replay, some already run');
      const bands = [...model.files.keys()].filter((p) => p.startsWith(`${BANDS}/`)).length;
      assert.ok(bands > 10, `${bands} bands in the image`);

      const t1 = performance.now();
      const bytes = await verifyBundle(a.host, a.port, model, { label: 'the writing node' });
      t.diagnostic(`${(bytes / MiB).toFixed(1)} MiB in ${bands} bands + ${model.files.size - bands} files verified through the writing node in ${((performance.now() - t1) / 1000).toFixed(1)} s`);

      // No upload drain at the stop: the cold node sees only what the syncs put in S3.
      t.diagnostic(`${a.gw.dirtyBytes} bytes still dirty in the writing node's cache at its stop`);
      await a.gw.stop(0, 0);
      await a.stop();
      const b = await start('b');
      const t2 = performance.now();
      await verifyBundle(b.host, b.port, model, { label: 'a node with an empty cache' });
      t.diagnostic(`verified again through a node with an empty cache (S3 + metadata only) in ${((performance.now() - t2) / 1000).toFixed(1)} s`);
    });
  });
}
