/**
 * The data layer on real parts: an LMDB metadata store, the directory object store (and S3
 * on s3rver for the object-count checks), cache directories on disk. Two VolumeData over
 * one metadata store and one object store, each with its own cache, stand for the two
 * nodes of a pair.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BandCache } from '../../src/blocks/band-cache.js';
import { GarbageCollector } from '../../src/blocks/garbage-collector.js';
import { UploadPipeline } from '../../src/blocks/upload-pipeline.js';
import { DataError, VolumeData } from '../../src/blocks/volume-data.js';
import { EmbeddedMetaStore } from '../../src/meta/embedded-store.js';
import type { MetaStore } from '../../src/meta/meta-store.js';
import { ROOT_ID, type NamespaceStore } from '../../src/meta/namespace.js';
import { FsObjectStore } from '../../src/objects/fs-store.js';
import type { ByteRange, ObjectStore } from '../../src/objects/object-store.js';
import { ObjectStoreUnavailableError } from '../../src/objects/errors.js';
import { silentLogger } from '../../src/ops/log.js';

const BS = 64 * 1024;
const VOL = 'tm';
const log = silentLogger();

/** An object store that can be switched off, as if the bucket were unreachable. */
class Switchable implements ObjectStore {
  down = false;
  puts = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  constructor(private readonly inner: ObjectStore) {}
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  private async check(): Promise<void> {
    if (this.gate) await this.gate;
    if (this.down) throw new ObjectStoreUnavailableError('switched off');
  }
  async put(key: string, body: Buffer): Promise<void> {
    await this.check();
    this.puts++;
    return this.inner.put(key, body);
  }
  async get(key: string, range?: ByteRange): Promise<Buffer> {
    await this.check();
    return this.inner.get(key, range);
  }
  async head(key: string) {
    await this.check();
    return this.inner.head(key);
  }
  async delete(key: string): Promise<void> {
    await this.check();
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Node {
  data: VolumeData;
  cache: BandCache;
  uploads: UploadPipeline;
  cacheDir: string;
  close(): Promise<void>;
}

let dir: string;
let meta: MetaStore;
let ns: NamespaceStore;
let fsObjects: FsObjectStore;
let objects: Switchable;

async function node(opts: { cacheDir?: string; dirtyLimit?: number; syncTimeoutMs?: number; uploadDelayMs?: number } = {}): Promise<Node> {
  const cacheDir = opts.cacheDir ?? (await mkdtemp(join(dir, 'cache-')));
  const cache = await BandCache.open({ dir: cacheDir, size: 64 * BS, dirtyLimit: opts.dirtyLimit ?? 32 * BS, log });
  const uploads = new UploadPipeline(4, log);
  const data = await VolumeData.open({
    volumeKey: VOL,
    blockSize: BS,
    store: ns,
    objects,
    cache,
    uploads,
    durable: () => meta.sync(),
    syncTimeoutMs: opts.syncTimeoutMs ?? 10_000,
    uploadDelayMs: opts.uploadDelayMs ?? 0,
    log,
  });
  cache.onPressure = () => data.uploadAll();
  return {
    data,
    cache,
    uploads,
    cacheDir,
    async close() {
      await uploads.close();
      await cache.close();
    },
  };
}

let seq = 0;
async function newFile(): Promise<number> {
  return (await ns.create(ROOT_ID, `f${++seq}`, 'file', { uid: 1, gid: 1, mode: 0o644 }, Date.now())).id;
}

async function objectCount(file: number): Promise<number> {
  let n = 0;
  for await (const _ of fsObjects.list(`${VOL}/${file}/`)) n++;
  return n;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'afpgw-data-'));
  meta = await EmbeddedMetaStore.open(join(dir, 'meta'), { sync: 'periodic' });
  ns = meta.namespace(VOL, { fold: (s) => s.toLowerCase() });
  await ns.init('TM', { uid: 0, gid: 0, mode: 0o1777 });
  await ns.fixBlockSize(BS);
  fsObjects = await FsObjectStore.open(join(dir, 'objects'));
  objects = new Switchable(fsObjects);
});

after(async () => {
  await meta.close();
  await fsObjects.close();
  await rm(dir, { recursive: true, force: true });
});

describe('VolumeData', () => {
  it('random writes, truncates and syncs read back like a local model, from this node and a fresh one', async () => {
    const a = await node({ uploadDelayMs: 5 });
    const file = await newFile();
    const st = await a.data.attach(file, 'data');
    let model = Buffer.alloc(0);
    const rnd = (n: number) => Math.floor(Math.random() * n);
    for (let step = 0; step < 150; step++) {
      const op = rnd(20);
      if (op === 0) {
        const len = rnd(12 * BS);
        await a.data.setLength(st, len);
        model = len <= model.length ? model.subarray(0, len) : Buffer.concat([model, Buffer.alloc(len - model.length)]);
      } else if (op <= 2) {
        await a.data.sync(st);
      } else {
        const off = rnd(10 * BS);
        const buf = rnd(4) === 0 ? Buffer.alloc(rnd(2 * BS) + 1) : randomBytes(rnd(2 * BS) + 1);
        await a.data.write(st, off, buf);
        if (model.length < off + buf.length) model = Buffer.concat([model, Buffer.alloc(off + buf.length - model.length)]);
        buf.copy(model, off);
      }
      if (step % 25 === 0) assert.ok((await a.data.read(st, 0, model.length + 10)).equals(model), `step ${step}`);
    }
    assert.equal(st.length, model.length);
    assert.ok((await a.data.read(st, 0, model.length + 100)).equals(model));
    await a.data.sync(st);
    assert.equal((await ns.get(file))!.dataLength, model.length, 'the length is committed');
    a.data.detach(st);
    // Another node, with an empty cache, reads only what is in the stores.
    const b = await node();
    const sb = await b.data.attach(file, 'data');
    assert.equal(sb.length, model.length);
    assert.ok((await b.data.read(sb, 0, model.length)).equals(model));
    b.data.detach(sb);
    await a.close();
    await b.close();
  });

  it('stores holes and zero blocks as nothing, and reads them as zeros', async () => {
    const a = await node();
    const file = await newFile();
    const st = await a.data.attach(file, 'data');
    const before = await objectCount(file);
    await a.data.write(st, 100 * BS + 7, Buffer.from('tail'));
    await a.data.write(st, 3 * BS, Buffer.alloc(BS)); // a whole block of zeros
    await a.data.sync(st);
    assert.equal((await objectCount(file)) - before, 1, 'one object for the one block with data');
    const map = await ns.blockMap(file, 'data');
    assert.deepEqual([...map.keys()], [100]);
    const bytes = await a.data.read(st, 0, st.length);
    assert.equal(bytes.length, 100 * BS + 11);
    assert.ok(bytes.subarray(0, 100 * BS + 7).every((x) => x === 0));
    assert.equal(bytes.subarray(100 * BS + 7).toString(), 'tail');
    a.data.detach(st);
    await a.close();
  });

  it('merges a partial write with the remote bytes at upload, without fetching on the write path', async () => {
    const a = await node();
    const file = await newFile();
    const sa = await a.data.attach(file, 'data');
    const full = randomBytes(2 * BS);
    await a.data.write(sa, 0, full);
    await a.data.sync(sa);
    a.data.detach(sa);
    await a.close();
    // A node with an empty cache patches a few bytes in each block while the store is off:
    // the writes must not need it.
    const b = await node({ uploadDelayMs: 60_000 });
    const sb = await b.data.attach(file, 'data');
    objects.down = true;
    try {
      await b.data.write(sb, 10, Buffer.from('PATCH'));
      await b.data.write(sb, BS + 100, Buffer.from('MORE'));
    } finally {
      objects.down = false;
    }
    await b.data.sync(sb);
    b.data.detach(sb);
    await b.close();
    Buffer.from('PATCH').copy(full, 10);
    Buffer.from('MORE').copy(full, BS + 100);
    const c = await node();
    const sc = await c.data.attach(file, 'data');
    assert.ok((await c.data.read(sc, 0, 2 * BS)).equals(full));
    c.data.detach(sc);
    await c.close();
  });

  it('a sync fails after its timeout while the store is down, and succeeds once it is back', async () => {
    const a = await node({ syncTimeoutMs: 400 });
    const file = await newFile();
    const st = await a.data.attach(file, 'data');
    const bytes = randomBytes(BS + 10);
    objects.down = true;
    try {
      await a.data.write(st, 0, bytes);
      const t0 = Date.now();
      await assert.rejects(a.data.sync(st), (e: unknown) => e instanceof DataError && e.reason === 'timeout');
      assert.ok(Date.now() - t0 < 5000, 'the sync gave up at its timeout');
      assert.equal((await ns.get(file))!.dataLength, 0, 'nothing was committed');
    } finally {
      objects.down = false;
    }
    await a.data.sync(st);
    const b = await node();
    const sb = await b.data.attach(file, 'data');
    assert.ok((await b.data.read(sb, 0, bytes.length)).equals(bytes));
    b.data.detach(sb);
    a.data.detach(st);
    await a.close();
    await b.close();
  });

  it('writes wait at the dirty limit until uploads make room, and lose nothing', async () => {
    const a = await node({ dirtyLimit: 2 * BS });
    const file = await newFile();
    const st = await a.data.attach(file, 'data');
    objects.hold();
    await a.data.write(st, 0, randomBytes(BS));
    await a.data.write(st, BS, randomBytes(BS));
    let third = false;
    const p = a.data.write(st, 2 * BS, randomBytes(BS)).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(third, false, 'the third block waits for room');
    assert.ok(a.cache.dirtyTotal <= 2 * BS);
    objects.release();
    await p;
    await a.data.sync(st);
    assert.equal(a.cache.dirtyTotal, 0);
    a.data.detach(st);
    await a.close();
  });

  it('after a crash, the journal brings back unsynced writes and they are uploaded', async () => {
    const a = await node({ uploadDelayMs: 60_000 });
    const file = await newFile();
    const st = await a.data.attach(file, 'data');
    const bytes = randomBytes(3 * BS + 123);
    objects.down = true;
    await a.data.write(st, 0, bytes);
    // "Crash": stop without uploading; the cache directory and journal stay.
    await a.uploads.close();
    await a.cache.close();
    objects.down = false;
    const again = await node({ cacheDir: a.cacheDir });
    // Recovery queued the uploads; wait for them.
    for (let i = 0; i < 100 && again.cache.dirtyTotal > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(again.cache.dirtyTotal, 0);
    const sa = await again.data.attach(file, 'data');
    await again.data.sync(sa);
    again.data.detach(sa);
    assert.equal((await ns.get(file))!.dataLength, bytes.length, 'the journal length is committed');
    const b = await node();
    const sb = await b.data.attach(file, 'data');
    assert.ok((await b.data.read(sb, 0, bytes.length)).equals(bytes));
    b.data.detach(sb);
    await again.close();
    await b.close();
  });

  it('two nodes writing different bytes of one block both keep their bytes (compare-and-set re-base)', async () => {
    const a = await node({ uploadDelayMs: 60_000 });
    const b = await node({ uploadDelayMs: 60_000 });
    const file = await newFile();
    const sa = await a.data.attach(file, 'data');
    const sb = await b.data.attach(file, 'data');
    await a.data.write(sa, 0, Buffer.from('AAAA'));
    await b.data.write(sb, 100, Buffer.from('BBBB'));
    await a.data.sync(sa);
    await b.data.sync(sb); // b's base (absent) moved on: re-base onto a's object
    const c = await node();
    const sc = await c.data.attach(file, 'data');
    const got = await c.data.read(sc, 0, 104);
    assert.equal(got.subarray(0, 4).toString(), 'AAAA');
    assert.equal(got.subarray(100, 104).toString(), 'BBBB');
    for (const [n, s] of [[a, sa], [b, sb], [c, sc]] as const) n.data.detach(s);
    await a.close();
    await b.close();
    await c.close();
  });

  it('replaced and truncated blocks are collected after the grace period, never before', async () => {
    const a = await node();
    const file = await newFile();
    const st = await a.data.attach(file, 'data');
    await a.data.write(st, 0, randomBytes(3 * BS));
    await a.data.sync(st);
    const n0 = await objectCount(file);
    await a.data.write(st, 0, randomBytes(BS)); // replaces block 0
    await a.data.setLength(st, BS); // drops blocks 1 and 2
    await a.data.sync(st);
    assert.equal(await objectCount(file), n0 + 1, 'nothing deleted yet');
    const slow = new GarbageCollector({ volumeKey: VOL, store: ns, objects: fsObjects, graceMs: 3_600_000, intervalMs: 1000, log });
    assert.equal(await slow.runOnce(), 0, 'inside the grace period nothing goes');
    const gc = new GarbageCollector({ volumeKey: VOL, store: ns, objects: fsObjects, graceMs: 0, intervalMs: 1000, log });
    assert.ok((await gc.runOnce()) >= 3);
    assert.equal(await objectCount(file), n0 - 2);
    assert.equal(await ns.gcPending(), 0);
    const b = await node();
    const sb = await b.data.attach(file, 'data');
    assert.equal(sb.length, BS);
    assert.ok((await b.data.read(sb, 0, BS)).equals(await a.data.read(st, 0, BS)));
    b.data.detach(sb);
    a.data.detach(st);
    await a.close();
    await b.close();
  });

  it('a truncate at the dirty limit does not wait for room its own fork would have to free', async () => {
    const a = await node({ dirtyLimit: 4 * BS });
    const file = await newFile();
    const st = await a.data.attach(file, 'data');
    await a.data.write(st, 0, randomBytes(5 * BS));
    await a.data.sync(st);
    objects.hold();
    for (let i = 0; i < 4; i++) await a.data.write(st, i * BS, randomBytes(BS)); // dirty = limit
    const cut = a.data.setLength(st, 4 * BS + 100); // cuts the clean block 4
    setTimeout(() => objects.release(), 200);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([cut.then(() => 'done'), new Promise((r) => (timer = setTimeout(() => r('stuck'), 5000)))]);
    clearTimeout(timer);
    assert.equal(outcome, 'done');
    await a.data.sync(st);
    assert.equal((await ns.get(file))!.dataLength, 4 * BS + 100);
    a.data.detach(st);
    await a.close();
  });

  it('a cache no bigger than its dirty limit keeps no clean blocks on disk', async () => {
    const cacheDir = await mkdtemp(join(dir, 'cache-'));
    const cache = await BandCache.open({ dir: cacheDir, size: 4 * BS, dirtyLimit: 4 * BS, log });
    for (let i = 0; i < 20; i++) {
      const b = cache.obtain({ volume: 'v', file: 1, fork: 'data', index: i }, BS, null);
      await cache.reserve(b);
      await b.lock.run(async () => {
        await cache.write(b, 0, Buffer.alloc(BS, 1), BS * (i + 1));
        const snap = await cache.snapshot(b);
        cache.committed(b, { file: 1, gen: i + 1 }, snap.seq);
      });
    }
    await new Promise((r) => setTimeout(r, 50)); // evictions take the block lock first
    assert.equal(cache.dirtyTotal, 0);
    assert.equal(readdirSync(join(cacheDir, 'blocks', 'v', '1')).length, 0, 'clean blocks that do not fit are deleted');
    await cache.close();
  });

  it('a cold sequential reader finds the next blocks fetched ahead', async () => {
    const a = await node();
    const file = await newFile();
    const sa = await a.data.attach(file, 'data');
    const bytes = randomBytes(4 * BS);
    await a.data.write(sa, 0, bytes);
    await a.data.sync(sa);
    a.data.detach(sa);
    await a.close();
    const b = await node();
    const sb = await b.data.attach(file, 'data');
    assert.ok((await b.data.read(sb, 0, 100)).equals(bytes.subarray(0, 100)));
    for (let i = 0; i < 100 && !(b.cache.get({ volume: VOL, file, fork: 'data', index: 2 })?.complete ?? false); i++) await new Promise((r) => setTimeout(r, 10));
    objects.down = true;
    try {
      // Blocks 1 and 2 came with block 0's miss; block 3 would need the store.
      assert.ok((await b.data.read(sb, BS, 2 * BS)).equals(bytes.subarray(BS, 3 * BS)));
      await assert.rejects(b.data.read(sb, 3 * BS, 10));
    } finally {
      objects.down = false;
    }
    b.data.detach(sb);
    await b.close();
  });
});
