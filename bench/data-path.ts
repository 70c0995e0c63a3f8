/**
 * Throughput of the data path, each figure beside a reference measured in the same run:
 *
 *   1. raw disk write: BENCH_BYTES in sequential 1 MiB FileHandle.write calls into os.tmpdir()
 *      (the file system the gateway's cache is on), no fsync, as the gateway's write reply does
 *      not fsync either; again with a final fsync, for information.
 *   2. AFP sequential write into the cache (FPWriteExt of one quantum each, BENCH_PIPELINE in
 *      flight), timed from the first write to the last reply, against (1). Then FPSyncFork,
 *      for information: write + sync with everything in the (fs) object store.
 *   3. AFP read served from the cache (FPReadExt, pipelined the same way), against DSI-shaped
 *      request/reply streaming over raw loopback TCP with the same reply size and depth.
 *   4. The upload pipeline against raw S3 PUTs of one block each at the pipeline's concurrency,
 *      on s3rver: bytes / (first write .. FPSyncFork reply). For information: raw GETs and a
 *      cold read through a second gateway with an empty cache on the same stores.
 *
 * Diagnostics printed for information (they explain the targets, they are not targets):
 *   - raw TCP upload in FPWriteExt's shape: the transport ceiling of (2), which (1) lacks;
 *   - AFP write with uploads held back (every block written to one byte short of its end, so
 *     it waits for cache.uploadDelayMs, set to 10 minutes): the ingest without uploads
 *     competing for the 2 cores; its FPSyncFork then times the upload drain alone;
 *   - the same drain on S3: the upload pipeline alone against raw PUT.
 *
 * Run: npm run bench -- data-path
 * Knobs: BENCH_BYTES (default 1 GiB), BENCH_S3_BYTES (default 256 MiB), BENCH_PIPELINE
 * (default the client's DEFAULT_PIPELINE, 4), BENCH_PHASES (comma list of disk, write, read,
 * s3; default all), BENCH_COLD=0 skips the cold read, BENCH_DIAG=0 skips the diagnostics,
 * BENCH_TOKEN=0 runs without a session token (no replay-cache entries in the store),
 * BENCH_META=redis keeps the cache phases' metadata in a local redis-server.
 * Profiling: BENCH_PROFILE=<measurement> (write, read, raw-tcp-up, raw-tcp-down, held-write,
 * held-sync, s3, s3-put, s3-drain, cold) runs only the phase that measurement belongs to and
 * writes a V8 CPU profile of its timed part (gateway and client share this process) to
 * BENCH_PROFILE_DIR (default .); summarise it with
 *   node dist/bench/lib/cpuprofile-summary.js data-path-<measurement>.cpuprofile 25 --callers=openFileHandle,writeBuffer
 * (`node --cpu-prof dist/bench/data-path.js` with BENCH_PHASES works too, for the whole run.)
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword } from '../src/auth/password.js';
import { AfpClient } from '../src/client/afp-client.js';
import { DEFAULT_PIPELINE, ForkMode, pipelined, type AfpFork } from '../src/client/afp-fork.js';
import { ROOT } from '../src/client/afp-volume.js';
import { S3ObjectStore } from '../src/objects/s3-store.js';
import { startTestGateway, TEST_SCRYPT, type TestGateway } from '../test/helpers/gateway.js';
import { startRedis, type RedisServer } from '../test/helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../test/helpers/s3-server.js';
import { rawRequestStream } from './lib/raw-stream.js';

const MiB = 1024 * 1024;
const BYTES = Number(process.env.BENCH_BYTES ?? 1073741824);
const S3_BYTES = Number(process.env.BENCH_S3_BYTES ?? 256 * MiB);
const PIPELINE = Number(process.env.BENCH_PIPELINE ?? DEFAULT_PIPELINE);
const COLD = process.env.BENCH_COLD !== '0';
const PROFILE = process.env.BENCH_PROFILE ?? '';
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR ?? '.';
/** The phase each profilable measurement belongs to. */
const PHASE_OF: Record<string, string> = {
  write: 'write',
  sync: 'write',
  'raw-tcp-up': 'write',
  'held-write': 'write',
  'held-sync': 'write',
  read: 'read',
  'raw-tcp-down': 'read',
  s3: 's3',
  's3-put': 's3',
  's3-get': 's3',
  's3-drain': 's3',
  cold: 's3',
};
if (PROFILE && !PHASE_OF[PROFILE]) throw new Error(`BENCH_PROFILE=${PROFILE}: one of ${Object.keys(PHASE_OF).join(', ')}`);
const PHASES = new Set((PROFILE ? PHASE_OF[PROFILE]! : process.env.BENCH_PHASES || 'disk,write,read,s3').split(',').map((s) => s.trim()));
/** Runs a measurement unless a profile of another one is being taken. */
const wanted = (name: string) => !PROFILE || PROFILE === name;
const DIAG = process.env.BENCH_DIAG !== '0';
/** Raw disk writes go in pieces of the gateway's default request quantum. */
const DISK_PIECE = MiB;
const USER = { name: 'bench', password: 'benchpw' };
const RW = ForkMode.Read | ForkMode.Write;
const CACHE = { size: '4GiB', dirtyLimit: '2GiB' };
/** Uploads of blocks not written to their end wait this long: past any run of this bench. */
const HOLD = { size: '4GiB', dirtyLimit: '3GiB', uploadDelayMs: 600_000 };

// ---- data ------------------------------------------------------------------------------

/**
 * Random bytes, cut into 1 MiB slices. 67 slices (coprime with the 4 slices of a 4 MiB block),
 * so no two blocks of the first 268 carry the same bytes, without a gigabyte of randomBytes.
 */
const POOL_SLICES = 67;
const pool = randomBytes(POOL_SLICES * MiB);
function slice(i: number, n = MiB): Buffer {
  const at = (i % POOL_SLICES) * MiB;
  return pool.subarray(at, at + n);
}

/** Checks the length and three 4 KiB windows of read `i` (a full compare would cost about as much as the read). */
function check(i: number, got: Buffer, want: number): void {
  const ref = slice(i, want);
  if (got.length !== want) throw new Error(`read ${i}: ${got.length} bytes, wanted ${want}`);
  for (const at of [0, Math.floor(want / 2), Math.max(0, want - 4096)]) {
    const end = Math.min(at + 4096, want);
    if (got.compare(ref, at, end, at, end) !== 0) throw new Error(`read ${i}: wrong bytes near ${at}`);
  }
}

// ---- measuring -------------------------------------------------------------------------

interface Timed {
  bytes: number;
  seconds: number;
  /** Process CPU (user + system, all threads) over wall time: 1.0 = one core busy. */
  cpu: number;
  /** The same for the s3rver child process, while one runs. */
  s3rverCpu?: number;
}

/** The s3rver child, found among this process's children once startS3 has run. */
let s3rverPid: number | undefined;
function findS3rver(): number | undefined {
  try {
    for (const t of readdirSync(`/proc/${process.pid}/task`)) {
      for (const pid of readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean)) {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('afpgw-s3rver-child')) return Number(pid);
      }
    }
  } catch {
    // Not Linux, or the child is gone: no figure.
  }
  return undefined;
}
/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s). */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

const mibps = (t: Timed) => t.bytes / MiB / t.seconds;

async function timed(name: string, bytes: number, run: () => Promise<unknown>): Promise<Timed> {
  let profiler: Session | null = null;
  if (PROFILE === name) {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
    await profiler.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const other0 = cpuSecondsOf(s3rverPid);
  const t0 = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const other1 = cpuSecondsOf(s3rverPid);
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    const file = join(PROFILE_DIR, `data-path-${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    profiler.disconnect();
    console.log(`  (CPU profile of "${name}" written to ${file})`);
  }
  return {
    bytes,
    seconds,
    cpu: (cpu.user + cpu.system) / 1e6 / seconds,
    ...(other0 !== undefined && other1 !== undefined ? { s3rverCpu: (other1 - other0) / seconds } : {}),
  };
}

/** Wall time and CPU from `t0`/`cpu0` to now, as a Timed of `bytes`. */
function since(t0: bigint, cpu0: NodeJS.CpuUsage, bytes: number): Timed {
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { bytes, seconds, cpu: (cpu.user + cpu.system) / 1e6 / seconds };
}

interface Row {
  figure: string;
  value: Timed;
  reference?: Timed;
  target?: number;
}
const rows: Row[] = [];
const notes: string[] = [];

function progress(what: string, t: Timed): void {
  const other = t.s3rverCpu !== undefined ? `  s3rver cpu ${t.s3rverCpu.toFixed(2)}` : '';
  console.log(`  ${what.padEnd(48)} ${mibps(t).toFixed(1).padStart(8)} MiB/s  ${t.seconds.toFixed(2).padStart(6)} s  cpu ${t.cpu.toFixed(2)}${other}`);
}

// ---- 1. raw disk write -----------------------------------------------------------------

async function rawDiskWrite(dir: string, name: string, fsync: boolean): Promise<Timed> {
  const path = join(dir, name);
  const fh = await open(path, 'w');
  try {
    return await timed(fsync ? 'disk-fsync' : 'disk', BYTES, async () => {
      for (let at = 0, i = 0; at < BYTES; at += DISK_PIECE, i++) {
        const n = Math.min(DISK_PIECE, BYTES - at);
        const buf = slice(i, n);
        let done = 0;
        while (done < n) done += (await fh.write(buf, done, n - done, at + done)).bytesWritten;
      }
      if (fsync) await fh.sync();
    });
  } finally {
    await fh.close();
    // Unlinked at once: its dirty pages must not be written back behind the next phase.
    await rm(path, { force: true });
  }
}

// ---- AFP helpers -----------------------------------------------------------------------

interface BenchSession {
  c: AfpClient;
  fork(name: string, create: boolean): Promise<AfpFork>;
}

async function session(g: TestGateway): Promise<BenchSession> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: USER.name, password: USER.password });
  // As a Mac does: with a token, every write's reply also goes to the replay cache in the store.
  if (process.env.BENCH_TOKEN !== '0') await c.getSessionToken(3, { id: Buffer.from('bench-mac'), timestamp: 1 });
  const v = await c.openVolume('TimeMachine');
  return {
    c,
    async fork(name, create) {
      if (create) await v.createFile(ROOT, name, true);
      return v.openFork(ROOT, name, { mode: RW });
    },
  };
}

/**
 * FPWriteExt of one quantum each, PIPELINE in flight, bytes from the pool. With `holdBack`
 * (the block size), a piece that would end a block stops one byte short, so no block is
 * written to its end and none uploads before its delay. Returns the bytes written.
 */
async function afpWrite(fork: AfpFork, bytes: number, holdBack = 0): Promise<number> {
  const q = fork.quantum;
  let written = 0;
  await pipelined(Math.ceil(bytes / q), PIPELINE, async (i) => {
    const at = i * q;
    let n = Math.min(q, bytes - at);
    if (holdBack > 0 && (at + n) % holdBack === 0) n--;
    const end = await fork.writeExt(at, q === MiB ? slice(i, n) : poolBytes(at, n));
    if (end !== at + n) throw new Error(`short write at ${at}: the server wrote up to ${end}`);
    written += n;
  });
  return written;
}

/** FPReadExt of one quantum each, PIPELINE in flight (the client's read() has one outstanding). */
async function afpRead(fork: AfpFork, bytes: number): Promise<void> {
  const q = fork.quantum;
  await pipelined(Math.ceil(bytes / q), PIPELINE, async (i) => {
    const at = i * q;
    const n = Math.min(q, bytes - at);
    const r = await fork.readExt(at, n);
    if (q === MiB) check(i, r.data, n);
    else if (r.data.length !== n) throw new Error(`short read at ${at}: ${r.data.length} of ${n}`);
  });
}

/** For a quantum other than 1 MiB: the bytes the 1 MiB slicing would put at `at`. */
function poolBytes(at: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let done = 0; done < n; ) {
    const p = at + done;
    const i = Math.floor(p / MiB);
    const off = p - i * MiB;
    const k = Math.min(MiB - off, n - done);
    slice(i).copy(out, done, off, off + k);
    done += k;
  }
  return out;
}

/** BENCH_META=redis puts the cache phases' metadata (and every write's replay entry) in a local redis-server. */
const META = process.env.BENCH_META === 'redis' ? 'redis' : 'embedded';
let redisForBench: Promise<RedisServer> | undefined;

/** A gateway whose stop() may be called more than once. */
async function gateway(opts: Parameters<typeof startTestGateway>[0]): Promise<TestGateway> {
  if (META === 'redis' && !opts?.config?.metadata) {
    const r = await (redisForBench ??= startRedis());
    opts = { ...opts, config: { ...opts?.config, metadata: { backend: 'redis', url: r.url, keyPrefix: `bench${Date.now()}` } } };
  }
  // Metrics on, as a production gateway has them (the test helper turns them off).
  const g = await startTestGateway({ ...opts, config: { ops: { metricsListen: { host: '127.0.0.1', port: 0 } }, ...opts?.config } });
  let stopping: Promise<void> | undefined;
  return { ...g, stop: () => (stopping ??= g.stop()) };
}

// ---- 2 + 3. write into and read from the cache (fs object store) -----------------------

async function cachePhases(rawDisk: Timed | undefined): Promise<void> {
  let write: Timed | undefined;
  let read: Timed | undefined;
  const g = await gateway({ users: [USER], config: { cache: CACHE } });
  try {
    env.blockSize = g.gw.config.volumes[0]?.blockSize;
    env.uploadConcurrency = g.gw.config.cache.uploadConcurrency;
    const s = await session(g);
    env.quantum = s.c.session.requestQuantum;
    const fork = await s.fork('band', true);
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    write = await timed('write', BYTES, () => afpWrite(fork, BYTES));
    progress('AFP write into the cache', write);
    const syncT = await timed('sync', BYTES, () => fork.sync());
    const all = since(t0, cpu0, BYTES);
    progress('AFP write + FPSyncFork (all uploaded)', all);
    notes.push(
      `fs store: FPSyncFork after the last write reply took ${syncT.seconds.toFixed(2)} s` +
        (syncT.seconds < 0.1 * write.seconds ? ' (the uploads kept up with the writes: the writes set the pace)' : ' (uploads lagged the writes)'),
    );
    if (PHASES.has('write')) {
      rows.push({ figure: 'AFP sequential write into the cache', value: write, ...(rawDisk ? { reference: rawDisk } : {}), target: 0.7 });
      rows.push({ figure: 'AFP write + sync (all uploaded, fs store)', value: all, ...(rawDisk ? { reference: rawDisk } : {}) });
    }
    if (PHASES.has('read') && wanted('read')) {
      read = await timed('read', BYTES, () => afpRead(fork, BYTES));
      progress('AFP read from the cache', read);
    }
    await fork.close();
    await s.c.close();
  } finally {
    await g.stop(); // its timers and threads stay out of what follows
  }

  // Transport references, DSI-shaped, with nothing behind them.
  const stream = (direction: 'up' | 'down') => async () => {
    const r = await rawRequestStream({ direction, totalBytes: BYTES, pieceBytes: MiB, inFlight: PIPELINE, source: (i) => slice(i) });
    if (r.bytes !== BYTES) throw new Error(`raw stream moved ${r.bytes} bytes`);
  };
  if (PHASES.has('write') && DIAG && wanted('raw-tcp-up')) {
    const up = await timed('raw-tcp-up', BYTES, stream('up'));
    progress(`raw loopback TCP, 1 MiB requests, ${PIPELINE} in flight`, up);
    rows.push({ figure: 'diag: AFP write vs raw TCP upload', value: write, reference: up });
  }
  if (PHASES.has('read') && wanted('raw-tcp-down')) {
    const down = await timed('raw-tcp-down', BYTES, stream('down'));
    progress(`raw loopback TCP, 1 MiB replies, ${PIPELINE} in flight`, down);
    if (read) rows.push({ figure: 'AFP read from the cache', value: read, reference: down, target: 0.5 });
  }

  if (PHASES.has('write') && DIAG && (wanted('held-write') || wanted('held-sync'))) {
    const h = await gateway({ users: [USER], config: { cache: HOLD } });
    try {
      const s = await session(h);
      const fork = await s.fork('held', true);
      let bytes = 0;
      const w = await timed('held-write', BYTES, async () => {
        bytes = await afpWrite(fork, BYTES, env.blockSize ?? 4 * MiB);
      });
      w.bytes = bytes;
      progress('diag: AFP write, uploads held back', w);
      const drain = await timed('held-sync', bytes, () => fork.sync());
      progress('diag: FPSyncFork of it: fs store upload drain', drain);
      rows.push({ figure: 'diag: AFP write, uploads held back', value: w, ...(rawDisk ? { reference: rawDisk } : {}) });
      rows.push({ figure: 'diag: fs store upload drain (sync)', value: drain, ...(rawDisk ? { reference: rawDisk } : {}) });
      await fork.close();
      await s.c.close();
    } finally {
      await h.stop();
    }
  }
}

// ---- 4. the upload pipeline against raw S3 ---------------------------------------------

async function s3Phases(): Promise<void> {
  const server: S3Server = await startS3({ bucket: 'bench' });
  s3rverPid = findS3rver();
  const work = await mkdtemp(join(tmpdir(), 'afpgw-bench-dp-'));
  const gateways: TestGateway[] = [];
  const start = async (name: string, cache: Record<string, unknown>, users: { name: string; password: string }[]) => {
    const g = await gateway({
      config: {
        metadata: { backend: 'embedded', path: join(work, 'meta') },
        objects: s3Config(server, { prefix: 'gw' }),
        cache: { ...cache, dir: join(work, `cache-${name}`) },
      },
    });
    gateways.push(g);
    for (const u of users) await g.gw.meta.createUser({ name: u.name, password: await hashPassword(u.password, TEST_SCRYPT) });
    return g;
  };
  try {
    const a = await start('a', CACHE, [USER]);
    const block = a.gw.config.volumes[0]!.blockSize;
    const width = a.gw.config.cache.uploadConcurrency;
    env.blockSize ??= block;
    env.uploadConcurrency ??= width;
    const objects = Math.ceil(S3_BYTES / block);
    const bytes = objects * block;

    // Raw PUT and GET of one block's worth per object, different bytes per object.
    const body = (i: number) => {
      const out = Buffer.allocUnsafe(block);
      for (let k = 0; k < block / MiB; k++) slice(i * (block / MiB) + k).copy(out, k * MiB);
      return out;
    };
    const bodies = Array.from({ length: Math.min(objects, 16) }, (_, i) => body(i));
    const store = new S3ObjectStore(s3Config(server, { prefix: 'raw' }));
    const key = (i: number) => `o/${String(i).padStart(5, '0')}`;
    const getAll = (w: number) => () =>
      pipelined(objects, w, async (i) => {
        if ((await store.get(key(i))).length !== block) throw new Error(`short GET of ${key(i)}`);
      });
    let put: Timed;
    let get1: Timed | undefined;
    try {
      // Warm-up, untimed: connections and the SDK's first-request set-up stay out of the reference.
      await pipelined(width, width, (i) => store.put(`warm/${i}`, bodies[i % bodies.length]!));
      put = await timed('s3-put', bytes, () => pipelined(objects, width, (i) => store.put(key(i), bodies[i % bodies.length]!)));
      progress(`raw S3 PUT ${block / MiB} MiB objects, concurrency ${width}`, put);
      if (wanted('s3-get')) {
        const get = await timed('s3-get', bytes, getAll(width));
        progress(`raw S3 GET, concurrency ${width}`, get);
        rows.push({ figure: `info: raw S3 GET c=${width} (ref PUT)`, value: get, reference: put });
        get1 = await timed('s3-get1', bytes, getAll(1));
        progress('raw S3 GET, concurrency 1', get1);
      }
      for (let i = 0; i < objects; i++) await store.delete(key(i));
      for (let i = 0; i < width; i++) await store.delete(`warm/${i}`);
    } finally {
      await store.close();
    }

    if (wanted('s3') || wanted('cold')) {
      const s = await session(a);
      const fork = await s.fork('band', true);
      let into!: Timed;
      const upload = await timed('s3', bytes, async () => {
        into = await timed('s3-write', bytes, () => afpWrite(fork, bytes));
        await fork.sync();
      });
      progress('AFP write into the cache (S3 behind)', into);
      progress('AFP write + FPSyncFork (S3): upload pipeline', upload);
      const lag = upload.seconds - into.seconds;
      notes.push(
        `S3: FPSyncFork after the last write reply took ${lag.toFixed(2)} s` +
          (lag < 0.1 * into.seconds ? ' (the uploads kept up with the writes: the AFP writes set the pace)' : ' (uploads lagged the writes)'),
      );
      rows.push({ figure: 'upload pipeline (write..sync, S3)', value: upload, reference: put, target: 0.9 });
      await fork.close();
      await s.c.close();
    }
    // One LMDB environment per process: the writer goes before the next node opens it.
    await a.stop();

    if ((DIAG && wanted('s3-drain')) || (COLD && wanted('cold'))) {
      const b = await start('b', HOLD, []);
      const s = await session(b);
      if (COLD && wanted('cold')) {
        const cold = await s.fork('band', false);
        const t = await timed('cold', bytes, () => afpRead(cold, bytes));
        progress('AFP cold read (empty cache, S3)', t);
        // Against GETs one at a time: the server runs one FPReadExt at a time.
        rows.push({ figure: `info: AFP cold read, S3 (ref GET c=1)`, value: t, ...(get1 ? { reference: get1 } : {}) });
        await cold.close();
      }
      if (DIAG && wanted('s3-drain')) {
        const fork = await s.fork('held', true);
        const written = await afpWrite(fork, bytes, block);
        const drain = await timed('s3-drain', written, () => fork.sync());
        progress('diag: FPSyncFork of a dirty cache: S3 drain', drain);
        rows.push({ figure: 'diag: upload drain alone (sync, S3)', value: drain, reference: put });
        await fork.close();
      }
      await s.c.close();
    }
  } finally {
    for (const g of gateways) await g.stop().catch(() => undefined);
    s3rverPid = undefined;
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

function cpuCell(t: Timed): string {
  return t.s3rverCpu !== undefined ? `${t.cpu.toFixed(2)}+${t.s3rverCpu.toFixed(2)}` : t.cpu.toFixed(2);
}

// ---- main ------------------------------------------------------------------------------

const env: { blockSize?: number; quantum?: number; uploadConcurrency?: number } = {};

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadavg()[0]!;
  console.log(`data path: ${BYTES / MiB} MiB (BENCH_BYTES), S3 ${S3_BYTES / MiB} MiB (BENCH_S3_BYTES), ${PIPELINE} requests in flight`);
  let rawDisk: Timed | undefined;
  if (PHASES.has('disk') || PHASES.has('write')) {
    const dir = await mkdtemp(join(tmpdir(), 'afpgw-bench-disk-'));
    try {
      rawDisk = await rawDiskWrite(dir, 'raw', false);
      progress('raw disk write, 1 MiB pwrites, no fsync', rawDisk);
      rows.push({ figure: 'raw disk write (no fsync)', value: rawDisk });
      if (!PROFILE) {
        const synced = await rawDiskWrite(dir, 'raw-fsync', true);
        progress('raw disk write + final fsync', synced);
        rows.push({ figure: 'info: raw disk write + final fsync', value: synced, reference: rawDisk });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  try {
    if (PHASES.has('write') || PHASES.has('read')) await cachePhases(rawDisk);
  } finally {
    if (redisForBench) await (await redisForBench).stop();
  }
  if (PHASES.has('s3')) await s3Phases();

  console.log('');
  console.log(`${'figure'.padEnd(42)} ${'MiB/s'.padStart(8)} ${'ref MiB/s'.padStart(10)} ${'ratio'.padStart(7)} ${'target'.padStart(7)}  ${'cpu'.padStart(4)}  verdict`);
  console.log('-'.repeat(100));
  for (const r of rows) {
    const ratio = r.reference ? mibps(r.value) / mibps(r.reference) : undefined;
    const verdict = r.target === undefined || ratio === undefined ? '' : ratio >= r.target ? 'ok' : 'SHORT';
    console.log(
      `${r.figure.padEnd(42)} ${mibps(r.value).toFixed(1).padStart(8)} ${(r.reference ? mibps(r.reference).toFixed(1) : '-').padStart(10)} ${(ratio !== undefined ? `${ratio.toFixed(2)}x` : '-').padStart(7)} ${(r.target !== undefined ? `>=${r.target}x` : 'info').padStart(7)}  ${cpuCell(r.value)}  ${verdict}`,
    );
  }
  for (const n of notes) console.log(`note: ${n}`);
  if (rows.some((r) => r.value.s3rverCpu !== undefined)) console.log('note: cpu "a+b": this process + the s3rver process, in cores');
  console.log('');
  console.log(
    `environment: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), linux ${release()}, tmpdir ${tmpdir()}, ` +
      `block ${env.blockSize !== undefined ? `${env.blockSize / MiB} MiB` : '?'}, quantum ${env.quantum !== undefined ? `${env.quantum / MiB} MiB` : '?'}, ` +
      `metadata ${META} (BENCH_META), cache ${CACHE.size} (dirty ${CACHE.dirtyLimit}), uploadConcurrency ${env.uploadConcurrency ?? '?'}, ${PIPELINE} requests in flight, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}; ` +
      `cpu = process CPU time (all threads) / wall time; total ${((Date.now() - started) / 1000).toFixed(0)} s; ` +
      `1-min load average ${loadBefore.toFixed(2)} at the start (other processes, and the build when run through npm run bench), ${loadavg()[0]!.toFixed(2)} at the end (includes this bench)`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
