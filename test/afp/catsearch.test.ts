import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AfpClient } from '../../src/client/afp-client.js';
import { ROOT, type AfpVolume, type Entry } from '../../src/client/afp-volume.js';
import { buildCatSearch, buildSpecs, catSearch, catSearchAll, type CatSearchPage, type CatSearchQuery } from '../../src/client/afp-catsearch.js';
import { catSearchLimits } from '../../src/afp/handlers/catsearch.js';
import { SET_CLEAR } from '../../src/afp/params.js';
import { kFPBitmapErr, kFPCatalogChanged, kFPEOFErr, kFPNoErr, kFPParamErr } from '../../src/afp/result-codes.js';
import { BACKENDS, gatewayFor, SKIP_REASON } from '../helpers/backends.js';
import type { TestGateway } from '../helpers/gateway.js';
import { resultCode as code } from '../helpers/afp.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
const TOPS = ['Alpha', 'Beta', 'Gamma', 'Delta'];
const SUBS = 4;
const FILES = 12;
const day = (y: number, m: number, d: number): number => Date.UTC(y, m - 1, d);

/** What the tree holds: enough to compute the expected answer of any search. */
interface Obj {
  parent: number;
  name: string;
  isDir: boolean;
  id: number;
  attributes: number;
  modifiedAt?: number;
  createdAt?: number;
  backupAt?: number;
  dataLength: number;
  rsrcLength: number;
  childCount: number;
  /** Inside bob's private directory: alice must not find it. */
  private: boolean;
}

interface Tree {
  objs: Obj[];
  ids: Map<string, number>;
}


async function session(g: TestGateway, who = ALICE): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: who.name, password: who.password });
  return { c, v: await c.openVolume('TimeMachine') };
}

const key = (parent: number, name: string): string => `${parent}/${name.normalize('NFC')}`;
const keysOf = (entries: readonly Entry[]): string[] => entries.map((e) => key(e.params.parentId!, e.params.utf8Name!)).sort();
const expect = (t: Tree, pred: (o: Obj) => boolean, who: 'alice' | 'bob' = 'alice'): string[] =>
  t.objs.filter((o) => (who === 'bob' || !o.private) && pred(o)).map((o) => key(o.parent, o.name)).sort();
const folded = (s: string): string => s.normalize('NFC').toLowerCase();

/**
 * A few hundred objects: four top directories of four subdirectories of twelve files, some
 * notes, names in NFC and NFD, a deep chain, an empty directory and bob's private one.
 */
async function buildTree(g: TestGateway, v: AfpVolume, bob: AfpVolume): Promise<Tree> {
  const objs: Obj[] = [];
  const ids = new Map<string, number>();
  const add = (parent: number, name: string, isDir: boolean, id: number, priv = false): Obj => {
    const o: Obj = { parent, name, isDir, id, attributes: 0, dataLength: 0, rsrcLength: 0, childCount: 0, private: priv };
    objs.push(o);
    ids.set(name, id);
    const p = objs.find((x) => x.id === parent);
    if (p) p.childCount++;
    return o;
  };
  const file = async (vol: AfpVolume, parent: number, name: string, priv = false): Promise<Obj> => {
    await vol.createFile(parent, [name]);
    return add(parent, name, false, (await vol.getFileDirParms(parent, [name])).params.nodeId!, priv);
  };
  const dir = async (vol: AfpVolume, parent: number, name: string, priv = false): Promise<Obj> => add(parent, name, true, await vol.createDir(parent, [name]), priv);

  for (const top of TOPS) {
    const t = await dir(v, ROOT, top);
    for (let i = 0; i < SUBS; i++) {
      const s = await dir(v, t.id, `sub-${i}`);
      await Promise.all(Array.from({ length: FILES }, (_, j) => file(v, s.id, `file-${top}-${i}-${j}.txt`)));
    }
    for (let k = 0; k < 3; k++) await file(v, t.id, `notes-${k}.md`);
  }
  const alpha = ids.get('Alpha')!;
  await file(v, alpha, 'Café Menu.pdf'.normalize('NFD'));
  await file(v, ids.get('Beta')!, 'CAFÉ menu backup.pdf'.normalize('NFC'));
  const gamma1 = objs.find((o) => o.name === 'sub-1' && o.parent === ids.get('Gamma'))!;
  const report = await file(v, gamma1.id, 'Report 2020.doc');
  await dir(v, ROOT, 'Empty');
  let deep = ROOT;
  for (const d of ['Deep', 'd1', 'd2', 'd3', 'd4', 'd5']) deep = (await dir(v, deep, d)).id;
  const leaf = await file(v, deep, 'leaf.txt');

  const priv = await dir(bob, ROOT, 'Private');
  await bob.setParms('dir', ROOT, 'Private', 0x1000, { accessRights: 0x07 }); // rwx------
  await file(bob, priv.id, 'secret café.txt', true);
  const inner = await dir(bob, priv.id, 'inner', true);
  await file(bob, inner.id, 'inner-file', true);

  // Attributes, dates, Finder info through AFP.
  for (const top of TOPS) {
    await v.setParms('file', ids.get(top)!, 'notes-0.md', 0x0001, { attributes: SET_CLEAR | 0x0001 });
    objs.find((o) => o.name === 'notes-0.md' && o.parent === ids.get(top))!.attributes = 0x0001;
  }
  await v.setParms('file', gamma1.id, 'Report 2020.doc', 0x0001, { attributes: SET_CLEAR | 0x01a0 });
  report.attributes = 0x01a0;
  for (const o of objs.filter((x) => /^file-\w+-\d-[012]\.txt$/.test(x.name))) {
    o.modifiedAt = day(2019, 6, 1) + Number(o.name.at(-5)) * 86_400_000;
    await v.setParms('file', o.parent, [o.name], 0x0008, { modifiedAt: o.modifiedAt });
  }
  const delta0 = objs.find((o) => o.name === 'sub-0' && o.parent === ids.get('Delta'))!;
  for (const o of objs.filter((x) => x.parent === delta0.id)) {
    o.createdAt = day(2010, 3, 4);
    await v.setParms('file', o.parent, [o.name], 0x0004, { createdAt: o.createdAt });
  }
  const notes1 = objs.find((o) => o.name === 'notes-1.md' && o.parent === alpha)!;
  notes1.backupAt = day(2022, 1, 1);
  await v.setParms('file', alpha, 'notes-1.md', 0x0010, { backupAt: notes1.backupAt });
  const text = Buffer.alloc(32);
  text.write('TEXTttxt', 'latin1');
  await v.setParms('file', ids.get('Delta')!, 'notes-2.md', 0x0020, { finderInfo: text });
  await v.setParms('file', objs.find((o) => o.name === 'file-Alpha-0-0.txt')!.parent, 'file-Alpha-0-0.txt', 0x0020, { finderInfo: text });

  // Fork lengths as the data layer records them when forks are written.
  const vol = g.gw.ctx.volumes.byName('TimeMachine')!;
  const owner = { ...(await g.gw.meta.getUser(ALICE.name))!, guest: false };
  const setLengths = async (o: Obj): Promise<void> => void (await vol.setParams(owner, await vol.node(o.id), { dataLength: o.dataLength, rsrcLength: o.rsrcLength }));
  const gamma2 = objs.find((o) => o.name === 'sub-2' && o.parent === ids.get('Gamma'))!;
  for (const o of objs.filter((x) => x.parent === gamma2.id)) {
    o.dataLength = Number(/-(\d+)\.txt$/.exec(o.name)![1]) * 1000;
    await setLengths(o);
  }
  leaf.dataLength = 5 * 2 ** 30;
  report.rsrcLength = 4096;
  await setLengths(leaf);
  await setLengths(report);
  return { objs, ids };
}

for (const backend of BACKENDS) {
  describe(`FPCatSearch and FPCatSearchExt (${backend} store)`, () => {
    const gw = gatewayFor(backend, { users: [ALICE, BOB], config: { volumes: [{ name: 'TimeMachine', timeMachine: true }] } });
    let built: Promise<Tree> | undefined;
    /** Both sessions and the tree, built once for the whole block. */
    const env = async (g: TestGateway): Promise<{ a: { c: AfpClient; v: AfpVolume }; b: { c: AfpClient; v: AfpVolume }; t: Tree }> => {
      const a = await session(g, ALICE);
      const b = await session(g, BOB);
      built ??= buildTree(g, a.v, b.v);
      return { a, b, t: await built };
    };
    const close = async (...s: { c: AfpClient }[]): Promise<void> => {
      for (const x of s) await x.c.close();
    };

    test('names: partial and whole, NFC or NFD, any case, UTF8Name and LongName', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b, t } = await env(g);
      const cafe = expect(t, (o) => folded(o.name).includes('café'));
      assert.equal(cafe.length, 2);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { utf8Name: 'café' })), cafe);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { utf8Name: 'CAFE\u0301' })), cafe, 'NFD and upper case');
      assert.deepEqual(keysOf(await catSearchAll(b.v, { utf8Name: 'Café' })), expect(t, (o) => folded(o.name).includes('café'), 'bob'), 'bob sees his own');
      const whole = await catSearch(a.v, { utf8Name: 'café menu.PDF', wholeName: true });
      assert.equal(whole.code, kFPEOFErr, 'a small search ends in one call');
      assert.deepEqual(whole.position, Buffer.alloc(16));
      assert.deepEqual(keysOf(whole.entries), [key(t.ids.get('Alpha')!, 'Café Menu.pdf')]);
      assert.equal(whole.entries[0]!.params.utf8Name, 'Café Menu.pdf'.normalize('NFD'));
      assert.equal(whole.entries[0]!.params.nodeId, t.ids.get('Café Menu.pdf'.normalize('NFD')));
      assert.deepEqual((await catSearch(a.v, { utf8Name: 'café', wholeName: true })).entries, []);
      // LongName, in FPCatSearchExt and in FPCatSearch (which returns ParentDirID and LongName only).
      assert.deepEqual(keysOf(await catSearchAll(a.v, { longName: 'MENU' })), cafe);
      const legacy = await catSearch(a.v, { longName: 'report' }, { variant: 'legacy' });
      assert.equal(legacy.fileBitmap, 0x0042);
      assert.equal(legacy.dirBitmap, 0x0042);
      assert.equal(legacy.entries.length, 1);
      assert.deepEqual(legacy.entries[0]!.params, { parentId: t.objs.find((o) => o.name === 'Report 2020.doc')!.parent, longName: 'Report 2020.doc' });
      const legacyCafe = await catSearchAll(a.v, { longName: 'Café' }, { variant: 'legacy' });
      assert.deepEqual(legacyCafe.map((e) => e.params.longName).sort(), ['CAFÉ menu backup.pdf', 'Café Menu.pdf'], 'a Mac Roman LongName');
      await close(a, b);
    });

    test('files only, directories only, everything; parent and offspring ranges', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b, t } = await env(g);
      assert.deepEqual(keysOf(await catSearchAll(a.v, {}, { dirBitmap: 0 })), expect(t, (o) => !o.isDir));
      assert.deepEqual(keysOf(await catSearchAll(a.v, {}, { fileBitmap: 0 })), expect(t, (o) => o.isDir));
      const everything = await catSearchAll(a.v, {});
      assert.ok(everything.length > 230, `${everything.length} objects`);
      assert.deepEqual(keysOf(everything), expect(t, () => true));
      assert.equal(everything.filter((e) => e.isDir).length, expect(t, (o) => o.isDir).length);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { utf8Name: 'SUB-' }, { fileBitmap: 0 })), expect(t, (o) => o.isDir && o.name.startsWith('sub-')));
      assert.deepEqual(await catSearchAll(a.v, { utf8Name: 'sub-' }, { dirBitmap: 0 }), []);
      const gamma = t.ids.get('Gamma')!;
      assert.deepEqual(keysOf(await catSearchAll(a.v, { parentId: [gamma, gamma] })), expect(t, (o) => o.parent === gamma));
      const subs = await catSearchAll(a.v, { offspringCount: [12, 13] }, { fileBitmap: 0 });
      assert.deepEqual(keysOf(subs), expect(t, (o) => o.isDir && o.childCount >= 12 && o.childCount <= 13));
      assert.equal(subs.length, TOPS.length * SUBS);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { offspringCount: [0, 0] }, { fileBitmap: 0 })), [key(ROOT, 'Empty')]);
      await close(a, b);
    });

    test('date ranges: modification, creation, backup (never included from below)', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b, t } = await env(g);
      const june = [day(2019, 6, 1), day(2019, 6, 2) + 86_399_000] as const;
      const mod = await catSearchAll(a.v, { modifiedAt: june });
      assert.deepEqual(keysOf(mod), expect(t, (o) => o.modifiedAt !== undefined && o.modifiedAt <= june[1]));
      assert.equal(mod.length, TOPS.length * SUBS * 2);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { createdAt: [null, day(2011, 1, 1)] })), expect(t, (o) => o.createdAt !== undefined));
      assert.deepEqual(keysOf(await catSearchAll(a.v, { backupAt: [day(2021, 1, 1), null] })), [key(t.ids.get('Alpha')!, 'notes-1.md')]);
      const never = await catSearchAll(a.v, { backupAt: [null, day(2000, 1, 1)] }, { dirBitmap: 0 });
      assert.deepEqual(keysOf(never), expect(t, (o) => !o.isDir && o.backupAt === undefined));
      await close(a, b);
    });

    test('fork lengths: DataForkLen, RsrcForkLen and their 64-bit forms, files only', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b, t } = await env(g);
      const files = { dirBitmap: 0 };
      assert.deepEqual(keysOf(await catSearchAll(a.v, { dataLength: [1000, 5000] }, files)), expect(t, (o) => o.dataLength >= 1000 && o.dataLength <= 5000));
      assert.equal((await catSearchAll(a.v, { dataLength: [1000, 5000] }, files)).length, 5);
      const leaf = [key(t.ids.get('d5')!, 'leaf.txt')];
      assert.deepEqual(keysOf(await catSearchAll(a.v, { dataLength: [0xffffffff, 0xffffffff] }, files)), leaf, '32-bit lengths clamp');
      assert.deepEqual(keysOf(await catSearchAll(a.v, { extDataLength: [2 ** 32, 2 ** 40] }, files)), leaf);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { rsrcLength: [1, 2 ** 20] }, files)), expect(t, (o) => o.rsrcLength > 0));
      assert.deepEqual(keysOf(await catSearchAll(a.v, { extRsrcLength: [4096, 4096], utf8Name: 'report' }, files)), expect(t, (o) => o.rsrcLength > 0));
      assert.throws(() => buildSpecs({ dataLength: [0, 1] }, true, true), RangeError, 'the client refuses what the server would');
      await close(a, b);
    });

    test('attributes and Finder info under a mask', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b, t } = await env(g);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { attributes: { bits: 0x0001, mask: 0x0001 } })), expect(t, (o) => (o.attributes & 1) !== 0));
      assert.deepEqual(keysOf(await catSearchAll(a.v, { attributes: { bits: 0, mask: 0x0001 } })), expect(t, (o) => (o.attributes & 1) === 0));
      const locked = expect(t, (o) => o.attributes === 0x01a0);
      assert.equal(locked.length, 1);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { attributes: { bits: 0x01a0, mask: 0x01a0 } }, { dirBitmap: 0 })), locked);
      assert.deepEqual(keysOf(await catSearchAll(a.v, { attributes: { bits: 0x0100, mask: 0x0100 } }, { dirBitmap: 0 })), locked, 'as afptest asks');
      const mask = Buffer.alloc(32);
      mask.fill(0xff, 0, 4);
      const text = await catSearchAll(a.v, { finderInfo: { bytes: Buffer.from('TEXT'), mask } });
      assert.deepEqual(text.map((e) => e.params.utf8Name).sort(), ['file-Alpha-0-0.txt', 'notes-2.md']);
      assert.ok(text.every((e) => e.params.finderInfo!.subarray(0, 8).toString('latin1') === 'TEXTttxt'));
      await close(a, b);
    });

    test('paging: small ReqMatches and a small work budget give every match exactly once', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b, t } = await env(g);
      const want = expect(t, (o) => folded(o.name).includes('file-'));
      assert.equal(want.length, TOPS.length * SUBS * FILES);
      const pages: CatSearchPage[] = [];
      const got = await catSearchAll(a.v, { utf8Name: 'FILE-' }, { reqMatches: 7, onPage: (p) => pages.push(p) });
      assert.deepEqual(keysOf(got), want);
      assert.ok(pages.length >= Math.ceil(want.length / 7));
      assert.ok(pages.every((p) => p.entries.length <= 7));
      assert.ok(pages.slice(0, -1).every((p) => p.code === kFPNoErr && !p.position.equals(Buffer.alloc(16))));
      const legacy = await catSearchAll(a.v, { longName: 'file-beta' }, { variant: 'legacy', reqMatches: 5 });
      assert.deepEqual(legacy.map((e) => key(e.params.parentId!, e.params.longName!)).sort(), expect(t, (o) => folded(o.name).includes('file-beta')));
      const saved = { ...catSearchLimits };
      try {
        catSearchLimits.examined = 10;
        catSearchLimits.storeCalls = 3;
        const slow: CatSearchPage[] = [];
        const report = await catSearchAll(a.v, { utf8Name: 'report 2020' }, { onPage: (p) => slow.push(p) });
        assert.equal(report.length, 1);
        assert.ok(slow.length > 20, `${slow.length} calls`);
        assert.ok(slow.filter((p) => p.entries.length === 0 && !p.done).length > 10, 'calls that found nothing still move on');
        assert.deepEqual(keysOf(await catSearchAll(a.v, {}, { reqMatches: 3 })), expect(t, () => true));
        assert.deepEqual(keysOf(await catSearchAll(b.v, {}, { reqMatches: 11 })), expect(t, () => true, 'bob'));
      } finally {
        Object.assign(catSearchLimits, saved);
      }
      await close(a, b);
    });

    test('CatalogPosition: garbage and stale positions are kFPCatalogChanged; a new search starts over', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b } = await env(g);
      const d = await a.v.createDir(ROOT, 'Volatile');
      for (let i = 0; i < 5; i++) await a.v.createFile(d, `volatile-${i}`);
      const q: CatSearchQuery = { utf8Name: 'volatile-' };
      const first = await catSearch(a.v, q, { reqMatches: 1, dirBitmap: 0 });
      assert.equal(first.code, kFPNoErr);
      assert.deepEqual(first.entries.map((e) => e.params.utf8Name), ['volatile-0']);
      const second = await catSearch(a.v, q, { reqMatches: 1, dirBitmap: 0, position: first.position });
      assert.deepEqual(second.entries.map((e) => e.params.utf8Name), ['volatile-1'], 'the same position resumes again');
      const garbage = Buffer.from(first.position);
      garbage[12]! ^= 1;
      assert.equal(await code(catSearch(a.v, q, { position: garbage })), kFPCatalogChanged);
      assert.equal(await code(catSearch(a.v, q, { position: Buffer.alloc(16, 0xab) })), kFPCatalogChanged);
      await a.v.delete(d, 'volatile-0');
      assert.equal(await code(catSearch(a.v, q, { position: first.position, dirBitmap: 0 })), kFPCatalogChanged, 'the object it names is gone');
      const again = await catSearchAll(a.v, q, { dirBitmap: 0 });
      assert.deepEqual(again.map((e) => e.params.utf8Name), ['volatile-1', 'volatile-2', 'volatile-3', 'volatile-4']);
      for (let i = 1; i < 5; i++) await a.v.delete(d, `volatile-${i}`);
      await a.v.delete(ROOT, 'Volatile');
      await close(a, b);
    });

    test('bad requests: unknown or misplaced criteria, truncated Specs, no results asked for', async (tc) => {
      const g = gw();
      if (!g) return tc.skip(SKIP_REASON);
      const { a, b } = await env(g);
      const raw = async (req: Buffer): Promise<number> => (await a.c.raw(req)).code;
      const name = buildSpecs({ utf8Name: 'x' }, true, true);
      for (const bit of [0x0080, 0x0100, 0x1000, 0x8000, 0x00010000]) {
        assert.equal(await code(catSearch(a.v, {}, { reqBitmap: bit })), kFPBitmapErr, `ReqBitmap 0x${bit.toString(16)}`);
      }
      assert.equal(await code(catSearch(a.v, {}, { reqBitmap: 0x0200, specs: [Buffer.alloc(4), Buffer.alloc(4)] })), kFPBitmapErr, 'DataForkLen or OffspringCount?');
      assert.equal(await code(catSearch(a.v, {}, { fileBitmap: 0, reqBitmap: 0x0400, specs: [Buffer.alloc(4), Buffer.alloc(4)] })), kFPBitmapErr);
      assert.equal(await code(catSearch(a.v, {}, { fileBitmap: 0, dirBitmap: 0 })), kFPBitmapErr);
      assert.equal(await code(catSearch(a.v, {}, { fileBitmap: 0x1000 })), kFPBitmapErr);
      // Specs too short for what ReqBitmap says they hold.
      assert.equal(await code(catSearch(a.v, {}, { reqBitmap: 0x0001, specs: [Buffer.alloc(1), Buffer.alloc(2)] })), kFPParamErr);
      assert.equal(await code(catSearch(a.v, {}, { reqBitmap: 0x0008, specs: [Buffer.alloc(4), Buffer.alloc(2)] })), kFPParamErr, 'Spec2 lacks the upper bound');
      const farName = Buffer.from(name.specs[0]);
      farName.writeUInt16BE(200, 0);
      assert.equal(await code(catSearch(a.v, {}, { reqBitmap: name.reqBitmap, specs: [farName, name.specs[1]] })), kFPParamErr, 'name offset past the Spec');
      const badUtf8 = Buffer.concat([name.specs[0].subarray(0, -1), Buffer.from([0xff])]);
      assert.equal(await code(catSearch(a.v, {}, { reqBitmap: name.reqBitmap, specs: [badUtf8, name.specs[1]] })), kFPParamErr);
      const full = buildCatSearch(a.v.id, { utf8Name: 'x' });
      assert.equal(await raw(full.subarray(0, full.length - 3)), kFPParamErr, 'Spec2 cut short');
      assert.equal(await raw(full.subarray(0, 30)), kFPParamErr, 'cut before ReqBitmap');
      const legacy = buildCatSearch(a.v.id, { longName: 'x' }, { variant: 'legacy' });
      assert.equal(await raw(legacy.subarray(0, legacy.length - 1)), kFPParamErr);
      assert.equal(await code(catSearch(a.v, {}, { reqMatches: 0 })), kFPParamErr);
      assert.equal(await raw(buildCatSearch(77, {})), kFPParamErr, 'a volume that is not open');
      // Lenient where it costs nothing: names need nothing from Spec2.
      const none = buildSpecs({ utf8Name: 'nothing is called this' }, true, true);
      const noSpec2 = await catSearch(a.v, {}, { reqBitmap: none.reqBitmap, specs: [none.specs[0], Buffer.alloc(0)] });
      assert.equal(noSpec2.code, kFPEOFErr);
      assert.deepEqual(noSpec2.entries, []);
      await close(a, b);
    });
  });
}
