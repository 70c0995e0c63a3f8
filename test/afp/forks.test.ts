import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AfpClient } from '../../src/client/afp-client.js';
import { AfpVolume, ROOT } from '../../src/client/afp-volume.js';
import { AfpFork, ForkMode } from '../../src/client/afp-fork.js';
import { AfpCommand } from '../../src/afp/commands.js';
import {
  kFPAccessDenied,
  kFPBitmapErr,
  kFPDenyConflict,
  kFPDiskFull,
  kFPEOFErr,
  kFPFileBusy,
  kFPLockErr,
  kFPNoErr,
  kFPObjectNotFound,
  kFPObjectTypeErr,
  kFPParamErr,
  kFPRangeNotLocked,
  kFPRangeOverlap,
  kFPTooManyFilesOpen,
} from '../../src/afp/result-codes.js';
import { Writer } from '../../src/wire/writer.js';
import { BACKENDS, gatewayFor, SKIP_REASON } from '../helpers/backends.js';
import type { TestGateway } from '../helpers/gateway.js';
import { resultCode as code } from '../helpers/afp.js';

const ALICE = { name: 'alice', password: 'alice-pw' };
const BOB = { name: 'bob', password: 'bob-pw' };
/** Small, so that quantum-sized pieces stay cheap; the DSI floor is 32000. */
const QUANTUM = 64 * 1024;
const RW = ForkMode.Read | ForkMode.Write;
/** File attribute bits computed from open forks. */
const D_OPEN = 0x0008;
const R_OPEN = 0x0010;

async function session(g: TestGateway, who = ALICE): Promise<{ c: AfpClient; v: AfpVolume }> {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: who.name, password: who.password });
  return { c, v: await c.openVolume('TimeMachine') };
}

/** A new file with `content` in its data fork; returns its name. */
async function fileWith(v: AfpVolume, name: string, content: Buffer = Buffer.alloc(0)): Promise<string> {
  await v.createFile(ROOT, name, true);
  if (content.length > 0) {
    const f = await v.openFork(ROOT, name, { mode: RW });
    await f.write(0, content);
    await f.close();
  }
  return name;
}

async function until(what: string, check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Raw request for an open fork: `cmd flag refnum` then the given fields. */
function forkRequest(cmd: number, refnum: number, flag = 0): Writer {
  return new Writer(32).u8(cmd).u8(flag).u16(refnum);
}

for (const backend of BACKENDS) {
  describe(`fork commands (${backend} store)`, () => {
    const gw = gatewayFor(backend, {
      users: [ALICE, BOB],
      config: { volumes: [{ name: 'TimeMachine', timeMachine: true }], dsi: { requestQuantum: QUANTUM } },
    });

    test('FPOpenFork: data and resource forks, fork-open attribute bits, bitmap and object errors', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'open.bin', Buffer.from('0123456789'));
      const data = await v.openFork(ROOT, 'open.bin', { mode: ForkMode.Read });
      assert.ok(data.refnum > 0);
      assert.equal(data.params.dataLength, 10);
      assert.equal(data.params.rsrcLength, undefined, 'a data fork reports only its own length');
      assert.equal(data.params.attributes! & (D_OPEN | R_OPEN), D_OPEN, 'the reply already counts this open');
      const seen = await v.getFileDirParms(ROOT, 'open.bin');
      assert.equal(seen.params.attributes! & (D_OPEN | R_OPEN), D_OPEN);
      const rsrc = await v.openFork(ROOT, 'open.bin', { rsrc: true, mode: ForkMode.Read });
      assert.notEqual(rsrc.refnum, data.refnum);
      assert.equal(rsrc.params.rsrcLength, 0, 'a file without a resource fork reports length 0');
      const listed = (await v.enumerateAll(ROOT, '')).find((e) => e.params.utf8Name === 'open.bin')!;
      assert.equal(listed.params.attributes! & (D_OPEN | R_OPEN), D_OPEN | R_OPEN, 'enumeration shows both forks open');
      await data.close();
      await rsrc.close();
      const closed = await v.getFileDirParms(ROOT, 'open.bin');
      assert.equal(closed.params.attributes! & (D_OPEN | R_OPEN), 0);

      // The reply may carry only the opened fork's length; 0x1000 (LaunchLimit) is undefined.
      assert.equal(await code(v.openFork(ROOT, 'open.bin', { bitmap: 0x0400 })), kFPBitmapErr);
      assert.equal(await code(v.openFork(ROOT, 'open.bin', { bitmap: 0x4000 })), kFPBitmapErr);
      assert.equal(await code(v.openFork(ROOT, 'open.bin', { rsrc: true, bitmap: 0x0800 })), kFPBitmapErr);
      assert.equal(await code(v.openFork(ROOT, 'open.bin', { bitmap: 0x1000 })), kFPBitmapErr);
      await v.createDir(ROOT, 'a-dir');
      assert.equal(await code(v.openFork(ROOT, 'a-dir')), kFPObjectTypeErr);
      assert.equal(await code(v.openFork(ROOT, 'missing.bin')), kFPObjectNotFound);
      assert.equal(await code(new AfpVolume(c, 99, {}).openFork(ROOT, 'open.bin')), kFPParamErr);
      await c.close();
    });

    test('deny modes: a conflict answers kFPDenyConflict with refnum 0 and the parameters', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const a = await session(g);
      const b = await session(g);
      await fileWith(a.v, 'deny.bin', Buffer.from('abc'));
      const writer = await a.v.openFork(ROOT, 'deny.bin', { mode: RW | ForkMode.DenyWrite });
      const refused = await b.v.openForkReply(ROOT, 'deny.bin', { mode: ForkMode.Write });
      assert.equal(refused.code, kFPDenyConflict);
      assert.equal(refused.refnum, 0);
      assert.equal(refused.params.dataLength, 3, 'the parameter block comes with the error');
      assert.equal(await code(b.v.openFork(ROOT, 'deny.bin', { mode: ForkMode.Read | ForkMode.DenyWrite })), kFPDenyConflict, 'DenyWrite against an open writer');
      const reader = await b.v.openFork(ROOT, 'deny.bin', { mode: ForkMode.Read });
      // The same session is checked too (afptest opens twice on one connection).
      assert.equal(await code(a.v.openFork(ROOT, 'deny.bin', { mode: ForkMode.Write })), kFPDenyConflict);
      assert.equal(await code(a.v.openFork(ROOT, 'deny.bin', { mode: ForkMode.DenyRead })), kFPDenyConflict, 'DenyRead against open readers');
      // Data and resource forks are tracked apart.
      const rsrc = await b.v.openFork(ROOT, 'deny.bin', { rsrc: true, mode: ForkMode.Write });
      await rsrc.close();
      await writer.close();
      const now = await b.v.openFork(ROOT, 'deny.bin', { mode: ForkMode.Write });
      await now.close();
      await reader.close();
      await a.c.close();
      await b.c.close();
    });

    test('access: reads, writes and length changes need the matching access mode and permissions', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'access.bin', Buffer.from('data'));
      const ro = await v.openFork(ROOT, 'access.bin', { mode: ForkMode.Read });
      assert.equal(await code(ro.writeExt(0, Buffer.from('x'))), kFPAccessDenied);
      assert.equal(await code(ro.writeLegacy(0, Buffer.from('x'))), kFPAccessDenied);
      assert.equal(await code(ro.setLength(0)), kFPAccessDenied);
      const wo = await v.openFork(ROOT, 'access.bin', { mode: ForkMode.Write });
      assert.equal(await code(wo.readExt(0, 4)), kFPAccessDenied);
      assert.equal(await code(wo.readLegacy(0, 4)), kFPAccessDenied);
      // Mode 0 ("none") opens too: useful purely as a lock.
      const none = await v.openFork(ROOT, 'access.bin', { mode: 0 });
      assert.equal(await code(none.readExt(0, 1)), kFPAccessDenied);
      await none.close();
      await ro.close();
      await wo.close();
      // Bob may read alice's 0644 file, not write it.
      const bob = await session(g, BOB);
      const bobRead = await bob.v.openFork(ROOT, 'access.bin', { mode: ForkMode.Read });
      assert.equal((await bobRead.readExt(0, 4)).data.toString(), 'data');
      await bobRead.close();
      assert.equal(await code(bob.v.openFork(ROOT, 'access.bin', { mode: ForkMode.Write })), kFPAccessDenied);
      await bob.c.close();
      await c.close();
    });

    test('read, write, read back: end-relative writes, zero counts, negative offsets', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'rw.bin');
      const f = await v.openFork(ROOT, 'rw.bin', { mode: RW });
      assert.equal(await f.writeExt(0, Buffer.from('hello')), 5);
      assert.equal(await f.writeExt(0, Buffer.from(' world'), true), 11, 'offset 0 from the end appends');
      assert.equal(await f.writeExt(-5, Buffer.from('WORLD'), true), 11, 'a negative end-relative offset lands inside');
      assert.equal((await f.readExt(0, 11)).data.toString(), 'hello WORLD');
      assert.equal(await f.writeExt(3, Buffer.alloc(0)), 3, 'ReqCount 0 returns the offset');
      assert.equal(await code(f.writeExt(-12, Buffer.from('x'), true)), kFPParamErr, 'resulting offset below 0');
      assert.equal(await code(f.writeExt(-1, Buffer.from('x'))), kFPParamErr);
      // A hole reads back as zeros.
      assert.equal(await f.writeExt(20, Buffer.from('!')), 21);
      const all = await f.readExt(0, 100);
      assert.deepEqual(all.data, Buffer.concat([Buffer.from('hello WORLD'), Buffer.alloc(9), Buffer.from('!')]));
      assert.equal(all.eof, true);
      assert.equal(await f.length(), 21);
      // Another session sees the bytes.
      await f.close();
      const other = await session(g);
      const r = await other.v.openFork(ROOT, 'rw.bin', { mode: ForkMode.Read });
      assert.equal((await r.readExt(0, 5)).data.toString(), 'hello');
      await other.c.close();
      await c.close();
    });

    test('reads at the end: partial bytes with kFPEOFErr, nothing past the end, nothing for 0 bytes', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'eof.bin', Buffer.from('0123456789'));
      const f = await v.openFork(ROOT, 'eof.bin', { mode: ForkMode.Read });
      assert.deepEqual(await f.readExt(6, 100), { data: Buffer.from('6789'), eof: true });
      assert.deepEqual(await f.readExt(0, 10), { data: Buffer.from('0123456789'), eof: false }, 'exactly to the end is no EOF');
      assert.deepEqual(await f.readExt(10, 1), { data: Buffer.alloc(0), eof: true });
      assert.deepEqual(await f.readExt(2 ** 40, 1), { data: Buffer.alloc(0), eof: true });
      assert.deepEqual(await f.readExt(3, 0), { data: Buffer.alloc(0), eof: false });
      assert.equal(await code(f.readExt(-1, 5)), kFPParamErr);
      assert.equal(await code(f.readExt(0, -5)), kFPParamErr);
      // The raw reply: kFPEOFErr and the bytes in one DSI reply.
      const raw = await c.raw(forkRequest(AfpCommand.FPReadExt, f.refnum).i64(8n).i64(4n).finish());
      assert.equal(raw.code, kFPEOFErr);
      assert.equal(raw.payload.toString(), '89');
      await f.close();
      await c.close();
    });

    test('reads are capped at the request quantum; writes split at it and pipeline', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      assert.equal(c.session.requestQuantum, QUANTUM);
      const content = randomBytes(3 * QUANTUM + 123);
      await fileWith(v, 'big.bin', content);
      const f = await v.openFork(ROOT, 'big.bin', { mode: ForkMode.Read });
      const one = await f.readExt(0, content.length);
      assert.equal(one.data.length, QUANTUM, 'one reply carries at most a quantum');
      assert.equal(one.eof, false);
      const last = await f.readExt(3 * QUANTUM, 4 * QUANTUM);
      assert.equal(last.data.length, 123);
      assert.equal(last.eof, true, 'the EOF is the request\'s, not the capped count\'s');
      const whole = await f.read(0, content.length + 10);
      assert.ok(whole.data.equals(content));
      assert.equal(whole.eof, true);
      // A write larger than the quantum is refused by DSI framing, so the client splits.
      const w = await v.openFork(ROOT, 'big.bin', { mode: ForkMode.Write });
      const next = randomBytes(2 * QUANTUM);
      assert.equal(await w.write(QUANTUM, next, 3), 3 * QUANTUM);
      assert.ok((await f.read(QUANTUM, next.length)).data.equals(next));
      await w.close();
      await f.close();
      await c.close();
    });

    test('FPGetForkParms and FPSetForkParms: truncate, extend with zeros, bitmap and value checks', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'len.bin', Buffer.from('abcdefgh'));
      const f = await v.openFork(ROOT, 'len.bin', { mode: RW });
      const p = await f.getParms();
      assert.equal(p.dataLength, 8);
      assert.equal(p.utf8Name, 'len.bin');
      assert.equal(p.attributes! & D_OPEN, D_OPEN);
      await f.setLength(3);
      assert.equal(await f.length(), 3);
      await f.setLength(10);
      assert.deepEqual((await f.readExt(0, 100)).data, Buffer.concat([Buffer.from('abc'), Buffer.alloc(7)]), 'extended bytes read as zeros');
      await f.setLength(2, { legacy: true });
      assert.equal((await f.getParms(0x0200)).dataLength, 2, 'the 32-bit length field');
      assert.equal(await code(f.getParms(0x0400)), kFPBitmapErr, 'a data fork has no resource length to report');
      const setRaw = (bitmap: number, tail: (w: Writer) => Writer): Promise<number> =>
        code(c.call(tail(new Writer(16).u8(AfpCommand.FPSetForkParms).u8(0).u16(f.refnum).u16(bitmap)).finish()));
      assert.equal(await setRaw(0x0200 | 0x0800, (w) => w.i64(0n)), kFPBitmapErr, 'exactly one length bit');
      assert.equal(await setRaw(0x0400, (w) => w.u32(0)), kFPBitmapErr, 'the other fork\'s length');
      assert.equal(await setRaw(0x0001, (w) => w.u16(0)), kFPBitmapErr, 'not a length');
      assert.equal(await setRaw(0x0200, (w) => w.i32(-1)), kFPParamErr, 'negative');
      assert.equal(await setRaw(0x0800, (w) => w.i64(-1n)), kFPParamErr, 'negative');
      assert.equal(await setRaw(0x0800, (w) => w.u32(0)), kFPParamErr, 'truncated value');
      assert.equal(await f.length(), 2);
      const rsrc = await v.openFork(ROOT, 'len.bin', { rsrc: true, mode: RW });
      await rsrc.setLength(5);
      assert.equal(await rsrc.length(), 5);
      assert.equal((await rsrc.getParms()).rsrcLength, 5);
      assert.equal(await code(rsrc.getParms(0x0800)), kFPBitmapErr);
      await rsrc.close();
      await f.close();
      assert.equal((await v.getFileDirParms(ROOT, 'len.bin')).params.rsrcLength, 5);
      await c.close();
    });

    test('byte-range locks: overlap, other forks, unlock, to-the-end, end-relative, release', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const a = await session(g);
      const b = await session(g);
      await fileWith(a.v, 'locks.bin', Buffer.alloc(100, 0x61));
      const fa = await a.v.openFork(ROOT, 'locks.bin', { mode: RW });
      const fb = await b.v.openFork(ROOT, 'locks.bin', { mode: RW });
      assert.equal(await fa.lock(0, 10), 0);
      assert.equal(await code(fa.lock(5, 10)), kFPRangeOverlap, 'overlapping the same fork\'s lock');
      assert.equal(await code(fb.lock(5, 10)), kFPLockErr, 'overlapping another fork\'s lock');
      assert.equal(await code(fb.readExt(0, 5)), kFPLockErr);
      assert.equal(await code(fb.writeExt(8, Buffer.from('zz'))), kFPLockErr);
      assert.equal(await code(fb.setLength(5)), kFPLockErr, 'truncating into a locked range');
      assert.equal((await fb.readExt(10, 5)).data.length, 5, 'outside the range is free');
      assert.equal((await fa.readExt(0, 5)).data.length, 5, 'the owner reads its own range');
      assert.equal(await code(fa.unlock(0, 5)), kFPRangeNotLocked, 'unlock must name the locked range exactly');
      assert.equal(await code(fb.unlock(0, 10)), kFPRangeNotLocked, 'another fork cannot unlock it');
      assert.equal(await fa.unlock(0, 10), 0);
      assert.equal(await fb.lock(5, 10), 5);
      assert.equal(await fb.unlock(5, 10), 5);

      // Length −1: to the end of any fork, even past the current length.
      assert.equal(await fa.lock(50, -1), 50);
      assert.equal(await code(fb.writeExt(1000, Buffer.from('x'))), kFPLockErr);
      assert.equal(await fa.unlock(50, -1), 50);
      // End-relative: the reply is the absolute start.
      assert.equal(await fa.lock(-10, 5, { fromEnd: true }), 90);
      assert.equal(await code(fb.lock(92, 1)), kFPLockErr);
      assert.equal(await fa.unlock(-10, 5, { fromEnd: true }), 90);
      assert.equal(await code(fa.lock(-101, 5, { fromEnd: true })), kFPParamErr, 'resulting start below 0');
      assert.equal(await code(fa.lock(0, 0)), kFPParamErr, 'length 0');
      assert.equal(await code(fa.lock(0, -2)), kFPParamErr, 'negative length other than −1');
      assert.equal(await code(fa.lock(-1, 5)), kFPParamErr, 'negative start');
      // The 32-bit form.
      assert.equal(await fa.lock(20, 4, { legacy: true }), 20);
      assert.equal(await code(fb.lock(21, 1, { legacy: true })), kFPLockErr);
      assert.equal(await code(fa.lock(0, -2, { legacy: true })), kFPParamErr);

      // Locks go with the fork: closing it releases them.
      await fa.close();
      assert.equal(await fb.lock(20, 4), 20);
      await fb.unlock(20, 4);
      // ... and with the session: a dropped connection releases its locks.
      const fa2 = await a.v.openFork(ROOT, 'locks.bin', { mode: RW });
      await fa2.lock(30, 10);
      assert.equal(await code(fb.lock(30, 1)), kFPLockErr);
      a.c.dsi.destroy();
      await until('the dropped session\'s lock to go', async () => (await code(fb.lock(30, 1))) === kFPNoErr);
      await fb.close();
      await b.c.close();
    });

    test('closed, unknown and foreign refnums are kFPParamErr', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const a = await session(g);
      const b = await session(g);
      await fileWith(a.v, 'ref.bin', Buffer.from('x'));
      const f = await a.v.openFork(ROOT, 'ref.bin', { mode: RW });
      await f.close();
      const calls: [string, (x: AfpFork) => Promise<unknown>][] = [
        ['close', (x) => x.close()],
        ['readExt', (x) => x.readExt(0, 1)],
        ['readLegacy', (x) => x.readLegacy(0, 1)],
        ['writeExt', (x) => x.writeExt(0, Buffer.from('y'))],
        ['writeLegacy', (x) => x.writeLegacy(0, Buffer.from('y'))],
        ['getParms', (x) => x.getParms()],
        ['setLength', (x) => x.setLength(0)],
        ['lock', (x) => x.lock(0, 1)],
        ['flush', (x) => x.flush()],
        ['sync', (x) => x.sync()],
      ];
      for (const [name, call] of calls) assert.equal(await code(call(f)), kFPParamErr, `${name} on a closed fork`);
      const open = await a.v.openFork(ROOT, 'ref.bin', { mode: ForkMode.Read });
      // Bob's session has no fork with alice's refnum.
      const foreign = new AfpFork(b.c, open.refnum, false, {});
      for (const [name, call] of calls) assert.equal(await code(call(foreign)), kFPParamErr, `${name} with another session's refnum`);
      assert.equal(await code(new AfpFork(a.c, 0, false, {}).readExt(0, 1)), kFPParamErr, 'refnum 0');
      assert.equal((await open.readExt(0, 1)).data.toString(), 'x', 'the owner still has it');
      await a.c.close();
      await b.c.close();
    });

    test('FPFlushFork, FPSyncFork and FPFlush succeed; synced bytes are there for a new session', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'sync.bin');
      const f = await v.openFork(ROOT, 'sync.bin', { mode: RW });
      const content = randomBytes(100_000);
      await f.write(0, content);
      await f.flush();
      await v.flush();
      await f.sync();
      const other = await session(g);
      const r = await other.v.openFork(ROOT, 'sync.bin', { mode: ForkMode.Read });
      assert.ok((await r.read(0, content.length)).data.equals(content));
      assert.equal(await code(other.v.flush()), kFPNoErr);
      assert.equal(await code(new AfpVolume(other.c, 77, {}).flush()), kFPParamErr, 'FPFlush of a volume not open');
      await other.c.close();
      await f.close();
      await c.close();
    });

    test('the 32-bit forms: FPRead with newline stop, FPWrite, their limits', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'legacy.txt');
      const f = await v.openFork(ROOT, 'legacy.txt', { mode: RW });
      assert.equal(await f.writeLegacy(0, Buffer.from('line one\nline two\n')), 18);
      assert.equal(await f.writeLegacy(0, Buffer.from('tail'), true), 22);
      assert.equal(await f.writeLegacy(-4, Buffer.from('TAIL'), true), 22);
      assert.deepEqual(await f.readLegacy(0, 100, { mask: 0xff, char: 0x0a }), { data: Buffer.from('line one\n'), eof: false });
      assert.deepEqual(await f.readLegacy(9, 100, { mask: 0xff, char: 0x0a }), { data: Buffer.from('line two\n'), eof: false });
      // The mask selects bits: 0x0a & 0x0f === 0x0a also matches 0x1a, 0x2a ('*').
      await f.writeLegacy(0, Buffer.from('ab*d'));
      assert.deepEqual(await f.readLegacy(0, 100, { mask: 0x0f, char: 0x0a }), { data: Buffer.from('ab*'), eof: false });
      assert.deepEqual(await f.readLegacy(18, 100), { data: Buffer.from('TAIL'), eof: true }, 'no mask: no newline stop');
      assert.equal(await code(f.readLegacy(-1, 4)), kFPParamErr, '32-bit offsets are signed');
      assert.equal(await code(f.writeLegacy(0x7ffffffe, Buffer.from('xyz'))), kFPDiskFull, 'past what a 32-bit reply can say');
      await f.close();
      await c.close();
    });

    test('malformed requests are kFPParamErr and the session goes on', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'bad.bin', Buffer.from('0123456789'));
      const f = await v.openFork(ROOT, 'bad.bin', { mode: RW });
      const cases: [string, Buffer][] = [
        ['FPOpenFork without its path', new Writer(16).u8(AfpCommand.FPOpenFork).u8(0).u16(v.id).u32(ROOT).u16(0x0200).u16(1).finish()],
        ['FPOpenFork cut inside the bitmap', Buffer.from([AfpCommand.FPOpenFork, 0, 0, v.id, 0, 0])],
        ['FPReadExt without ReqCount', forkRequest(AfpCommand.FPReadExt, f.refnum).i64(0n).finish()],
        ['FPRead without the newline fields', forkRequest(AfpCommand.FPRead, f.refnum).i32(0).i32(4).finish()],
        ['FPCloseFork without a refnum', Buffer.from([AfpCommand.FPCloseFork, 0])],
        ['FPGetForkParms without a bitmap', forkRequest(AfpCommand.FPGetForkParms, f.refnum).finish()],
        ['FPByteRangeLockExt without a length', forkRequest(AfpCommand.FPByteRangeLockExt, f.refnum).i64(0n).finish()],
        ['FPByteRangeLock without a length', forkRequest(AfpCommand.FPByteRangeLock, f.refnum).i32(0).finish()],
        ['FPSyncFork cut short', Buffer.from([AfpCommand.FPSyncFork, 0, 0])],
        ['FPFlush without a volume', Buffer.from([AfpCommand.FPFlush, 0])],
      ];
      for (const [what, req] of cases) assert.equal((await c.raw(req)).code, kFPParamErr, what);
      // DSIWrite whose data offset cuts the FPWriteExt header short.
      const header = forkRequest(AfpCommand.FPWriteExt, f.refnum).i64(0n).i64(4n).finish();
      const short = await c.dsi.write(header.subarray(0, 10), Buffer.concat([header.subarray(10), Buffer.from('ZZZZ')]));
      assert.equal(short.code, kFPParamErr);
      // FPWriteExt sent as a plain DSICommand: the data follows the header.
      const inline = await c.raw(Buffer.concat([header, Buffer.from('WXYZ')]));
      assert.equal(inline.code, kFPNoErr);
      assert.equal(inline.payload.readBigUInt64BE(0), 4n);
      // ReqCount beyond the bytes sent writes what was sent, and says so.
      const more = forkRequest(AfpCommand.FPWriteExt, f.refnum).i64(4n).i64(100n).finish();
      const partial = await c.dsi.write(more, Buffer.from('ab'));
      assert.equal(partial.code, kFPNoErr);
      assert.equal(partial.payload.readBigUInt64BE(0), 6n);
      // ReqCount below the bytes sent writes only ReqCount.
      const fewer = forkRequest(AfpCommand.FPWriteExt, f.refnum).i64(6n).i64(1n).finish();
      assert.equal((await c.dsi.write(fewer, Buffer.from('!?'))).payload.readBigUInt64BE(0), 7n);
      assert.equal((await f.readExt(0, 10)).data.toString(), 'WXYZab!789');
      assert.equal((await f.getParms(0x0800)).dataLength, 10, 'the session still answers');
      await f.close();
      await c.close();
    });

    test('open-fork limits and refnums: kFPTooManyFilesOpen, never 0, not reused at once', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const { c, v } = await session(g);
      await fileWith(v, 'many.bin');
      g.gw.ctx.maxOpenForks = 3;
      try {
        const forks = [];
        for (let i = 0; i < 3; i++) forks.push(await v.openFork(ROOT, 'many.bin'));
        assert.equal(await code(v.openFork(ROOT, 'many.bin')), kFPTooManyFilesOpen);
        const refs = forks.map((f) => f.refnum);
        assert.ok(refs.every((r) => r > 0));
        assert.equal(new Set(refs).size, 3);
        await forks[0]!.close();
        const again = await v.openFork(ROOT, 'many.bin');
        assert.ok(!refs.includes(again.refnum), 'a closed refnum is not handed out again at once');
      } finally {
        delete g.gw.ctx.maxOpenForks;
      }
      await c.close();
    });

    test('FPCloseVol and FPLogout close the session\'s forks', async (t) => {
      const g = gw();
      if (!g) return t.skip(SKIP_REASON);
      const a = await session(g);
      const b = await session(g);
      await fileWith(a.v, 'ends.bin', Buffer.from('x'));
      const f = await a.v.openFork(ROOT, 'ends.bin', { mode: RW | ForkMode.DenyWrite });
      assert.equal(await code(b.v.openFork(ROOT, 'ends.bin', { mode: ForkMode.Write })), kFPDenyConflict);
      assert.equal(await code(a.v.delete(ROOT, 'ends.bin')), kFPFileBusy);
      await a.v.close();
      assert.equal(await code(f.readExt(0, 1)), kFPParamErr, 'the fork went with its volume');
      const bw = await b.v.openFork(ROOT, 'ends.bin', { mode: ForkMode.Write | ForkMode.DenyWrite });
      await bw.close();
      const v2 = await a.c.openVolume('TimeMachine');
      await v2.openFork(ROOT, 'ends.bin', { mode: RW | ForkMode.DenyWrite });
      await a.c.logout();
      const after = await b.v.openFork(ROOT, 'ends.bin', { mode: ForkMode.Write });
      await after.close();
      await a.c.close();
      await b.c.close();
    });
  });
}
