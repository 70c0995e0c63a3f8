import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AfpClient } from '../../src/client/afp-client.js';
import { AfpDesktop } from '../../src/client/afp-desktop.js';
import { encodePath, ROOT, type AfpVolume } from '../../src/client/afp-volume.js';
import { AfpCommand } from '../../src/afp/commands.js';
import {
  kFPAccessDenied,
  kFPBitmapErr,
  kFPIconTypeError,
  kFPItemNotFound,
  kFPNoErr,
  kFPObjectNotFound,
  kFPObjectTypeErr,
  kFPDiskFull,
  kFPParamErr,
} from '../../src/afp/result-codes.js';
import { Writer } from '../../src/wire/writer.js';
import { BACKENDS, gatewayFor, SKIP_REASON } from '../helpers/backends.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { resultCode as code } from '../helpers/afp.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };


async function session(g: TestGateway, who = ALICE, volume = 'TimeMachine'): Promise<{ c: AfpClient; v: AfpVolume; dt: AfpDesktop }> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: who.name, password: who.password });
  const v = await c.openVolume(volume);
  return { c, v, dt: await AfpDesktop.open(v) };
}

/** `Cmd Pad DTRefNum` and whatever follows, sent as one DSICommand. */
function request(cmd: number, ref: number, rest: (w: Writer) => Writer = (w) => w): Buffer {
  return rest(new Writer(64).u8(cmd).u8(0).u16(ref)).finish();
}

for (const backend of BACKENDS) {
  describe(`the desktop database (${backend} store)`, () => {
    const gw = gatewayFor(backend, {
      users: [ALICE, BOB],
      config: {
        volumes: [
          { name: 'TimeMachine', timeMachine: true },
          { name: 'Other', timeMachine: false },
        ],
      },
    });

    test('FPOpenDT answers the volume ID, FPCloseDT takes it back, and any other reference is kFPParamErr', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v, dt } = await session(g);
      assert.equal(dt.ref, v.id);
      assert.equal(await code(AfpDesktop.open(v, 0x7777)), kFPParamErr);
      const bad = dt.withRef(0xffff);
      const calls: [string, () => Promise<unknown>][] = [
        ['FPCloseDT', () => bad.close()],
        ['FPAddIcon', () => bad.addIcon('ttxt', 'TEXT', 1, 0, Buffer.alloc(8))],
        ['FPGetIcon', () => bad.getIcon('ttxt', 'TEXT', 1)],
        ['FPGetIconInfo', () => bad.getIconInfo('ttxt', 1)],
        ['FPAddAPPL', () => bad.addAppl(ROOT, 'x', 'ttxt', 0)],
        ['FPRemoveAPPL', () => bad.removeAppl(ROOT, 'x', 'ttxt')],
        ['FPGetAPPL', () => bad.getAppl('ttxt', 1)],
        ['FPAddComment', () => bad.addComment(ROOT, '', 'x')],
        ['FPRemoveComment', () => bad.removeComment(ROOT, '')],
        ['FPGetComment', () => bad.getComment(ROOT, '')],
      ];
      for (const [name, call] of calls) assert.equal(await code(call()), kFPParamErr, name);
      await dt.close();
      // Closing the desktop keeps the reference usable while the volume is open (as netatalk).
      assert.equal(await code(dt.getIconInfo('none', 1)), kFPItemNotFound);
      await v.close();
      assert.equal(await code(dt.getIconInfo('none', 1)), kFPParamErr, 'a closed volume takes its DTRefNum along');
      await c.close();
    });

    test('icons round-trip byte for byte by creator, type and icon type, and are listed by index', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, dt } = await session(g);
      const icons = [
        { type: 'TEXT', iconType: 1, tag: 0x01020304, data: randomBytes(256) }, // ICN#
        { type: 'TEXT', iconType: 4, tag: 0, data: randomBytes(64) }, // ics#
        { type: 'TEXT', iconType: 2, tag: 7, data: randomBytes(1024) }, // icl8
        { type: 'APPL', iconType: 3, tag: 0xffffffff, data: randomBytes(512) }, // icl4
        { type: Buffer.from([0, 0xff, 0x2f, 0x80]), iconType: 0xff, tag: 9, data: Buffer.alloc(16 * 1024, 0xa5) },
      ];
      for (const i of icons) await dt.addIcon('dIcn', i.type, i.iconType, i.tag, i.data);
      await dt.addIcon(Buffer.from([0, 0, 0, 0]), 'TEXT', 1, 5, Buffer.from('other creator'));
      for (const i of icons) {
        assert.deepEqual(await dt.getIcon('dIcn', i.type, i.iconType), i.data);
        assert.deepEqual(await dt.getIcon('dIcn', i.type, i.iconType, 10), i.data.subarray(0, 10), 'a short Length gets a prefix');
        assert.deepEqual(await dt.getIcon('dIcn', i.type, i.iconType, 0), Buffer.alloc(0), 'Length 0 only says it exists');
      }
      const listed = await dt.listIcons('dIcn');
      assert.equal(listed.length, icons.length);
      const describe = (i: (typeof icons)[number]): string => {
        const type = typeof i.type === 'string' ? i.type : i.type.toString('latin1');
        return JSON.stringify({ tag: i.tag, type, iconType: i.iconType, size: i.data.length });
      };
      assert.deepEqual(listed.map((l) => JSON.stringify(l)).sort(), icons.map(describe).sort());
      assert.deepEqual(await dt.getIconInfo('dIcn', 1), listed[0], 'the order is stable');
      assert.equal(await code(dt.getIconInfo('dIcn', icons.length + 1)), kFPItemNotFound);
      assert.equal(await code(dt.getIconInfo('dIcn', 0)), kFPItemNotFound, 'IconIndex is 1-based');
      assert.equal(await code(dt.getIconInfo('none', 1)), kFPItemNotFound);
      assert.deepEqual((await dt.listIcons(Buffer.alloc(4))).map((l) => l.size), [13]);
      assert.equal(await code(dt.getIcon('dIcn', 'TEXT', 9)), kFPItemNotFound);
      assert.equal(await code(dt.getIcon('none', 'TEXT', 1)), kFPItemNotFound);

      // Same size: replaced, tag and all. Another size: kFPIconTypeError, and nothing changes.
      const again = randomBytes(256);
      await dt.addIcon('dIcn', 'TEXT', 1, 42, again);
      assert.deepEqual(await dt.getIcon('dIcn', 'TEXT', 1), again);
      assert.equal((await dt.listIcons('dIcn')).find((l) => l.type === 'TEXT' && l.iconType === 1)!.tag, 42);
      assert.equal(await code(dt.addIcon('dIcn', 'TEXT', 1, 42, randomBytes(128))), kFPIconTypeError);
      assert.deepEqual(await dt.getIcon('dIcn', 'TEXT', 1), again);

      // The bitmap must be what BitmapSize says, and not empty.
      assert.equal(await code(dt.addIcon('dIcn', 'PICT', 1, 0, randomBytes(100), 99)), kFPParamErr);
      assert.equal(await code(dt.addIcon('dIcn', 'PICT', 1, 0, randomBytes(100), 101)), kFPParamErr);
      assert.equal(await code(dt.addIcon('dIcn', 'PICT', 1, 0, Buffer.alloc(0))), kFPParamErr);
      assert.equal(await code(dt.getIcon('dIcn', 'PICT', 1)), kFPItemNotFound);

      // A bitmap sent inline in a DSICommand is taken as well.
      const inline = request(AfpCommand.FPAddIcon, dt.ref, (w) => w.bytes(Buffer.from('dIcnPICT', 'latin1')).u8(1).u8(0).u32(3).u16(4).bytes(Buffer.from([1, 2, 3, 4])));
      assert.equal((await c.raw(inline)).code, kFPNoErr);
      assert.deepEqual(await dt.getIcon('dIcn', 'PICT', 1), Buffer.from([1, 2, 3, 4]));
      await c.close();
    });

    test('the database is per volume and outlives the session', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const a = await session(g);
      const icon = randomBytes(128);
      await a.dt.addIcon('pVol', 'TEXT', 1, 1, icon);
      await a.v.createFile(ROOT, 'kept');
      await a.dt.addComment(ROOT, 'kept', 'still here');
      await a.c.close();
      const b = await session(g);
      assert.deepEqual(await b.dt.getIcon('pVol', 'TEXT', 1), icon);
      assert.equal((await b.dt.getComment(ROOT, 'kept')).toString(), 'still here');
      const other = await b.c.openVolume('Other');
      const odt = await AfpDesktop.open(other);
      assert.equal(odt.ref, other.id);
      assert.notEqual(odt.ref, b.dt.ref);
      assert.equal(await code(odt.getIcon('pVol', 'TEXT', 1)), kFPItemNotFound);
      await b.c.close();
    });

    test('APPL mappings: add, get by index with file parameters, follow a rename, remove', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v, dt } = await session(g);
      const apps = await v.createDir(ROOT, 'Applications');
      await v.createFile(apps, 'Writer');
      await v.createFile(ROOT, 'Writer Copy');
      assert.equal(await code(dt.getAppl('WrTr', 1)), kFPItemNotFound);
      await dt.addAppl(apps, 'Writer', 'WrTr', 0x1111);
      await dt.addAppl(ROOT, 'Writer Copy', 'WrTr', 0x2222);
      const writerId = (await v.getFileDirParms(apps, 'Writer')).params.nodeId;

      // Newest first; index 0 is the newest too.
      const first = await dt.getAppl('WrTr', 1);
      assert.equal(first.tag, 0x2222);
      assert.equal(first.params.utf8Name, 'Writer Copy');
      assert.equal(first.params.parentId, ROOT);
      assert.deepEqual(await dt.getAppl('WrTr', 0), first);
      const second = await dt.getAppl('WrTr', 2, 0x0002 | 0x0100 | 0x2000);
      assert.deepEqual(second, { tag: 0x1111, params: { parentId: apps, nodeId: writerId, utf8Name: 'Writer' } });
      assert.equal(await code(dt.getAppl('WrTr', 3)), kFPItemNotFound);
      assert.equal(await code(dt.getAppl('othr', 1)), kFPItemNotFound);
      assert.equal(await code(dt.getAppl('WrTr', 1, 0xffff)), kFPBitmapErr);

      // Adding again updates the tag and makes it the newest.
      await dt.addAppl(apps, 'Writer', 'WrTr', 0x3333);
      assert.equal((await dt.getAppl('WrTr', 1)).tag, 0x3333);
      assert.equal((await dt.getAppl('WrTr', 2)).tag, 0x2222);

      // Mappings name the file itself: they follow renames and moves.
      await v.rename(apps, 'Writer', 'Writer Pro');
      await v.moveAndRename(apps, 'Writer Pro', ROOT, '');
      const moved = await dt.getAppl('WrTr', 1);
      assert.equal(moved.params.utf8Name, 'Writer Pro');
      assert.equal(moved.params.parentId, ROOT);

      // Only files, only existing ones.
      assert.equal(await code(dt.addAppl(ROOT, 'Applications', 'WrTr', 0)), kFPObjectTypeErr);
      assert.equal(await code(dt.addAppl(apps, '', 'WrTr', 0)), kFPObjectTypeErr);
      assert.equal(await code(dt.addAppl(ROOT, 'nope', 'WrTr', 0)), kFPObjectNotFound);
      assert.equal(await code(dt.addAppl(999_999, 'x', 'WrTr', 0)), kFPObjectNotFound);

      // Removing names creator and path.
      assert.equal(await code(dt.removeAppl(ROOT, 'Writer Pro', 'othr')), kFPItemNotFound);
      assert.equal(await code(dt.removeAppl(ROOT, 'Applications', 'WrTr')), kFPObjectTypeErr);
      await dt.removeAppl(ROOT, 'Writer Pro', 'WrTr');
      assert.equal(await code(dt.removeAppl(ROOT, 'Writer Pro', 'WrTr')), kFPItemNotFound);
      assert.equal((await dt.getAppl('WrTr', 1)).params.utf8Name, 'Writer Copy');
      assert.equal(await code(dt.getAppl('WrTr', 2)), kFPItemNotFound);

      // A deleted application drops out of the list; its path, now dangling, still removes it.
      await v.delete(ROOT, 'Writer Copy');
      assert.equal(await code(dt.getAppl('WrTr', 1)), kFPItemNotFound);
      await v.createDir(ROOT, 'Writer Copy');
      assert.equal(await code(dt.getAppl('WrTr', 1)), kFPItemNotFound, 'a directory under the old name is not the application');
      await v.delete(ROOT, 'Writer Copy');
      await dt.removeAppl(ROOT, 'Writer Copy', 'WrTr');
      assert.equal(await code(dt.removeAppl(ROOT, 'Writer Copy', 'WrTr')), kFPItemNotFound);
      await c.close();
    });

    test('comments: add, get, replace, remove, on files, directories and the root; they follow a renamed file', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v, dt } = await session(g);
      const dir = await v.createDir(ROOT, 'Commented');
      await v.createFile(dir, 'note.txt');
      assert.equal(await code(dt.getComment(dir, 'note.txt')), kFPItemNotFound);
      const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0d, 0x0a]);
      await dt.addComment(dir, 'note.txt', binary);
      assert.deepEqual(await dt.getComment(dir, 'note.txt'), binary);
      await dt.addComment(dir, 'note.txt', 'Größe: ünïcödé');
      assert.equal((await dt.getComment(dir, 'note.txt')).toString('utf8'), 'Größe: ünïcödé');

      // The comment belongs to the file, not to its name.
      await v.rename(dir, 'note.txt', 'renamed.txt');
      assert.equal(await code(dt.getComment(dir, 'note.txt')), kFPObjectNotFound);
      assert.equal((await dt.getComment(dir, 'renamed.txt')).toString('utf8'), 'Größe: ünïcödé');
      await v.moveAndRename(dir, 'renamed.txt', ROOT, '', 'moved.txt');
      assert.equal((await dt.getComment(ROOT, 'moved.txt')).toString('utf8'), 'Größe: ünïcödé');
      await v.createFile(dir, 'note.txt');
      assert.equal(await code(dt.getComment(dir, 'note.txt')), kFPItemNotFound, 'a new file under the old name has none');

      // Directories (by path or by DirID with an empty path) and the volume root.
      await dt.addComment(ROOT, 'Commented', 'a folder');
      assert.equal((await dt.getComment(dir, '')).toString(), 'a folder');
      // The shared root belongs to the volume: users add entries there, not comments on it.
      assert.equal(await code(dt.addComment(ROOT, '', 'the volume')), kFPAccessDenied);
      assert.equal(await code(dt.getComment(1, ['TimeMachine'])), kFPItemNotFound);

      // 199 bytes at most: longer ones are cut. An empty comment removes it.
      const max = randomBytes(199);
      await dt.addComment(ROOT, 'moved.txt', max);
      assert.deepEqual(await dt.getComment(ROOT, 'moved.txt'), max);
      const long = randomBytes(255);
      await dt.addComment(ROOT, 'moved.txt', long);
      assert.deepEqual(await dt.getComment(ROOT, 'moved.txt'), long.subarray(0, 199));
      await dt.addComment(ROOT, 'moved.txt', '');
      assert.equal(await code(dt.getComment(ROOT, 'moved.txt')), kFPItemNotFound);

      await dt.removeComment(dir, '');
      assert.equal(await code(dt.getComment(dir, '')), kFPItemNotFound);
      assert.equal(await code(dt.removeComment(dir, '')), kFPItemNotFound);
      assert.equal(await code(dt.removeComment(ROOT, 'moved.txt')), kFPItemNotFound);

      // Missing objects are kFPObjectNotFound, as for every path.
      assert.equal(await code(dt.addComment(ROOT, 'missing/file', 'x')), kFPObjectNotFound);
      assert.equal(await code(dt.getComment(ROOT, 'missing')), kFPObjectNotFound);
      assert.equal(await code(dt.removeComment(ROOT, 'missing')), kFPObjectNotFound);
      await c.close();
    });

    test('changing desktop data takes write permission on the object or the right to rename it', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const a = await session(g);
      const priv = await a.v.createDir(ROOT, 'alice-private');
      await a.v.createFile(priv, 'doc');
      await a.v.createFile(ROOT, 'alice-top');
      await a.dt.addComment(priv, 'doc', 'mine');
      await a.dt.addAppl(priv, 'doc', 'ALCE', 1);
      const b = await session(g, BOB);
      // A read-only file in a directory bob cannot write, and one in the sticky root.
      for (const [dirId, name] of [[priv, 'doc'], [ROOT, 'alice-top']] as const) {
        assert.equal(await code(b.dt.addComment(dirId, name, 'bob was here')), kFPAccessDenied, name);
        assert.equal(await code(b.dt.addAppl(dirId, name, 'BOB!', 1)), kFPAccessDenied, name);
      }
      assert.equal(await code(b.dt.removeComment(priv, 'doc')), kFPAccessDenied);
      assert.equal(await code(b.dt.removeAppl(priv, 'doc', 'ALCE')), kFPAccessDenied);
      assert.equal((await b.dt.getComment(priv, 'doc')).toString(), 'mine', 'reading needs no write permission');
      assert.equal((await b.dt.getAppl('ALCE', 1)).params.utf8Name, 'doc');
      // In his own directory bob annotates alice's read-only file: he may rename it there.
      const bobs = await b.v.createDir(ROOT, 'bob-dir');
      await b.v.setParms('dir', ROOT, 'bob-dir', 0x8000, { unixPrivs: { uid: 0, gid: 0, mode: 0o040777, accessRights: 0 } });
      await a.v.createFile(bobs, 'from-alice');
      assert.equal(await code(b.dt.addAppl(bobs, 'from-alice', 'BOB!', 1)), 0);
      await b.dt.addComment(bobs, 'from-alice', 'ok');
      await b.dt.removeComment(bobs, 'from-alice');
      await a.c.close();
      await b.c.close();
    });

    test('malformed requests: truncated fields, stale DirIDs, bad path types', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v, dt } = await session(g);
      await v.createFile(ROOT, 'target');
      const stale = await v.createDir(ROOT, 'stale');
      await v.delete(ROOT, 'stale');
      const ref = dt.ref;
      const cases: [string, Buffer, number][] = [
        ['FPOpenDT without a volume', Buffer.from([AfpCommand.FPOpenDT, 0]), kFPParamErr],
        ['FPCloseDT without a reference', Buffer.from([AfpCommand.FPCloseDT, 0, 0]), kFPParamErr],
        ['FPGetIcon without Length', request(AfpCommand.FPGetIcon, ref, (w) => w.bytes(Buffer.from('ttxtTEXT')).u8(1).u8(0)), kFPParamErr],
        ['FPGetIconInfo without an index', request(AfpCommand.FPGetIconInfo, ref, (w) => w.bytes(Buffer.from('ttxt'))), kFPParamErr],
        ['FPGetAPPL without a bitmap', request(AfpCommand.FPGetAPPL, ref, (w) => w.bytes(Buffer.from('ttxt')).u16(1)), kFPParamErr],
        ['FPAddAPPL without a path', request(AfpCommand.FPAddAPPL, ref, (w) => w.u32(ROOT).bytes(Buffer.from('ttxt')).u32(0)), kFPParamErr],
        ['FPAddAPPL with a short creator', request(AfpCommand.FPAddAPPL, ref, (w) => w.u32(ROOT).bytes(Buffer.from('tt'))), kFPParamErr],
        ['FPRemoveAPPL with a bad path type', request(AfpCommand.FPRemoveAPPL, ref, (w) => w.u32(ROOT).bytes(Buffer.from('ttxt')).u8(9).u8(0)), kFPParamErr],
        ['FPAddComment without its comment', request(AfpCommand.FPAddComment, ref, (w) => w.u32(ROOT).bytes(encodePath('target'))), kFPParamErr],
        ['FPAddComment shorter than its length byte', request(AfpCommand.FPAddComment, ref, (w) => w.u32(ROOT).bytes(encodePath('target')).alignEven().u8(20).bytes(Buffer.from('short'))), kFPParamErr],
        ['FPGetComment without a path', request(AfpCommand.FPGetComment, ref, (w) => w.u32(ROOT)), kFPParamErr],
        // A stale DirID wins over what is missing after it, as netatalk answers.
        ['FPAddAPPL in a deleted directory', request(AfpCommand.FPAddAPPL, ref, (w) => w.u32(stale)), kFPObjectNotFound],
        ['FPRemoveAPPL in a deleted directory', request(AfpCommand.FPRemoveAPPL, ref, (w) => w.u32(stale)), kFPObjectNotFound],
        ['FPAddComment in a deleted directory', request(AfpCommand.FPAddComment, ref, (w) => w.u32(stale)), kFPObjectNotFound],
        ['FPRemoveComment in a deleted directory', request(AfpCommand.FPRemoveComment, ref, (w) => w.u32(stale)), kFPObjectNotFound],
        ['FPGetComment in a deleted directory', request(AfpCommand.FPGetComment, ref, (w) => w.u32(stale)), kFPObjectNotFound],
      ];
      for (const [name, req, expected] of cases) assert.equal((await c.raw(req)).code, expected, name);
      // A DSIWrite whose command header stops short.
      const shortHeader = request(AfpCommand.FPAddIcon, ref, (w) => w.bytes(Buffer.from('ttxtTEXT')).u8(1));
      assert.equal((await c.dsi.write(shortHeader, Buffer.alloc(16))).code, kFPParamErr);
      // The session carries on.
      await dt.addComment(ROOT, 'target', 'fine');
      assert.equal((await dt.getComment(ROOT, 'target')).toString(), 'fine');
      await c.close();
    });
  });
}

test('desktop database and xattr caps bound what one client can store and load', async () => {
  const g = await startTestGateway({ users: [{ name: 'cap', password: 'cap-pw' }] });
  try {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: 'cap', password: 'cap-pw' });
    const v = await c.openVolume('TimeMachine');
    const dt = await AfpDesktop.open(v);
    const creator = Buffer.from('CAPS');
    for (let i = 0; i < 64; i++) await dt.addIcon(creator, Buffer.from([0, 0, 0, i]), 1, i, Buffer.alloc(256, i));
    assert.equal(await code(dt.addIcon(creator, Buffer.from('NEW!'), 1, 0, Buffer.alloc(256))), kFPDiskFull);
    assert.equal(await code(dt.addIcon(Buffer.from('BIG!'), Buffer.from('TYPE'), 1, 0, Buffer.alloc(16 * 1024 + 1))), kFPParamErr);
    await v.createFile(ROOT, 'many-xattrs');
    for (let i = 0; i < 64; i++) await v.setXattr(ROOT, 'many-xattrs', `user.x${i}`, Buffer.from([i]));
    assert.equal(await code(v.setXattr(ROOT, 'many-xattrs', 'user.one-more', Buffer.from('x'))), kFPDiskFull);
    await v.setXattr(ROOT, 'many-xattrs', 'user.x3', Buffer.from('replaced'));
    await c.close();
  } finally {
    await g.stop();
  }
});
