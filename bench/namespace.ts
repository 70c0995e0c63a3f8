/**
 * Namespace operations from one client with one request outstanding, as the Finder and
 * Time Machine issue them: create, stat (FPGetFileDirParms), enumerate, delete. The target
 * is ≥ 2,000 operations/s on the embedded store; the same run measures raw loopback TCP
 * round trips of the same size, the ceiling for any request/reply protocol here.
 * Run: npm run bench -- namespace    (BENCH_REDIS=1 adds the Redis store)
 */
import { AfpClient } from '../src/client/afp-client.js';
import { ROOT, type AfpVolume } from '../src/client/afp-volume.js';
import { DSI_HEADER_SIZE } from '../src/dsi/header.js';
import { startTestGateway } from '../test/helpers/gateway.js';
import { redisAvailable, startRedis } from '../test/helpers/redis-server.js';
import { rawPingPong } from './lib/raw-tcp.js';

const N = Number(process.env.BENCH_OPS ?? 5000);
const TARGET = 2000;

async function timed(label: string, n: number, run: (i: number) => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await run(i);
  const rate = n / (Number(process.hrtime.bigint() - started) / 1e9);
  console.log(`  ${label.padEnd(34)} ${rate.toFixed(0).padStart(7)} /s   ${(rate / TARGET).toFixed(2)}x target`);
  return rate;
}

async function run(label: string, metadata: Record<string, unknown>): Promise<void> {
  const g = await startTestGateway({ users: [{ name: 'bench', password: 'benchpw' }], config: { metadata, ops: { metricsListen: { host: '127.0.0.1', port: 0 } } } });
  try {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: 'bench', password: 'benchpw' });
    const v: AfpVolume = await c.openVolume('TimeMachine');
    const dir = await v.createDir(ROOT, 'bench');
    console.log(`${label}: ${N} objects in one directory`);
    await timed('create (FPCreateFile)', N, (i) => v.createFile(dir, `band-${i.toString(16)}`));
    await timed('stat (FPGetFileDirParms)', N, (i) => v.getFileDirParms(dir, `band-${i.toString(16)}`));
    const pages = Math.ceil(N / 200);
    const started = process.hrtime.bigint();
    await v.enumerateAll(dir, '', { reqCount: 200 });
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(`  ${'enumerate (FPEnumerateExt2, 200/page)'.padEnd(34)} ${(N / secs).toFixed(0).padStart(7)} entries/s (${(pages / secs).toFixed(0)} calls/s)   ${(N / secs / TARGET).toFixed(2)}x target`);
    await timed('rename (FPRename)', N, (i) => v.rename(dir, `band-${i.toString(16)}`, `b-${i}`));
    await timed('delete (FPDelete)', N, (i) => v.delete(dir, `b-${i}`));
    await c.close();
  } finally {
    await g.stop();
  }
}

// An FPGetFileDirParms request of a short name is ~30 bytes; its reply ~120.
const raw = await rawPingPong(DSI_HEADER_SIZE + 30, DSI_HEADER_SIZE + 120, 2);
console.log(`raw loopback TCP round trips (same sizes): ${raw.toFixed(0)} /s (${(raw / TARGET).toFixed(1)}x target: the ceiling)`);
await run('embedded store', { backend: 'embedded' });
if (process.env.BENCH_REDIS && redisAvailable()) {
  const redis = await startRedis();
  try {
    await run('redis store', { backend: 'redis', url: redis.url });
  } finally {
    await redis.stop();
  }
}
