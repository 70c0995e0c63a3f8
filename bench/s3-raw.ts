/**
 * Raw PUT and GET throughput of 4 MiB objects through S3ObjectStore against a local s3rver, at
 * concurrency 1, 4 and 8: the reference the upload pipeline is compared with later. Also with
 * the SDK's request checksums off, to show what the default CRC32 of each body costs.
 *
 * s3rver writes each object to disk and MD5s it, so these figures bound what a test setup can
 * do on this machine, not what S3 can. Run: npm run bench -- s3-raw
 * BENCH_OBJECTS (default 48) sets the objects per run.
 */
import { randomBytes } from 'node:crypto';
import type { ChecksumMode } from '../src/config/schema.js';
import { S3ObjectStore } from '../src/objects/s3-store.js';
import { s3Config, startS3 } from '../test/helpers/s3-server.js';

const MiB = 1024 * 1024;
const OBJECT_SIZE = 4 * MiB;
const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 48);
const CONCURRENCY = [1, 4, 8];

async function run(n: number, width: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await op(next++);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return (n * OBJECT_SIZE) / MiB / seconds;
}

async function main(): Promise<void> {
  const server = await startS3({ bucket: 'bench' });
  // Distinct bodies, so nothing along the way can shortcut repeats.
  const bodies = Array.from({ length: 8 }, () => randomBytes(OBJECT_SIZE));
  const rows: string[] = [];
  try {
    for (const checksums of ['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as ChecksumMode[]) {
      for (const width of CONCURRENCY) {
        const prefix = `bench-${checksums}-${width}`;
        const store = new S3ObjectStore(s3Config(server, { prefix, requestChecksumCalculation: checksums, responseChecksumValidation: checksums }));
        try {
          const key = (i: number) => `o/${String(i).padStart(4, '0')}`;
          const put = await run(OBJECTS, width, (i) => store.put(key(i), bodies[i % bodies.length]!));
          const get = await run(OBJECTS, width, async (i) => {
            const got = await store.get(key(i));
            if (got.length !== OBJECT_SIZE) throw new Error(`short read of ${key(i)}: ${got.length}`);
          });
          rows.push(`${checksums.padEnd(15)} ${String(width).padStart(11)} ${put.toFixed(1).padStart(10)} ${get.toFixed(1).padStart(10)}`);
          for (let i = 0; i < OBJECTS; i++) await store.delete(key(i));
        } finally {
          await store.close();
        }
      }
    }
  } finally {
    await server.stop();
  }
  console.log(`s3rver on loopback, ${OBJECTS} objects of ${OBJECT_SIZE / MiB} MiB per run (MB/s = MiB/s)`);
  console.log(`${'checksums'.padEnd(15)} ${'concurrency'.padStart(11)} ${'PUT MB/s'.padStart(10)} ${'GET MB/s'.padStart(10)}`);
  for (const r of rows) console.log(r);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
