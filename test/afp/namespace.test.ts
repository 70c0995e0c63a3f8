import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AfpClient } from '../../src/client/afp-client.js';
import { AfpVolume, ROOT } from '../../src/client/afp-volume.js';
import { AfpCommand } from '../../src/afp/commands.js';
import { SET_CLEAR } from '../../src/afp/params.js';
import {
  kFPAccessDenied,
  kFPBitmapErr,
  kFPCantMove,
  kFPCantRename,
  kFPDirNotEmpty,
  kFPDirNotFound,
  kFPIDExists,
  kFPIDNotFound,
  kFPItemNotFound,
  kFPMiscErr,
  kFPObjectExists,
  kFPObjectNotFound,
  kFPObjectTypeErr,
  kFPParamErr,
  kFPSameObjectErr,
} from '../../src/afp/result-codes.js';
import { Writer } from '../../src/wire/writer.js';
import { BACKENDS, gatewayFor, SKIP_REASON } from '../helpers/backends.js';
import type { TestGateway } from '../helpers/gateway.js';
import { resultCode as code } from '../helpers/afp.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };


async function session(g: TestGateway, who = ALICE, version?: string): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: who.name, password: who.password, ...(version ? { version } : {}) });
  return { c, v: await c.openVolume('TimeMachine') };
}

for (const backend of BACKENDS) {
  describe(`volumes and the namespace (${backend} store)`, () => {
    const gw = gatewayFor(backend, {
      users: [ALICE, BOB],
      config: {
        volumes: [
          { name: 'TimeMachine', timeMachine: true, sizeLimit: '2TiB' },
          { name: 'Locked', timeMachine: false, password: 'sesame', users: ['alice'] },
        ],
      },
    });

    test('FPOpenVol and FPGetVolParms describe a Time Machine volume', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const p = v.params;
      assert.equal(p.volumeId, 1);
      assert.equal(p.volumeName, 'TimeMachine');
      assert.equal(p.signature, 2);
      // FileIDs | CatSearch | UnixPrivs | UTF8Names | NoNetworkUserIDs | ExtAttrs | TMLockSteal
      assert.equal(p.attributes, 0x0004 | 0x0008 | 0x0020 | 0x0040 | 0x0080 | 0x0400 | 0x2000);
      assert.equal(p.bytesTotal, 2 * 2 ** 40);
      assert.ok(p.bytesFree! <= p.bytesTotal!);
      const again = await v.getParms(0x0fff);
      assert.equal(again.bytesTotal, 2 * 2 ** 40);
      const small = await v.getParms(0x00c0);
      assert.equal(small.bytesTotal, 0xffffffff, '32-bit fields clamp');
      assert.equal(await code(v.getParms(0x1000)), kFPBitmapErr);
      await v.setBackupDate(Date.UTC(2026, 0, 2));
      assert.equal((await v.getParms(0x0010)).backupAt, Date.UTC(2026, 0, 2));
      await v.close();
      assert.equal(await code(v.getParms()), kFPParamErr, 'a closed volume ID is a parameter error');
      await c.close();
    });

    test('FPOpenVol refusals: unknown name, missing VolumeID bit, users list, password', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c } = await session(g);
      assert.equal(await code(c.openVolume('Nope')), kFPObjectNotFound);
      assert.equal(await code(c.openVolume('TimeMachine', { bitmap: 0x0001 })), kFPBitmapErr);
      assert.equal(await code(c.openVolume('Locked')), kFPAccessDenied);
      assert.equal(await code(c.openVolume('Locked', { password: 'wrong' })), kFPAccessDenied);
      const locked = await c.openVolume('locked', { password: 'sesame' });
      assert.equal(locked.id, 2);
      assert.equal(locked.params.attributes! & 0x2002, 0x0002, 'a password volume that is not for Time Machine');
      await c.close();
      const b = await session(g, BOB);
      assert.equal(await code(b.c.openVolume('Locked', { password: 'sesame' })), kFPAccessDenied);
      await b.c.close();
    });

    test('the root: DirID 2 with an empty path, and DirID 1 with the volume name', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const root = await v.getFileDirParms(ROOT, '');
      assert.ok(root.isDir);
      assert.equal(root.params.nodeId, 2);
      assert.equal(root.params.parentId, 1);
      assert.equal(root.params.utf8Name, 'TimeMachine');
      assert.equal(root.params.unixPrivs!.mode, 0o041777);
      const viaOne = await v.getFileDirParms(1, ['TimeMachine']);
      assert.equal(viaOne.params.nodeId, 2);
      assert.equal(await code(v.getFileDirParms(1, ['Other'])), kFPObjectNotFound);
      await c.close();
    });

    test('create, look up in NFC or NFD and any case, and the parameters of new objects', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const dirId = await v.createDir(ROOT, 'Café Ünïcode'.normalize('NFD'));
      assert.ok(dirId >= 17);
      await v.createFile(dirId, 'Notes.txt');
      const byNfc = await v.getFileDirParms(ROOT, ['Café Ünïcode'.normalize('NFC'), 'notes.TXT']);
      const byNfd = await v.getFileDirParms(ROOT, ['CAFÉ ÜNÏCODE'.normalize('NFD'), 'Notes.txt']);
      assert.equal(byNfc.params.nodeId, byNfd.params.nodeId);
      assert.equal(byNfc.isDir, false);
      const f = byNfc.params;
      assert.equal(f.parentId, dirId);
      assert.equal(f.utf8Name, 'Notes.txt');
      assert.equal(f.dataLength, 0);
      assert.equal(f.backupAt, null, 'new objects were never backed up');
      assert.equal(f.unixPrivs!.mode, 0o100644);
      assert.equal(f.unixPrivs!.uid, (await g.gw.meta.getUser('alice'))!.uid);
      assert.deepEqual(f.finderInfo, Buffer.alloc(32));
      const d = await v.getFileDirParms(ROOT, ['Café Ünïcode']);
      assert.equal(d.params.utf8Name, 'Café Ünïcode'.normalize('NFD'), 'the name comes back as the Mac sent it (decomposed)');
      assert.equal(d.params.offspringCount, 1);
      assert.equal(d.params.unixPrivs!.mode, 0o040755);
      assert.equal(d.params.accessRights! >>> 0, (0x80000000 | 0x07000000 | 0x030000 | 0x0300 | 0x07) >>> 0);
      assert.equal(d.params.longName, 'Café Ünïcode', 'Mac Roman long name');
      await c.close();
    });

    test('names come back byte for byte, even where JavaScript NFD and HFS+ disagree', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const d = await v.createDir(ROOT, 'exact');
      // OHM SIGN, a CJK compatibility ideograph, EN QUAD: HFS+ leaves them, JS NFD maps them.
      const odd = ['\u2126 ohm', '\uF900 cjk', 'quad\u2000x', 'a\u0301 decomposed'];
      for (const n of odd) await v.createFile(d, [n]);
      const back = (await v.enumerateAll(d, '')).map((e) => e.params.utf8Name!);
      assert.deepEqual(back.sort(), [...odd].sort());
      await c.close();
    });

    test('creates that clash, soft and hard', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await v.createDir(ROOT, 'clash');
      assert.equal(await code(v.createDir(ROOT, 'CLASH')), kFPObjectExists);
      assert.equal(await code(v.createFile(ROOT, 'clash')), kFPObjectExists);
      await v.createFile(ROOT, 'clash-file');
      assert.equal(await code(v.createFile(ROOT, 'clash-file')), kFPObjectExists);
      const before = (await v.getFileDirParms(ROOT, 'clash-file')).params.nodeId;
      await v.createFile(ROOT, 'clash-file', true);
      assert.equal((await v.getFileDirParms(ROOT, 'clash-file')).params.nodeId, before, 'hard create keeps the file and its ID');
      assert.equal(await code(v.createFile(ROOT, ['no-such-dir', 'x'])), kFPObjectNotFound);
      assert.equal(await code(v.createFile(ROOT, ['clash-file', 'x'])), kFPObjectNotFound);
      await c.close();
    });

    test('bad names are refused and leave nothing behind', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const statsBefore = await g.gw.meta.namespace('timemachine', { fold: (s) => s }).stats();
      assert.equal(await code(v.createFile(ROOT, ['x'.repeat(256)])), kFPParamErr);
      assert.equal(await code(v.createFile(ROOT, ['a:b'])), kFPParamErr);
      assert.equal(await code(v.createFile(ROOT, [])), kFPParamErr);
      // Raw requests: invalid UTF-8, and an unknown path type.
      const bad = new Writer(32).u8(AfpCommand.FPCreateFile).u8(0).u16(v.id).u32(ROOT).u8(3).u32(0).u16(2).bytes(Buffer.from([0xc3, 0x28])).finish();
      assert.equal((await c.raw(bad)).code, kFPParamErr);
      const badType = new Writer(32).u8(AfpCommand.FPCreateFile).u8(0).u16(v.id).u32(ROOT).u8(9).u8(1).u8(0x41).finish();
      assert.equal((await c.raw(badType)).code, kFPParamErr);
      const statsAfter = await g.gw.meta.namespace('timemachine', { fold: (s) => s }).stats();
      assert.equal(statsAfter.nodes, statsBefore.nodes);
      await c.close();
    });

    test('paths: ".." steps, trailing NULs, through files', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const a = await v.createDir(ROOT, 'pa');
      const b = await v.createDir(a, 'pb');
      await v.createFile(b, 'leaf');
      assert.equal((await v.getFileDirParms(b, ['..', '..', 'pa'])).params.nodeId, a);
      assert.equal((await v.getFileDirParms(b, ['..'])).params.nodeId, a);
      assert.equal((await v.getFileDirParms(ROOT, ['pa', 'pb', '..', 'pb', 'leaf'])).isDir, false);
      assert.equal(await code(v.getFileDirParms(ROOT, ['..'])), kFPObjectNotFound, 'nothing above the root');
      assert.equal(await code(v.getFileDirParms(999_999, '')), kFPObjectNotFound);
      await c.close();
    });

    test('rename and move: exists, root, cycles, into another directory', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const m = await v.createDir(ROOT, 'mv');
      const sub = await v.createDir(m, 'sub');
      await v.createFile(m, 'one');
      await v.createFile(m, 'two');
      const oneId = (await v.getFileDirParms(m, 'one')).params.nodeId;
      assert.equal(await code(v.rename(m, 'one', 'two')), kFPObjectExists);
      await v.rename(m, 'one', 'one');
      await v.rename(m, 'one', 'ONE');
      assert.equal((await v.getFileDirParms(m, 'one')).params.utf8Name, 'ONE', 'a case-only rename takes');
      await v.rename(m, 'one', 'uno');
      assert.equal((await v.getFileDirParms(m, 'uno')).params.nodeId, oneId, 'IDs follow renames');
      assert.equal(await code(v.rename(ROOT, '', 'x')), kFPCantRename);
      await v.moveAndRename(m, 'uno', sub, '');
      assert.equal((await v.getFileDirParms(sub, 'uno')).params.nodeId, oneId);
      await v.moveAndRename(sub, 'uno', m, '', 'eins');
      assert.equal((await v.getFileDirParms(m, 'eins')).params.parentId, m);
      assert.equal(await code(v.moveAndRename(ROOT, 'mv', sub, '')), kFPCantMove);
      assert.equal(await code(v.moveAndRename(ROOT, 'mv', m, '')), kFPCantMove);
      assert.equal(await code(v.moveAndRename(m, 'eins', m, '', 'two')), kFPObjectExists);
      assert.equal(await code(v.moveAndRename(m, 'eins', m, 'nowhere')), kFPObjectNotFound);
      const dirParams = (await v.getFileDirParms(ROOT, 'mv')).params;
      assert.equal(dirParams.offspringCount, 3);
      await c.close();
    });

    test('FPSyncDir makes the directory durable; files and unknown IDs are refused', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const d = await v.createDir(ROOT, 'synced');
      await v.createFile(d, 'f');
      await v.syncDir(d);
      await v.syncDir(ROOT);
      const f = (await v.getFileDirParms(d, 'f')).params.nodeId!;
      assert.equal(await code(v.syncDir(f)), kFPObjectTypeErr);
      assert.equal(await code(v.syncDir(424_242)), kFPObjectNotFound);
      await c.close();
    });

    test('delete: non-empty directories, the root, and what is left', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const d = await v.createDir(ROOT, 'del');
      await v.createFile(d, 'f');
      assert.equal(await code(v.delete(ROOT, 'del')), kFPDirNotEmpty);
      await v.delete(d, 'f');
      await v.delete(ROOT, 'del');
      assert.equal(await code(v.getFileDirParms(ROOT, 'del')), kFPObjectNotFound);
      assert.equal(await code(v.delete(ROOT, '')), kFPAccessDenied);
      assert.equal(await code(v.delete(ROOT, 'del')), kFPObjectNotFound);
      await c.close();
    });

    test('every settable field is stored and read back', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const d = await v.createDir(ROOT, 'params');
      await v.createFile(d, 'file');
      const fi = Buffer.from('TYPECREA\x01\x00' + 'x'.repeat(22), 'latin1');
      const dates = { createdAt: Date.UTC(2020, 1, 3, 4, 5, 6), modifiedAt: Date.UTC(2021, 6, 7, 8, 9, 10), backupAt: Date.UTC(2022, 11, 12) };
      // Attributes (set Invisible + WriteInhibit), dates, Finder info, Unix privileges.
      await v.setParms('file', d, 'file', 0x0001 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x8000, {
        attributes: SET_CLEAR | 0x0001 | 0x0020,
        ...dates,
        finderInfo: fi,
        unixPrivs: { uid: 0, gid: 0, mode: 0o100600, accessRights: 0 },
      });
      const f = (await v.getFileDirParms(d, 'file')).params;
      assert.equal(f.attributes, 0x0021);
      assert.equal(f.createdAt, dates.createdAt);
      assert.equal(f.modifiedAt, dates.modifiedAt);
      assert.equal(f.backupAt, dates.backupAt);
      assert.deepEqual(f.finderInfo, fi);
      assert.equal(f.unixPrivs!.mode, 0o100600);
      assert.notEqual(f.unixPrivs!.uid, 0, 'a client cannot give a file away');
      // Clear one attribute bit again.
      await v.setParms('either', d, 'file', 0x0001, { attributes: 0x0001 });
      assert.equal((await v.getFileDirParms(d, 'file')).params.attributes, 0x0020);
      // Directory privileges through AccessRights: owner rwx, group r-x, others none.
      await v.setParms('dir', ROOT, 'params', 0x1000, { accessRights: 0x07 | 0x0300 });
      assert.equal((await v.getFileDirParms(ROOT, 'params')).params.unixPrivs!.mode, 0o040750);
      // Fields that cannot be set, and the wrong kind of object.
      assert.equal(await code(v.setParms('file', d, 'file', 0x0200, {})), kFPBitmapErr);
      assert.equal(await code(v.setParms('file', ROOT, 'params', 0x0020, { finderInfo: fi })), kFPObjectTypeErr);
      assert.equal(await code(v.setParms('dir', d, 'file', 0x0020, { finderInfo: fi })), kFPObjectTypeErr);
      assert.equal(await code(v.getFileDirParms(d, 'file', 0x1000)), kFPBitmapErr, 'LaunchLimit does not exist');
      assert.equal(await code(v.getFileDirParms(d, 'file', 0x0001, 0x4000)), kFPBitmapErr, 'ExtRsrcForkLen is not a directory field');
      await c.close();
    });

    test('permissions: the sticky root protects other users, private directories stay private', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const a = await session(g, ALICE);
      const b = await session(g, BOB);
      await a.v.createFile(ROOT, 'alice-file');
      const priv = await a.v.createDir(ROOT, 'alice-dir');
      assert.equal(await code(b.v.delete(ROOT, 'alice-file')), kFPAccessDenied);
      assert.equal(await code(b.v.rename(ROOT, 'alice-file', 'mine')), kFPAccessDenied);
      assert.equal(await code(b.v.createFile(priv, 'intruder')), kFPAccessDenied);
      assert.equal(await code(b.v.setParms('either', ROOT, 'alice-file', 0x8000, { unixPrivs: { uid: 0, gid: 0, mode: 0o777, accessRights: 0 } })), kFPAccessDenied);
      const seen = await b.v.getFileDirParms(ROOT, 'alice-dir');
      assert.equal((seen.params.accessRights! >>> 24) & 0x80, 0, 'bob is not the owner');
      await b.v.createFile(ROOT, 'bob-file');
      await b.v.delete(ROOT, 'bob-file');
      // A directory its owner closed (0700) cannot be passed through by anyone else.
      await a.v.createFile(priv, 'secret');
      await a.v.setParms('dir', ROOT, 'alice-dir', 0x8000, { unixPrivs: { uid: 0, gid: 0, mode: 0o040700, accessRights: 0 } });
      assert.equal(await code(b.v.getFileDirParms(ROOT, ['alice-dir', 'secret'])), kFPAccessDenied);
      assert.equal(await code(b.v.getXattr(ROOT, ['alice-dir', 'secret'], 'user.x')), kFPAccessDenied);
      assert.equal(await code(b.v.enumerate(ROOT, 'alice-dir')), kFPAccessDenied);
      assert.equal((await a.v.getFileDirParms(ROOT, ['alice-dir', 'secret'])).isDir, false, 'the owner still can');
      // IDs are no key: reaching inside by DirID or file ID needs the same search rights.
      const inner = await a.v.createDir(priv, 'open-inside');
      await a.v.setParms('dir', priv, 'open-inside', 0x8000, { unixPrivs: { uid: 0, gid: 0, mode: 0o040777, accessRights: 0 } });
      const secretId = (await a.v.getFileDirParms(priv, 'secret')).params.nodeId!;
      assert.equal(await code(b.v.enumerate(inner, '')), kFPAccessDenied);
      assert.equal(await code(b.v.getFileDirParms(inner, '')), kFPAccessDenied);
      assert.equal(await code(b.v.createFile(inner, 'planted')), kFPAccessDenied);
      assert.equal(await code(b.v.resolveId(secretId)), kFPAccessDenied);
      assert.equal(await code(b.v.syncDir(inner)), kFPAccessDenied);
      // The shared root is the volume's: bob may add entries, not restyle it.
      assert.equal(await code(b.v.setParms('dir', ROOT, '', 0x0020, { finderInfo: Buffer.alloc(32, 9) })), kFPAccessDenied);
      assert.equal(await code(b.v.setParms('dir', ROOT, '', 0x0008, { modifiedAt: Date.UTC(2030, 0, 1) })), kFPAccessDenied);
      assert.equal(await code(b.v.setXattr(ROOT, '', 'user.tag', Buffer.from('x'))), kFPAccessDenied);
      await b.v.setBackupDate(Date.UTC(2026, 5, 1));
      await a.c.close();
      await b.c.close();
    });

    test('enumeration: paging, stable order, every variant and its errors', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const d = await v.createDir(ROOT, 'many');
      const names: string[] = [];
      for (let i = 0; i < 600; i++) names.push(`entry-${String(i).padStart(4, '0')}`);
      for (const n of names) {
        if (n.endsWith('7')) await v.createDir(d, n);
        else await v.createFile(d, n);
      }
      const all = await v.enumerateAll(d, '', { reqCount: 97 });
      assert.deepEqual(all.map((e) => e.params.utf8Name), names);
      assert.equal(all.filter((e) => e.isDir).length, 60);
      // A cursor left by a files-only page is not reused by an unfiltered one (indices differ).
      const filesOnly = await v.enumerate(d, '', { dirBitmap: 0, reqCount: 2 });
      assert.deepEqual(filesOnly.map((e) => e.params.utf8Name), ['entry-0000', 'entry-0001']);
      const mixed = await v.enumerate(d, '', { startIndex: 3, reqCount: 6 });
      assert.deepEqual(mixed.map((e) => e.params.utf8Name), names.slice(2, 8));
      // A second pass with different page sizes and the offset path gives the same order.
      const pageA = await v.enumerate(d, '', { startIndex: 301, reqCount: 50 });
      assert.deepEqual(pageA.map((e) => e.params.utf8Name), names.slice(300, 350));
      // Only directories.
      const dirs = await v.enumerateAll(ROOT, 'many', { fileBitmap: 0, reqCount: 7 });
      assert.deepEqual(dirs.map((e) => e.params.utf8Name), names.filter((n) => n.endsWith('7')));
      for (const variant of ['ext', 'legacy'] as const) {
        const got = await v.enumerateAll(d, '', { reqCount: 150, variant, fileBitmap: 0x0140, dirBitmap: 0x0140 });
        assert.deepEqual(got.map((e) => e.params.longName), names, variant);
      }
      // A small MaxReplySize limits the count; too small for one entry is a parameter error.
      const few = await v.enumerate(d, '', { maxReply: 300 });
      assert.ok(few.length >= 1 && few.length < 10);
      assert.equal(await code(v.enumerate(d, '', { maxReply: 10 })), kFPParamErr);
      assert.equal(await code(v.enumerate(d, '', { startIndex: 0 })), kFPParamErr);
      assert.equal(await code(v.enumerate(d, '', { reqCount: 0 })), kFPParamErr);
      assert.equal(await code(v.enumerate(d, '', { startIndex: 601 })), kFPObjectNotFound);
      assert.equal(await code(v.enumerate(d, '', { fileBitmap: 0, dirBitmap: 0 })), kFPBitmapErr);
      assert.equal(await code(v.enumerate(d, 'entry-0001')), kFPObjectTypeErr);
      assert.equal(await code(v.enumerate(ROOT, 'nope')), kFPDirNotFound);
      assert.equal(await code(v.enumerate(123_456_789, '')), kFPDirNotFound);
      assert.equal((await v.getFileDirParms(ROOT, 'many')).params.offspringCount, 600);
      await c.close();
    });

    test('extended attributes, including Finder info as com.apple.FinderInfo', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await v.createFile(ROOT, 'xa');
      const big = Buffer.alloc(40_000, 0x5a);
      await v.setXattr(ROOT, 'xa', 'com.apple.metadata:_kTimeMachineNewestSnapshot', Buffer.from('bplist00…'));
      await v.setXattr(ROOT, 'xa', 'user.big', big, 'create');
      assert.equal(await code(v.setXattr(ROOT, 'xa', 'user.big', big, 'create')), kFPObjectExists);
      assert.equal(await code(v.setXattr(ROOT, 'xa', 'user.none', big, 'replace')), kFPItemNotFound);
      await v.setXattr(ROOT, 'xa', 'user.big', Buffer.from('small'), 'replace');
      assert.deepEqual(await v.getXattr(ROOT, 'xa', 'user.big'), Buffer.from('small'));
      assert.equal((await v.getXattr(ROOT, 'xa', 'user.big', { maxReply: 0 })).length, 5, 'size query');
      assert.deepEqual(await v.getXattr(ROOT, 'xa', 'user.big', { offset: 2, reqCount: 2 }), Buffer.from('al'));
      assert.deepEqual(await v.listXattrs(ROOT, 'xa'), ['com.apple.metadata:_kTimeMachineNewestSnapshot', 'user.big']);
      assert.equal(await code(v.getXattr(ROOT, 'xa', 'user.none')), kFPItemNotFound);
      await v.removeXattr(ROOT, 'xa', 'user.big');
      assert.equal(await code(v.removeXattr(ROOT, 'xa', 'user.big')), kFPItemNotFound);
      const fi = Buffer.alloc(32);
      fi.write('slnkrhap', 'latin1');
      await v.setXattr(ROOT, 'xa', 'com.apple.FinderInfo', fi);
      assert.deepEqual((await v.getFileDirParms(ROOT, 'xa')).params.finderInfo, fi);
      assert.deepEqual(await v.listXattrs(ROOT, 'xa'), ['com.apple.FinderInfo', 'com.apple.metadata:_kTimeMachineNewestSnapshot']);
      await v.createDir(ROOT, 'xa-dir');
      await v.setXattr(ROOT, 'xa-dir', 'com.apple.backupd.SnapshotVolumeUUID', Buffer.from([1, 2, 3]));
      assert.deepEqual(await v.getXattr(ROOT, 'xa-dir', 'com.apple.backupd.SnapshotVolumeUUID'), Buffer.from([1, 2, 3]));
      await c.close();
      // AFP 3.3 clients get kFPMiscErr for a missing attribute; 3.4 changed exactly that.
      const old = await session(g, ALICE, 'AFP3.3');
      assert.equal(await code(old.v.getXattr(ROOT, 'xa', 'user.none')), kFPMiscErr);
      await old.c.close();
    });

    test('file IDs: resolve, create, delete', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const d = await v.createDir(ROOT, 'ids');
      await v.createFile(d, 'target');
      const id = (await v.getFileDirParms(d, 'target')).params.nodeId!;
      await v.moveAndRename(d, 'target', ROOT, '', 'moved-target');
      const p = await v.resolveId(id);
      assert.equal(p.utf8Name, 'moved-target');
      assert.equal(p.parentId, ROOT);
      const created = await v.createId(ROOT, 'moved-target');
      assert.deepEqual(created, { code: kFPIDExists, id });
      await v.deleteId(id);
      assert.equal(await code(v.resolveId(d)), kFPObjectTypeErr);
      assert.equal(await code(v.resolveId(987_654)), kFPIDNotFound);
      assert.equal(await code(v.deleteId(987_654)), kFPIDNotFound);
      await c.close();
    });

    test('FPExchangeFiles swaps contents and keeps IDs with the names; FPCopyFile copies', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      const d = await v.createDir(ROOT, 'xchg');
      await v.createFile(d, 'a');
      await v.createFile(d, 'b');
      const fa = Buffer.alloc(32, 0xaa);
      await v.setParms('file', d, 'a', 0x0020, { finderInfo: fa });
      await v.setXattr(d, 'a', 'user.which', Buffer.from('A'));
      const before = { a: (await v.getFileDirParms(d, 'a')).params.nodeId, b: (await v.getFileDirParms(d, 'b')).params.nodeId };
      await v.exchangeFiles(d, 'a', d, 'b');
      const a = (await v.getFileDirParms(d, 'a')).params;
      const b = (await v.getFileDirParms(d, 'b')).params;
      assert.equal(a.nodeId, before.a);
      assert.equal(b.nodeId, before.b);
      assert.deepEqual(b.finderInfo, fa);
      assert.deepEqual(await v.getXattr(d, 'b', 'user.which'), Buffer.from('A'));
      assert.deepEqual(await v.listXattrs(d, 'a'), []);
      assert.equal(await code(v.exchangeFiles(d, 'a', d, 'a')), kFPSameObjectErr);
      assert.equal(await code(v.exchangeFiles(ROOT, 'xchg', d, 'a')), kFPObjectTypeErr);
      await v.copyFile(d, 'b', ROOT, '', 'b-copy');
      const copy = (await v.getFileDirParms(ROOT, 'b-copy')).params;
      assert.notEqual(copy.nodeId, b.nodeId);
      assert.deepEqual(copy.finderInfo, fa);
      assert.deepEqual(await v.getXattr(ROOT, 'b-copy', 'user.which'), Buffer.from('A'));
      assert.equal(await code(v.copyFile(d, 'b', ROOT, '', 'b-copy')), kFPObjectExists);
      await c.close();
    });
  });
}
