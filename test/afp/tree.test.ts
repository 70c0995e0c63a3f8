import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { Redis } from 'ioredis';
import { AfpClient } from '../../src/client/afp-client.js';
import { ROOT, type AfpVolume } from '../../src/client/afp-volume.js';
import { SET_CLEAR } from '../../src/afp/params.js';
import { kFPDirNotEmpty, kFPObjectExists, kFPObjectNotFound } from '../../src/afp/result-codes.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { lastingKeys } from '../helpers/redis-keys.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { BACKENDS, type Backend } from '../helpers/backends.js';
import { resultCode as code } from '../helpers/afp.js';

const USER = { name: 'treeuser', password: 'tree-pw' };

interface Env {
  g: TestGateway;
  redis?: RedisServer;
  /** Every key the volume owns in the store, read directly (after the gateway stopped, for LMDB). */
  keys(): Promise<string[]>;
  stop(): Promise<void>;
}

async function start(backend: Backend): Promise<Env | undefined> {
  if (backend === 'redis') {
    if (!redisAvailable()) {
      if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
      return undefined;
    }
    const redis = await startRedis();
    const g = await startTestGateway({ users: [USER], config: { metadata: { backend: 'redis', url: redis.url, keyPrefix: 'tree' } } });
    return {
      g,
      redis,
      async keys() {
        const r = new Redis(redis.url);
        try {
          return await lastingKeys(r, 'tree:{v:timemachine}:*');
        } finally {
          r.disconnect();
        }
      },
      async stop() {
        await g.stop();
        await redis.stop();
      },
    };
  }
  const g = await startTestGateway({ users: [USER] });
  let stopped = false;
  return {
    g,
    async keys() {
      if (!stopped) {
        await g.gw.stop(0);
        stopped = true;
      }
      const db = openLmdb({ path: join(g.dataDir, 'meta') });
      try {
        const out: string[] = [];
        for (const k of db.getKeys({ start: 'ns:timemachine:', end: 'ns:timemachine;' })) out.push(String(k));
        return out.sort();
      } finally {
        await db.close();
      }
    },
    async stop() {
      await g.stop().catch(() => undefined);
    },
  };
}

async function connect(g: TestGateway): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: USER.name, password: USER.password });
  return { c, v: await c.openVolume('TimeMachine') };
}

/** Runs the tasks with up to `n` requests outstanding on the connection (pipelined). */
async function pipelined<T>(tasks: (() => Promise<T>)[], n = 16): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < tasks.length; i += n) out.push(...(await Promise.all(tasks.slice(i, i + n).map((t) => t()))));
  return out;
}


/** Walks the whole volume through the client: path → { id, isDir }. */
async function walk(v: AfpVolume, dirId = ROOT, prefix = ''): Promise<Map<string, { id: number; isDir: boolean; offspring?: number }>> {
  const out = new Map<string, { id: number; isDir: boolean; offspring?: number }>();
  for (const e of await v.enumerateAll(dirId, '', { reqCount: 200 })) {
    const path = prefix + e.params.utf8Name!.normalize('NFC');
    out.set(path, { id: e.params.nodeId!, isDir: e.isDir, ...(e.isDir ? { offspring: e.params.offspringCount! } : {}) });
    if (e.isDir) for (const [p, x] of await walk(v, e.params.nodeId!, path + '/')) out.set(p, x);
  }
  return out;
}

for (const backend of BACKENDS) {
  describe(`a tree of thousands through the client (${backend} store)`, () => {
    test('build, rename, move, set every field, delete, and nothing is left', async (t) => {
      const env = await start(backend);
      if (!env) return t.skip('redis-server not installed (apt-get install redis-server)');
      try {
        const baseline = await (async () => {
          // What a fresh volume holds, to compare with what is left at the end.
          if (backend === 'redis') return env.keys();
          return null;
        })();
        const { c, v } = await connect(env.g);
        const model = new Map<string, boolean>(); // path → isDir
        const tops: number[] = [];
        for (let i = 0; i < 30; i++) {
          tops.push(await v.createDir(ROOT, `top-${i}`));
          model.set(`top-${i}`, true);
        }
        const subs: { id: number; path: string }[] = [];
        await pipelined(
          tops.flatMap((id, i) =>
            [0, 1, 2, 3, 4].map((j) => async () => {
              subs.push({ id: await v.createDir(id, `sub-${j}`), path: `top-${i}/sub-${j}` });
              model.set(`top-${i}/sub-${j}`, true);
            }),
          ),
        );
        await pipelined(
          subs.flatMap((s) =>
            Array.from({ length: 14 }, (_, k) => async () => {
              await v.createFile(s.id, `file-${k}.band`);
              model.set(`${s.path}/file-${k}.band`, false);
            }),
          ),
        );
        assert.equal(model.size, 30 + 150 + 2100);

        // Rename every third file, move ten subdirectories under other tops, move some files up.
        const renames = [...model.keys()].filter((p, i) => !model.get(p) && i % 3 === 0);
        await pipelined(
          renames.map((p) => async () => {
            const dir = p.slice(0, p.lastIndexOf('/'));
            const name = p.slice(p.lastIndexOf('/') + 1);
            await v.rename(ROOT, p.split('/'), `renamed-${name}`);
            model.delete(p);
            model.set(`${dir}/renamed-${name}`, false);
          }),
        );
        for (let i = 0; i < 10; i++) {
          const from = `top-${i}/sub-4`;
          const to = `top-${29 - i}`;
          await v.moveAndRename(ROOT, from.split('/'), ROOT, [to], `moved-${i}`);
          for (const p of [...model.keys()].filter((k) => k === from || k.startsWith(from + '/'))) {
            const isDir = model.get(p)!;
            model.delete(p);
            model.set(`${to}/moved-${i}${p.slice(from.length)}`, isDir);
          }
        }
        const seen = await walk(v);
        assert.deepEqual([...seen.keys()].sort(), [...model.keys()].map((k) => k.normalize('NFC')).sort());
        for (const [p, x] of seen) assert.equal(x.isDir, model.get(p), p);

        // Set every settable field on a sample, with xattrs, and read them back.
        const sample = [...seen.entries()].filter((_, i) => i % 97 === 0);
        for (const [p, x] of sample) {
          const fi = Buffer.alloc(32, (x.id * 7) & 0xff);
          const dates = { createdAt: Date.UTC(2019, 3, 4), modifiedAt: Date.UTC(2023, 5, 6), backupAt: Date.UTC(2024, 7, 8) };
          await v.setParms('either', ROOT, p.split('/'), 0x0001 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x8000, {
            attributes: SET_CLEAR | 0x0001,
            ...dates,
            finderInfo: fi,
            unixPrivs: { uid: 0, gid: 0, mode: x.isDir ? 0o040775 : 0o100664, accessRights: 0 },
          });
          await v.setXattr(ROOT, p.split('/'), 'com.apple.TimeMachine.SnapshotHistory', Buffer.from(`value of ${p}`));
          const got = (await v.getFileDirParms(ROOT, p.split('/'))).params;
          assert.equal(got.attributes! & 0x0001, 0x0001);
          assert.equal(got.createdAt, dates.createdAt);
          assert.equal(got.modifiedAt, dates.modifiedAt);
          assert.equal(got.backupAt, dates.backupAt);
          assert.deepEqual(got.finderInfo, fi);
          assert.equal(got.unixPrivs!.mode, x.isDir ? 0o040775 : 0o100664);
          assert.deepEqual(await v.getXattr(ROOT, p.split('/'), 'com.apple.TimeMachine.SnapshotHistory'), Buffer.from(`value of ${p}`));
        }

        // Delete everything, deepest first; a directory refuses while it has children.
        assert.equal(await code(v.delete(ROOT, 'top-0')), kFPDirNotEmpty);
        const byDepth = [...model.keys()].sort((a, b) => b.split('/').length - a.split('/').length);
        const depths = [...new Set(byDepth.map((p) => p.split('/').length))];
        for (const d of depths) await pipelined(byDepth.filter((p) => p.split('/').length === d).map((p) => () => v.delete(ROOT, p.split('/'))));
        const root = (await v.getFileDirParms(ROOT, '')).params;
        assert.equal(root.offspringCount, 0);
        const stats = await env.g.gw.meta.namespace('timemachine', { fold: (s) => s }).stats();
        assert.equal(stats.nodes, 1, 'only the root is left');
        assert.equal(stats.bytes, 0);
        await c.close();
        const left = await env.keys();
        // Exactly what a fresh volume holds: its metadata record and the root node.
        assert.deepEqual(left, baseline ?? ['ns:timemachine:meta', 'ns:timemachine:n:2']);
        assert.ok(left.length >= 2);
      } finally {
        await env.stop();
      }
    });

    test('two clients racing in one directory leave a consistent tree', async (t) => {
      const env = await start(backend);
      if (!env) return t.skip('redis-server not installed (apt-get install redis-server)');
      try {
        const a = await connect(env.g);
        const b = await connect(env.g);
        const race = await a.v.createDir(ROOT, 'race');

        // Exactly one of two simultaneous creates of a name wins.
        for (let i = 0; i < 40; i++) {
          const results = await Promise.all([code(a.v.createFile(race, `same-${i}`)), code(b.v.createFile(race, `same-${i}`))]);
          assert.deepEqual(results.sort(), [kFPObjectExists, 0].sort(), `round ${i}`);
        }

        // Random creates, renames and deletes from both clients over 20 names.
        let seed = 12345;
        const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
        const expected = new Set([0, kFPObjectExists, kFPObjectNotFound, kFPDirNotEmpty]);
        const op = (v: AfpVolume) => async (): Promise<number> => {
          const n = `n-${rnd(20)}`;
          switch (rnd(4)) {
            case 0:
              return code(v.createFile(race, n));
            case 1:
              return code(v.createDir(race, n));
            case 2:
              return code(v.rename(race, n, `n-${rnd(20)}`));
            default:
              return code(v.delete(race, n));
          }
        };
        const results = await Promise.all([pipelined(Array.from({ length: 400 }, () => op(a.v)), 8), pipelined(Array.from({ length: 400 }, () => op(b.v)), 8)]);
        for (const r of results.flat()) assert.ok(expected.has(r), `unexpected result ${r}`);

        // Every entry is reachable and resolves by ID to itself; counts agree; no orphans.
        const all = await walk(a.v);
        for (const [p, x] of all) {
          const byId = await a.v.getFileDirParms(x.isDir ? x.id : ROOT, x.isDir ? '' : p.split('/'));
          assert.equal(byId.params.nodeId, x.id, p);
          if (!x.isDir) assert.equal((await a.v.resolveId(x.id)).nodeId, x.id);
          else assert.equal(x.offspring, [...all.keys()].filter((k) => k.startsWith(p + '/') && !k.slice(p.length + 1).includes('/')).length, `offspring of ${p}`);
        }
        const stats = await env.g.gw.meta.namespace('timemachine', { fold: (s) => s }).stats();
        assert.equal(stats.nodes, all.size + 1, 'every node in the store is reachable from the root');
        await a.c.close();
        await b.c.close();
      } finally {
        await env.stop();
      }
    });
  });
}
