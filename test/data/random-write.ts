/**
 * The data path end to end, at the size Time Machine works at: a 1 GiB file written through
 * the AFP client in random-sized pieces at random offsets, with FPSyncFork at random points,
 * read back and compared with a local model; then read again by a gateway with an empty cache
 * (only what reached S3 and the metadata store). Both metadata stores, S3 on s3rver.
 * Holes must cost no objects. AFPGW_TEST_BIG_BYTES shrinks the file for a quick local run.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hashPassword } from '../../src/auth/password.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { S3ObjectStore } from '../../src/objects/s3-store.js';
import type { Backend } from '../helpers/backends.js';
import { TEST_SCRYPT } from '../helpers/gateway.js';
import { s3Config } from '../helpers/s3-server.js';
import { BytePool, dataWorld, firstDifference, MiB, RW, session, USER } from './helpers.js';

const SIZE = Number(process.env.AFPGW_TEST_BIG_BYTES ?? 1024 * MiB);
const BLOCK = 4 * MiB;
const BLOCKS = Math.ceil(SIZE / BLOCK);
/** Blocks no write touches: they must read as zeros and have no object. */
const HOLES = new Set(Array.from({ length: Math.max(2, Math.floor(BLOCKS / 16)) }, (_, i) => 1 + i * Math.floor(BLOCKS / Math.max(2, Math.floor(BLOCKS / 16)))).filter((b) => b < BLOCKS - 1));

function touchesHole(offset: number, length: number): boolean {
  for (let b = Math.floor(offset / BLOCK); b <= Math.floor((offset + length - 1) / BLOCK); b++) if (HOLES.has(b)) return true;
  return false;
}

export function randomWriteSuite(backend: Backend): void {
  describe(`1 GiB of random writes through AFP (${backend} metadata, S3)`, () => {
    const world = dataWorld(backend, 'rw', (name, { s3, work }) => ({
      objects: { ...s3Config(s3, { prefix: `rw-${backend}` }) },
      cache: { dir: join(work, `cache-${name}`), size: '3GiB', dirtyLimit: '512MiB' },
    }));
    const start = (name: string) => world.start(name);

    it('reads back byte-exact, from the cache and from a cold node; holes cost no objects', async (t) => {
      if (!world.ready) return t.skip('redis-server not installed');
      const a = await start('a');
      await a.gw.meta.createUser({ name: USER.name, password: await hashPassword(USER.password, TEST_SCRYPT) });
      const { c, v } = await session(a.host, a.port);
      await v.createFile(ROOT, 'band', true);
      const fork = await v.openFork(ROOT, 'band', { mode: RW });
      const model = Buffer.alloc(SIZE);
      const pool = new BytePool();
      let written = 0;
      let syncs = 0;
      let writes = 0;
      const t0 = Date.now();
      // Writes go out 4 at a time, as a Mac pipelines them; ranges in flight never overlap,
      // so the model's order of application does not matter.
      const inFlight = new Map<number, [number, number]>();
      const overlapsInFlight = (o: number, n: number) => [...inFlight.values()].some(([s, e]) => o < e && s < o + n);
      let id = 0;
      const pending = new Set<Promise<void>>();
      while (written < SIZE) {
        // Sizes from one byte to 4 MiB, small ones as common as large: Time Machine rewrites
        // bands in pieces of every size.
        const n = Math.random() < 0.5 ? 1 + Math.floor(Math.random() * 64 * 1024) : 1 + Math.floor(Math.random() * 4 * MiB);
        const o = Math.floor(Math.random() * (SIZE - n));
        if (touchesHole(o, n) || overlapsInFlight(o, n)) continue;
        writes++;
        const data = pool.take(n);
        data.copy(model, o);
        const k = id++;
        inFlight.set(k, [o, o + n]);
        const p = fork.write(o, data, 1).then(() => {
          inFlight.delete(k);
        });
        pending.add(p);
        void p.finally(() => pending.delete(p));
        written += n;
        if (pending.size >= 4) await Promise.race(pending);
        if (Math.random() < 6 / 600) {
          await Promise.all(pending);
          await fork.sync();
          syncs++;
        }
      }
      // The last byte, so the file is exactly SIZE long.
      await Promise.all(pending);
      const last = pool.take(1);
      last.copy(model, SIZE - 1);
      await fork.write(SIZE - 1, last);
      await fork.sync();
      assert.ok(syncs > 0);
      t.diagnostic(`${writes} writes, ${syncs} syncs, ${((Date.now() - t0) / 1000).toFixed(1)} s to write and sync`);
      assert.equal(await fork.length(), SIZE);
      const t1 = Date.now();
      assert.equal(await firstDifference(fork, model), -1, 'read back through the writing node');
      t.diagnostic(`${((Date.now() - t1) / 1000).toFixed(1)} s to read back from the cache`);
      await fork.close();
      await c.close();

      // Which blocks have objects: never a hole, every block with data.
      const store = new S3ObjectStore(s3Config(world.s3, { prefix: `rw-${backend}` }));
      const indices = new Set<number>();
      for await (const o of store.list('')) {
        const m = /\/d(\d+)-\d+$/.exec(o.key);
        if (m) indices.add(Number(m[1]));
      }
      await store.close();
      for (const h of HOLES) assert.ok(!indices.has(h), `hole block ${h} has an object`);
      // Random offsets may miss a block altogether: exactly the blocks with data have objects.
      for (let b = 0; b < BLOCKS; b++) {
        const hasData = model.subarray(b * BLOCK, Math.min(SIZE, (b + 1) * BLOCK)).some((x) => x !== 0);
        assert.equal(indices.has(b), hasData, `block ${b}: data ${hasData}, object ${indices.has(b)}`);
      }

      // A node with an empty cache sees exactly the synced bytes.
      if (backend === 'embedded') await a.stop(); // one LMDB environment, one process
      const b = await start('b');
      const s = await session(b.host, b.port);
      const cold = await s.v.openFork(ROOT, 'band', { mode: RW });
      assert.equal(await cold.length(), SIZE);
      const t2 = Date.now();
      assert.equal(await firstDifference(cold, model), -1, 'read back through a cold node');
      t.diagnostic(`${((Date.now() - t2) / 1000).toFixed(1)} s to read back through a cold node`);
      await cold.close();
      await s.c.close();
    });
  });
}
