/**
 * verifyVolume on both metadata stores, over a local object store: a volume built through
 * the namespace API, then damaged by writing the store's keys directly (as a bug or a lost
 * write would), found, repaired, and found clean afterwards.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { RootDatabase } from 'lmdb';
import { blockObjectKey } from '../../src/blocks/object-names.js';
import { RECOVERED_DIR, verifyVolume, type ProblemKind, type VerifyReport } from '../../src/blocks/verify.js';
import { namespaceKeys } from '../../src/meta/embedded-namespace.js';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import type { MetaStore } from '../../src/meta/meta-store.js';
import { ROOT_ID, type NamespaceStore } from '../../src/meta/namespace.js';
import { sortKey } from '../../src/meta/namespace-records.js';
import type { VolumeAudit } from '../../src/meta/verify-store.js';
import { RedisMetaStore } from '../../src/meta/redis-store.js';
import { FsObjectStore } from '../../src/objects/fs-store.js';
import { BACKENDS, type Backend } from '../helpers/backends.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis-server.js';

const FOLD = (n: string): string => n.normalize('NFC').toLowerCase();
const BLOCK = 64 * 1024;
const OWNER = { uid: 501, gid: 20, mode: 0o755 };
const PREFIX = 'vt';

/** Writes a store's keys behind the namespace's back. */
interface Damage {
  removeNode(volume: string, id: number): Promise<void>;
  removeEntry(volume: string, parent: number, name: string): Promise<void>;
  setParent(volume: string, id: number, parent: number): Promise<void>;
  addEntry(volume: string, parent: number, name: string, id: number): Promise<void>;
  /** Redis only: drops a name from a directory's listing index. */
  unindex?(volume: string, parent: number, name: string): Promise<void>;
}

function embeddedDamage(store: EmbeddedMetaStore): Damage {
  // The test reaches into the store's database: nothing in the API can make these states.
  const db = (store as unknown as { db: RootDatabase<unknown, string> }).db;
  const k = (v: string) => namespaceKeys(v);
  return {
    removeNode: async (v, id) => void (await db.remove(k(v).node(id))),
    removeEntry: async (v, parent, name) => void (await db.remove(k(v).child(parent, sortKey(FOLD(name))))),
    addEntry: async (v, parent, name, id) => void (await db.put(k(v).child(parent, sortKey(FOLD(name))), id)),
    async setParent(v, id, parent) {
      const n = db.get(k(v).node(id)) as Record<string, unknown>;
      await db.put(k(v).node(id), { ...n, parent });
    },
  };
}

function redisDamage(admin: Redis): Damage {
  const base = (v: string) => `${PREFIX}:{v:${v}}`;
  return {
    removeNode: async (v, id) => void (await admin.del(`${base(v)}:node:${id}`)),
    async removeEntry(v, parent, name) {
      await admin.hdel(`${base(v)}:dir:${parent}`, sortKey(FOLD(name)));
      await admin.zrem(`${base(v)}:ord:${parent}`, sortKey(FOLD(name)));
    },
    async addEntry(v, parent, name, id) {
      await admin.hset(`${base(v)}:dir:${parent}`, sortKey(FOLD(name)), String(id));
      await admin.zadd(`${base(v)}:ord:${parent}`, 0, sortKey(FOLD(name)));
    },
    setParent: async (v, id, parent) => void (await admin.hset(`${base(v)}:node:${id}`, 'parent', String(parent))),
    unindex: async (v, parent, name) => void (await admin.zrem(`${base(v)}:ord:${parent}`, sortKey(FOLD(name)))),
  };
}

interface Built {
  ns: NamespaceStore;
  docs: number;
  report: number;
  notes: number;
  /** The objects of report.bin, by block index. */
  reportKeys: string[];
}

for (const backend of BACKENDS) {
  describe(`verify on the ${backend} store`, () => {
    let dir: string;
    let meta: MetaStore;
    let objects: FsObjectStore;
    let damage: Damage;
    let redis: RedisServer | undefined;
    let admin: Redis | undefined;
    let volumes = 0;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'afpgw-verify-'));
      objects = await FsObjectStore.open(join(dir, 'objects'));
      if (backend === 'redis') {
        if (!redisAvailable()) {
          if (process.env.CI === 'true') throw new Error('redis-server is required under CI');
          return;
        }
        redis = await startRedis();
        meta = await RedisMetaStore.connect({ url: redis.url, keyPrefix: PREFIX });
        admin = new Redis(redis.url);
        damage = redisDamage(admin);
      } else {
        const store = await EmbeddedMetaStore.open(join(dir, 'meta'));
        meta = store;
        damage = embeddedDamage(store);
      }
    });

    after(async () => {
      await meta?.close();
      admin?.disconnect();
      await redis?.stop();
      await objects?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const skip = (b: Backend) => (b === 'redis' && !redisAvailable() ? 'redis-server not installed' : false);

    /** /docs/report.bin (3 blocks), /notes.txt (1 block, an xattr), in a fresh volume. */
    async function build(volume: string): Promise<Built> {
      const ns = meta.namespace(volume, { fold: FOLD });
      await ns.init(volume, OWNER);
      assert.equal(await ns.fixBlockSize(BLOCK), BLOCK);
      const now = Date.now();
      const docs = (await ns.create(ROOT_ID, 'docs', 'dir', OWNER, now)).id;
      const report = (await ns.create(docs, 'report.bin', 'file', OWNER, now)).id;
      const notes = (await ns.create(ROOT_ID, 'notes.txt', 'file', OWNER, now)).id;
      await ns.setXattr(notes, 'com.example.tag', Buffer.from('x'), 'create');
      const write = async (file: number, sizes: number[]): Promise<string[]> => {
        const gen = await ns.reserveGenerations(sizes.length);
        const made: string[] = [];
        const changes = sizes.map((size, index) => {
          const ref = { file, gen: gen + index };
          made.push(blockObjectKey(volume, 'data', index, ref));
          return { index, expect: null, next: ref, size };
        });
        for (const [i, c] of changes.entries()) await objects.put(made[i]!, Buffer.alloc(c.size, 7));
        const length = (sizes.length - 1) * BLOCK + sizes[sizes.length - 1]!;
        const r = await ns.commitFork(file, 'data', { changes: changes.map(({ index, expect, next }) => ({ index, expect, next })), length, now });
        assert.ok(r.ok);
        return made;
      };
      const reportKeys = await write(report, [BLOCK, BLOCK, 1000]);
      await write(notes, [300]);
      return { ns, docs, report, notes, reportKeys };
    }

    function run(volume: string, repair: boolean): Promise<VerifyReport> {
      return verifyVolume({
        volumeKey: volume,
        audit: meta.audit(volume, { fold: FOLD }),
        ns: meta.namespace(volume, { fold: FOLD }),
        objects,
        repair,
        live: false,
        orphanMinAgeMs: 0,
      });
    }

    const kinds = (r: VerifyReport): ProblemKind[] => r.problems.map((p) => p.kind).sort();

    test('a consistent volume is clean, and the summary counts what it holds', { skip: skip(backend) }, async () => {
      const v = `clean${volumes++}`;
      await build(v);
      const r = await run(v, false);
      assert.deepEqual(r.problems, []);
      assert.equal(r.remaining, 0);
      const counts = Object.fromEntries(r.checks.map((c) => [c.check, c.counts]));
      assert.deepEqual(counts.namespace, { nodes: 4, files: 2, directories: 2, entries: 3 });
      assert.deepEqual(counts['block maps'], { maps: 2, blocks: 4 });
      assert.equal(counts.objects!.objects, 4);
      assert.equal(counts.objects!.bytes, 2 * BLOCK + 1000 + 300);
    });

    test('damage is reported with paths, repaired, and the second run is clean but for lost bytes', { skip: skip(backend) }, async () => {
      const v = `damaged${volumes++}`;
      const b = await build(v);
      // notes.txt's record goes (its entry dangles, its map and xattrs are left behind);
      // docs loses its entry in the root (docs and report.bin become unreachable);
      // one of report.bin's objects goes; a stray object appears; a live block is queued for GC.
      await damage.removeNode(v, b.notes);
      await damage.removeEntry(v, ROOT_ID, 'docs');
      await objects.delete(b.reportKeys[1]!);
      const stray = blockObjectKey(v, 'data', 0, { file: 999, gen: 999 });
      await objects.put(stray, Buffer.alloc(10));
      await meta.audit(v, { fold: FOLD }).queueGc([{ file: b.report, fork: 'data', index: 0, gen: Number(/-(\d+)$/.exec(b.reportKeys[0]!)![1]) }], Date.now());

      const found = await run(v, false);
      assert.deepEqual(kinds(found), ['child-count', 'counter', 'counter', 'dangling-entry', 'map-without-file', 'missing-object', 'orphan-node', 'orphan-object', 'queued-in-use', 'totals', 'xattrs-without-node']);
      const byKind = (k: ProblemKind) => found.problems.find((p) => p.kind === k)!;
      assert.equal(byKind('missing-object').path, '(unreachable)/docs/report.bin');
      assert.match(byKind('missing-object').what, /block 1 of the data fork/);
      assert.equal(byKind('missing-object').repairable, false);
      assert.equal(byKind('dangling-entry').path, '/notes.txt');
      assert.match(byKind('orphan-node').what, /directory "docs" .*with 1 items inside.*does not list it/);
      assert.equal(byKind('orphan-object').path, stray);
      assert.equal(byKind('child-count').path, '/');
      assert.equal(found.remaining, 11);
      assert.equal(found.problems.some((p) => p.fixed !== undefined), false, 'a check alone repairs nothing');
      assert.deepEqual(kinds(await run(v, false)), kinds(found), 'and changes nothing');

      const gcBefore = await b.ns.gcPending();
      const repaired = await run(v, true);
      // Left: the lost bytes, and notes.txt, whose record is lost but whose name and block map
      // (its bytes) are what is left of it: neither is thrown away.
      assert.equal(repaired.remaining, 3);
      assert.deepEqual(repaired.problems.filter((p) => !p.fixed).map((p) => p.kind).sort(), ['dangling-entry', 'map-without-file', 'missing-object']);

      const again = await run(v, false);
      assert.deepEqual(kinds(again), ['dangling-entry', 'map-without-file', 'missing-object']);
      assert.equal(again.problems.find((p) => p.kind === 'missing-object')!.path, `/${RECOVERED_DIR}/docs/report.bin`);
      assert.equal(again.problems.find((p) => p.kind === 'dangling-entry')!.path, '/notes.txt');
      // What the repair did, seen through the namespace.
      const recovered = await b.ns.lookup(ROOT_ID, RECOVERED_DIR);
      assert.equal((await b.ns.lookup(recovered!.id, 'docs'))?.id, b.docs);
      // The stray object was queued; report.bin's block 0 was taken off; notes.txt's block stays.
      assert.equal(await b.ns.gcPending(), gcBefore - 1 + 1);
      const due = await b.ns.gcDue(Number.MAX_SAFE_INTEGER, 100);
      assert.ok(due.some((e) => e.file === 999 && e.gen === 999), 'the stray object waits for GC');
      assert.ok(!due.some((e) => e.file === b.report), 'report.bin\'s blocks are not on the GC queue');
      const st = await b.ns.stats();
      assert.ok(st.lastId >= 999, 'the CNID counter is above every CNID in use');
      assert.equal(st.nodes, 4, 'the node count includes the recovery directory');
    });

    test("a dead map that names a live file's object is reported, not dropped: the live file's bytes stay", { skip: skip(backend) }, async () => {
      const v = `shared${volumes++}`;
      const b = await build(v);
      // notes.txt's block 0 is made to name report.bin's block 0, then notes.txt goes
      // (record and entry) and leaves its map behind.
      const live = await b.ns.blockRef(b.report, 'data', 0);
      const own = await b.ns.blockRef(b.notes, 'data', 0);
      assert.ok(live && own);
      assert.ok((await b.ns.commitFork(b.notes, 'data', { changes: [{ index: 0, expect: own, next: live }], length: BLOCK, now: Date.now() })).ok);
      await damage.removeNode(v, b.notes);
      await damage.removeEntry(v, ROOT_ID, 'notes.txt');
      const gcBefore = await b.ns.gcPending();
      const repaired = await run(v, true);
      const dead = repaired.problems.find((p) => p.kind === 'map-without-file')!;
      assert.equal(dead.repairable, false);
      assert.match(dead.repair, /another file's map names some of its objects/);
      assert.ok(repaired.problems.some((p) => p.kind === 'shared-object'));
      assert.ok(!(await b.ns.gcDue(Number.MAX_SAFE_INTEGER, 100)).some((e) => e.file === b.report), "report.bin's object is not queued for deletion");
      assert.equal(await b.ns.gcPending(), gcBefore, 'nothing was queued');
      assert.equal((await objects.get(b.reportKeys[0]!)).length, BLOCK, "report.bin's bytes are there");
    });

    test('an entry pointing at a node that lives elsewhere, and a parent loop', { skip: skip(backend) }, async () => {
      const v = `loop${volumes++}`;
      const b = await build(v);
      const inner = (await b.ns.create(b.docs, 'inner', 'dir', OWNER, Date.now())).id;
      // docs says its parent is inner, which lives in docs: a loop nobody reaches; the
      // root's entry "docs" now names a node that says it lives elsewhere.
      await damage.setParent(v, b.docs, inner);
      await damage.addEntry(v, inner, 'docs', b.docs);
      const found = await run(v, false);
      assert.deepEqual(kinds(found), ['child-count', 'dangling-entry', 'orphan-node']);
      const orphan = found.problems.find((p) => p.kind === 'orphan-node')!;
      assert.match(orphan.what, /parents form a loop/);
      assert.match(orphan.what, /with 2 items inside/);
      const repaired = await run(v, true);
      assert.equal(repaired.remaining, 0, JSON.stringify(repaired.problems));
      assert.deepEqual((await run(v, false)).problems, []);
      // Everything is reachable again, with its bytes.
      const rec = await b.ns.lookup(ROOT_ID, RECOVERED_DIR);
      const top = (await b.ns.children(rec!.id, { limit: 10 })).entries;
      assert.equal(top.length, 1);
      assert.ok([b.docs, inner].includes(top[0]!.id));
      assert.equal((await b.ns.get(b.report))?.dataLength, 2 * BLOCK + 1000);
    });

    if (backend === 'redis') {
      test('a listing index out of step with its directory is rebuilt', { skip: skip(backend) }, async () => {
        const v = `index${volumes++}`;
        const b = await build(v);
        await damage.unindex!(v, ROOT_ID, 'notes.txt');
        assert.equal((await b.ns.children(ROOT_ID, { limit: 10 })).entries.length, 1, 'the listing lost notes.txt');
        assert.deepEqual(kinds(await run(v, false)), ['stale-index']);
        assert.equal((await run(v, true)).remaining, 0);
        assert.equal((await b.ns.children(ROOT_ID, { limit: 10 })).entries.length, 2);
        assert.deepEqual((await run(v, false)).problems, []);
      });
    }

    test('a finding that no longer holds when confirmed is not reported', { skip: skip(backend) }, async () => {
      const v = `race${volumes++}`;
      const b = await build(v);
      await damage.removeEntry(v, ROOT_ID, 'notes.txt');
      const gen = await b.ns.reserveGenerations(1);
      const upload = { file: b.notes, gen };
      await objects.put(blockObjectKey(v, 'data', 0, upload), Buffer.alloc(10));
      assert.deepEqual(kinds(await run(v, false)), ['child-count', 'orphan-node', 'orphan-object']);

      // Between the scan (whose last read is the counters) and the confirmation, a
      // "gateway" puts the entry back and commits the uploaded object: nothing is left.
      const real = meta.audit(v, { fold: FOLD });
      const audit = Object.create(real) as VolumeAudit;
      audit.counters = async () => {
        const c = await real.counters();
        await damage.addEntry(v, ROOT_ID, 'notes.txt', b.notes);
        const old = await b.ns.blockRef(b.notes, 'data', 0);
        assert.ok((await b.ns.commitFork(b.notes, 'data', { changes: [{ index: 0, expect: old, next: upload }], now: Date.now() })).ok);
        return c;
      };
      const raced = await verifyVolume({ volumeKey: v, audit, ns: b.ns, objects, repair: false, live: true, orphanMinAgeMs: 0 });
      assert.deepEqual(raced.problems, []);
    });

    test('a repair is refused while gateways hold leases', { skip: skip(backend) }, async () => {
      const v = `live${volumes++}`;
      await build(v);
      await assert.rejects(
        verifyVolume({ volumeKey: v, audit: meta.audit(v, { fold: FOLD }), ns: meta.namespace(v, { fold: FOLD }), objects, repair: true, live: true, orphanMinAgeMs: 0 }),
        /every gateway stopped/,
      );
    });
  });
}
