/**
 * A Time Machine backup's band traffic through the gateway, against the same traffic on
 * plain local files measured in the same run.
 *
 * The workload is test/data/time-machine.ts's (timeMachineWorkload): DHX2 login, session
 * token, the sparsebundle created and attached (token held with deny-write), then a plan of
 * band writes (4 KiB..1 MiB FPWriteExt at random offsets inside the bands, BENCH_PIPELINE in
 * flight), FPFlushFork / FPSyncFork at intervals, bands grown and shrunk (FPSetForkParms) and
 * deleted, a dropped connection with requests in flight (primary reconnect, replays) and a
 * Mac restart (lock steal), every band synced at the end. The figure is the plan's band bytes
 * over the time its band traffic took (syncs included; the reconnect and the restart's
 * login and lock steal excluded, they are reported separately).
 *
 *   reference: the same plan (same offsets, sizes and data, fdatasync where the Mac sent
 *              FPFlushFork, fsync where it sent FPSyncFork, ftruncate, unlink) against plain
 *              files in os.tmpdir() (where the gateway's cache lives) with fs writes.
 *   AFP, fs store:  embedded metadata, the fs object store (under the same tmpdir).
 *   AFP, S3:        embedded metadata, S3 on s3rver (a child process on the same cores).
 *
 * Each AFP run is then checked byte for byte against the model through a fresh session
 * (untimed), so a figure never stands for wrong bytes.
 *
 * Run: npm run bench -- time-machine
 * Knobs: BENCH_TM_MIB (band bytes written, default 256), BENCH_TM_BAND (band size, default
 * 8 MiB, the classic hdiutil band), BENCH_TM_BANDS (bands in the image, default 48),
 * BENCH_TM_SEED (the plan, default 1), BENCH_TM_OPEN (bands the Mac keeps open, default 12;
 * the least recently used is flushed and closed, and a close starts the upload of its dirty
 * blocks, so this sets much of the gateway's write amplification), BENCH_TM_VARIANTS (comma
 * list of fs, s3; default both), BENCH_PIPELINE (requests in flight, default 4).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PIPELINE } from '../src/client/afp-fork.js';
import { parseSize } from '../src/config/size.js';
import { startTestGateway, type TestGateway } from '../test/helpers/gateway.js';
import { s3Config, startS3 } from '../test/helpers/s3-server.js';
import { makePlan, MiB, newPool, runPlanOnDisk, timeMachineWorkload, TM_USER, TM_VOLUME, verifyBundle, type TmPlan, type TmStats } from '../test/data/time-machine.js';

const TOTAL = Number(process.env.BENCH_TM_MIB ?? 256) * MiB;
const BAND = parseSize(process.env.BENCH_TM_BAND ?? '8MiB');
const BANDS = Number(process.env.BENCH_TM_BANDS ?? 48);
const SEED = Number(process.env.BENCH_TM_SEED ?? 1);
const OPEN = Number(process.env.BENCH_TM_OPEN ?? 12);
const PIPELINE = Number(process.env.BENCH_PIPELINE ?? DEFAULT_PIPELINE);
const VARIANTS = new Set((process.env.BENCH_TM_VARIANTS || 'fs,s3').split(',').map((s) => s.trim()));
const CACHE = { size: '4GiB', dirtyLimit: '2GiB' };

interface Measured {
  bytes: number;
  seconds: number;
  /** Process CPU over wall time (gateway and client share this process); undefined for the reference. */
  cpu?: number;
}

interface Row {
  figure: string;
  value: Measured;
  reference?: Measured;
}

const rows: Row[] = [];
const notes: string[] = [];
const mibps = (m: Measured) => m.bytes / MiB / m.seconds;

function progress(what: string, m: Measured, extra = ''): void {
  console.log(`  ${what.padEnd(52)} ${mibps(m).toFixed(1).padStart(8)} MiB/s  ${m.seconds.toFixed(2).padStart(7)} s${m.cpu !== undefined ? `  cpu ${m.cpu.toFixed(2)}` : ''}${extra}`);
}

async function reference(plan: TmPlan, pool: Buffer): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-bench-tm-disk-'));
  try {
    const seconds = await runPlanOnDisk(dir, plan, pool);
    return { bytes: plan.bandBytes, seconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function afpRun(label: string, g: TestGateway, plan: TmPlan, pool: Buffer, ref: Measured): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { model, stats } = await timeMachineWorkload({ host: g.host, port: g.port, plan, pool, depth: PIPELINE });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const bands: Measured = { bytes: stats.bandBytes, seconds: stats.bandSeconds, cpu: (cpu.user + cpu.system) / 1e6 / wall };
  const whole: Measured = { bytes: stats.bandBytes, seconds: stats.totalSeconds };
  progress(`AFP band writes incl. syncs, ${label}`, bands);
  progress(`AFP whole backup (create .. detach), ${label}`, whole);
  rows.push({ figure: `band writes + syncs, ${label}`, value: bands, reference: ref });
  rows.push({ figure: `info: whole backup, ${label}`, value: whole, reference: ref });
  notes.push(reconnectNote(label, stats));
  const t1 = performance.now();
  const checked = await verifyBundle(g.host, g.port, model);
  console.log(`  (${label}: ${(checked / MiB).toFixed(1)} MiB in ${model.files.size} files verified against the model in ${((performance.now() - t1) / 1000).toFixed(1)} s)`);
}

function reconnectNote(label: string, s: TmStats): string {
  return (
    `${label}: reconnect ${s.reconnectSeconds.toFixed(2)} s (${s.replayed} requests replayed, ${s.ranBeforeDrop} had run before the drop), ` +
    `restart + lock steal ${s.restartSeconds.toFixed(2)} s`
  );
}

async function fsVariant(plan: TmPlan, pool: Buffer, ref: Measured): Promise<void> {
  const g = await startTestGateway({
    users: [TM_USER],
    config: { volumes: [{ name: TM_VOLUME, timeMachine: true }], cache: CACHE },
  });
  try {
    env.blockSize = g.gw.config.volumes[0]!.blockSize;
    await afpRun('fs store', g, plan, pool, ref);
  } finally {
    await g.stop();
  }
}

async function s3Variant(plan: TmPlan, pool: Buffer, ref: Measured): Promise<void> {
  const server = await startS3({ bucket: 'bench-tm' });
  const work = await mkdtemp(join(tmpdir(), 'afpgw-bench-tm-'));
  let g: TestGateway | undefined;
  try {
    g = await startTestGateway({
      users: [TM_USER],
      config: {
        volumes: [{ name: TM_VOLUME, timeMachine: true }],
        metadata: { backend: 'embedded', path: join(work, 'meta') },
        objects: s3Config(server, { prefix: 'tm' }),
        cache: { ...CACHE, dir: join(work, 'cache') },
      },
    });
    env.blockSize = g.gw.config.volumes[0]!.blockSize;
    await afpRun('S3 (s3rver)', g, plan, pool, ref);
  } finally {
    await g?.stop();
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

const env: { blockSize?: number } = {};

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadavg()[0]!;
  const plan = makePlan({ bandSize: BAND, bands: BANDS, totalBytes: TOTAL, seed: SEED, maxOpen: OPEN });
  const pool = newPool();
  const c = plan.counts;
  console.log(
    `time machine: ${(plan.bandBytes / MiB).toFixed(1)} MiB of band writes (BENCH_TM_MIB) into ${BANDS} bands of ${BAND / MiB} MiB (${OPEN} open at most), seed ${SEED}, ` +
      `${PIPELINE} requests in flight; ${c.write} writes, ${c.sync ?? 0} FPSyncFork, ${c.flush ?? 0} FPFlushFork, ${c.truncate ?? 0} FPSetForkParms, ` +
      `${c.delete ?? 0} FPDelete, ${c.open ?? 0} opens, ${c.append ?? 0} appends`,
  );
  const ref = await reference(plan, pool);
  progress('local disk: same plan, pwrite + fdatasync/fsync', ref);
  rows.push({ figure: 'reference: local files (pwrite, fsync)', value: ref });
  if (VARIANTS.has('fs')) await fsVariant(plan, pool, ref);
  if (VARIANTS.has('s3')) await s3Variant(plan, pool, ref);

  console.log('');
  console.log(`${'figure'.padEnd(44)} ${'MiB/s'.padStart(8)} ${'ref MiB/s'.padStart(10)} ${'ratio'.padStart(7)}  ${'cpu'.padStart(4)}`);
  console.log('-'.repeat(80));
  for (const r of rows) {
    const ratio = r.reference ? mibps(r.value) / mibps(r.reference) : undefined;
    console.log(
      `${r.figure.padEnd(44)} ${mibps(r.value).toFixed(1).padStart(8)} ${(r.reference ? mibps(r.reference).toFixed(1) : '-').padStart(10)} ${(ratio !== undefined ? `${ratio.toFixed(2)}x` : '-').padStart(7)}  ${r.value.cpu !== undefined ? r.value.cpu.toFixed(2) : '   -'}`,
    );
  }
  for (const n of notes) console.log(`note: ${n}`);
  console.log('note: ratio = AFP MiB/s / local-disk MiB/s for the same plan; cpu = this process (client + gateway) CPU time / wall time, in cores');
  console.log('');
  console.log(
    `environment: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), linux ${release()}, tmpdir ${tmpdir()}, ` +
      `gateway block ${env.blockSize !== undefined ? `${env.blockSize / MiB} MiB` : '?'}, cache ${CACHE.size} (dirty ${CACHE.dirtyLimit}); ` +
      `total ${((Date.now() - started) / 1000).toFixed(0)} s; 1-min load average ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
