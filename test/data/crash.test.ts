/**
 * SIGKILL in the middle of a large write. The gateway runs as a real child process over
 * S3 (s3rver) and either metadata store. After the kill:
 * - every byte a FPSyncFork acknowledged reads back exactly from a second gateway process
 *   that has never seen the cache (only the stores);
 * - the restarted gateway replays its journal, so every write it acknowledged before the
 *   kill (page cache survives SIGKILL) reads back too, and reaches the stores on its next sync.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ROOT } from '../../src/client/afp-volume.js';
import { BACKENDS } from '../helpers/backends.js';
import { runCli, startServe } from '../helpers/cli.js';
import { TEST_SCRYPT } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { s3Config, startS3, type S3Server } from '../helpers/s3-server.js';
import { BytePool, firstDifference, MiB, RW, session, USER } from './helpers.js';

const TOTAL = 96 * MiB;
const SYNC_EVERY = 16 * MiB;
const KILL_AT = 72 * MiB;
const PIECE = MiB;

for (const backend of BACKENDS) {
  describe(`SIGKILL mid-write (${backend} metadata, S3)`, () => {
    let s3: S3Server;
    let redis: RedisServer | undefined;
    let work: string;
    const children = new Set<ChildProcess>();

    async function configFile(name: string, port: number): Promise<string> {
      const metadata = backend === 'redis' ? { backend: 'redis', url: redis!.url, keyPrefix: 'crash' } : { backend: 'embedded', path: join(work, 'meta') };
      const cfg = {
        serverName: `crash-${name}`,
        dataDir: join(work, name),
        listen: { host: '127.0.0.1', port, fallbackPort: null },
        metadata,
        objects: s3Config(s3, { prefix: `crash-${backend}` }),
        cache: { dir: join(work, name, 'cache'), dirtyLimit: '256MiB' },
        auth: { scrypt: TEST_SCRYPT },
        log: { level: 'info' },
      };
      const file = join(work, `${name}.yaml`);
      await writeFile(file, stringify(cfg));
      return file;
    }

    async function serve(file: string): Promise<ChildProcess> {
      const { child } = await startServe(['--config', file]);
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    }

    before(async () => {
      if (backend === 'redis' && !redisAvailable()) {
        if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
        return;
      }
      work = await mkdtemp(join(tmpdir(), 'afpgw-crash-'));
      s3 = await startS3({ bucket: 'crash' });
      if (backend === 'redis') redis = await startRedis();
    });

    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      await redis?.stop();
      await s3?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('keeps every synced byte, and the journal brings back every acknowledged one', async (t) => {
      if (backend === 'redis' && !redis) return t.skip('redis-server not installed');
      const port1 = await freePort();
      const file1 = await configFile('node1', port1);
      const added = await runCli(['user', 'add', USER.name, '--config', file1], `${USER.password}\n${USER.password}\n`);
      assert.equal(added.code, 0, added.stderr);

      let node1 = await serve(file1);
      const model = Buffer.alloc(TOTAL);
      const pool = new BytePool();
      let synced = 0;
      // Offsets whose write was acknowledged: the prefix below `acked` is contiguous.
      const ackedPieces = new Set<number>();
      {
        const { c, v } = await session('127.0.0.1', port1);
        await v.createFile(ROOT, 'band', true);
        const fork = await v.openFork(ROOT, 'band', { mode: RW });
        const inFlight = new Set<Promise<unknown>>();
        let killed = false;
        for (let at = 0; at < TOTAL && !killed; at += PIECE) {
          const data = pool.take(PIECE);
          data.copy(model, at);
          const p = fork.writeExt(at, data).then(
            () => ackedPieces.add(at),
            () => undefined, // the connection dies with the process
          );
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
          if (inFlight.size >= 4) await Promise.race(inFlight);
          if ((at + PIECE) % SYNC_EVERY === 0 && at + PIECE <= KILL_AT) {
            await Promise.all(inFlight);
            await fork.sync();
            synced = at + PIECE;
          }
          if (at + PIECE === KILL_AT) {
            // Writes are still in flight past the last sync: kill now.
            for (let more = 1; more <= 3; more++) {
              const o = at + more * PIECE;
              const d = pool.take(PIECE);
              d.copy(model, o);
              const q = fork.writeExt(o, d).then(() => ackedPieces.add(o), () => undefined);
              inFlight.add(q);
            }
            node1.kill('SIGKILL');
            killed = true;
          }
        }
        await Promise.allSettled([...inFlight]);
        await c.close().catch(() => undefined);
      }
      await exited(node1);
      assert.ok(synced >= SYNC_EVERY);
      let acked = 0;
      while (ackedPieces.has(acked)) acked += PIECE;
      t.diagnostic(`synced ${synced / MiB} MiB, acknowledged ${acked / MiB} MiB before SIGKILL`);
      assert.ok(acked >= synced);

      // The restarted node: its journal holds what it acknowledged.
      node1 = await serve(file1);
      {
        const { c, v } = await session('127.0.0.1', port1);
        const fork = await v.openFork(ROOT, 'band', { mode: RW });
        assert.ok((await fork.length()) >= acked, 'the journal restored the length');
        assert.equal(await firstDifference(fork, model, acked), -1, 'acknowledged bytes after restart');
        await fork.sync();
        await fork.close();
        await c.close();
      }

      // A second node with an empty cache: only the stores speak.
      if (backend === 'embedded') {
        node1.kill('SIGTERM');
        await exited(node1);
      }
      const port2 = await freePort();
      await serve(await configFile('node2', port2));
      {
        const { c, v } = await session('127.0.0.1', port2);
        const fork = await v.openFork(ROOT, 'band', { mode: ForkRead });
        assert.equal(await firstDifference(fork, model, synced), -1, 'synced bytes from the other node');
        assert.equal(await firstDifference(fork, model, acked), -1, 'acknowledged bytes, synced after the restart, from the other node');
        await fork.close();
        await c.close();
      }
    });
  });
}

const ForkRead = 0x0001;

function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => c.once('exit', () => r()));
}
