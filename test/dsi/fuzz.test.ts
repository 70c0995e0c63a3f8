import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { AfpClient } from '../../src/client/afp-client.js';
import { DSI_HEADER_SIZE, DsiCommand, writeHeader } from '../../src/dsi/header.js';
import { DsiFramer, type DsiFrame } from '../../src/dsi/framer.js';
import { AfpCommand } from '../../src/afp/commands.js';
import { Writer } from '../../src/wire/writer.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const USER = { name: 'fuzz', password: 'fuzz-password' };
/** Hang detector only: every case here ends in well under a second. */
const CLOSE_DEADLINE_MS = 10_000;

function header(command: number, requestId: number, length: number, codeOrOffset = 0, flags = 0): Buffer {
  return writeHeader({ flags, command, requestId, codeOrOffset, length, reserved: 0 });
}

interface RawConn {
  socket: Socket;
  frames: DsiFrame[];
  closed: Promise<void>;
}

function rawConnect(port: number): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const frames: DsiFrame[] = [];
    const framer = new DsiFramer(() => 1 << 24);
    socket.on('data', (c: Buffer) => {
      try {
        frames.push(...framer.push(c));
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, frames, closed }));
    socket.once('error', reject);
  });
}

/** Resolves true if the server closed the connection within the deadline. */
async function serverCloses(c: RawConn): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), CLOSE_DEADLINE_MS); });
  const res = await Promise.race([c.closed.then(() => true), timeout]);
  clearTimeout(timer);
  return res;
}

const openSession = (id = 1): Buffer => header(DsiCommand.OpenSession, id, 0);

describe('bad input on the wire', () => {
  let g: TestGateway;
  let witness: AfpClient;

  before(async () => {
    // A short idle timeout, so a partial frame that is never completed ends quickly too.
    g = await startTestGateway({
      users: [USER],
      tune: (cfg) => {
        cfg.dsi.tickleSeconds = 0.3;
        cfg.dsi.idleTimeoutSeconds = 1.5;
      },
    });
    // A long-lived, logged-in session that must be untouched by everything below.
    witness = await AfpClient.connect(g.host, g.port, { tickleMs: 300 });
    await witness.login({ user: USER.name, password: USER.password });
  });

  after(async () => {
    await witness.close();
    await g.stop();
  });

  const stillServing = async (): Promise<void> => {
    const me = await witness.getUserInfo();
    assert.ok(me.uid! >= 1000);
  };

  const cases: [string, () => Buffer][] = [
    ['a huge announced length is refused from the header alone', () => Buffer.concat([openSession(), header(DsiCommand.Command, 2, 0xfffffff0)])],
    ['bad flags', () => header(DsiCommand.GetStatus, 1, 0, 0, 0x7f)],
    ['an unknown DSI command', () => header(7, 1, 0)],
    ['an AFP command before DSIOpenSession', () => Buffer.concat([header(DsiCommand.Command, 1, 2), Buffer.from([AfpCommand.FPGetSrvrParms, 0])])],
    ['a DSIWrite whose data offset lies outside its payload', () => Buffer.concat([openSession(), header(DsiCommand.Write, 2, 4, 100), Buffer.alloc(4)])],
    ['a truncated OpenSession option', () => Buffer.concat([header(DsiCommand.OpenSession, 1, 3), Buffer.from([1, 4, 0])])],
    ['a second DSIOpenSession', () => Buffer.concat([openSession(1), openSession(2)])],
    ['a control frame over its size limit', () => Buffer.concat([header(DsiCommand.Tickle, 1, 5000), Buffer.alloc(5000)])],
  ];
  for (const [name, bytes] of cases) {
    test(`${name}: the connection is closed as a protocol error and nothing else is affected`, async () => {
      const before = g.gw.server.closeCounts['protocol-error'];
      const c = await rawConnect(g.port);
      c.socket.write(bytes());
      assert.ok(await serverCloses(c), 'server should close the connection without waiting for the client');
      assert.equal(g.gw.server.closeCounts['protocol-error'], before + 1);
      await stillServing();
    });
  }

  test('garbage after a valid frame: the valid frame is answered, then the connection closes', async () => {
    const c = await rawConnect(g.port);
    c.socket.write(Buffer.concat([header(DsiCommand.GetStatus, 7, 0), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]));
    assert.ok(await serverCloses(c));
    assert.equal(c.frames.length, 1);
    assert.equal(c.frames[0]!.requestId, 7);
    assert.ok(c.frames[0]!.payload.length > 0);
    await stillServing();
  });

  test('a length that lies (fewer bytes than announced, then EOF) ends quietly', async () => {
    const c = await rawConnect(g.port);
    c.socket.end(Buffer.concat([openSession(), header(DsiCommand.Command, 2, 1000), Buffer.alloc(10)]));
    assert.ok(await serverCloses(c));
    await stillServing();
  });

  test('random byte streams: the server itself ends every connection (protocol error or idle timeout)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 4096 }), fc.boolean(), async (bytes, withSession) => {
        const c = await rawConnect(g.port);
        // No FIN from us: the server must decide on its own.
        c.socket.write(Buffer.concat([withSession ? openSession() : Buffer.alloc(0), Buffer.from(bytes)]));
        assert.ok(await serverCloses(c));
      }),
      { numRuns: 100 },
    );
    await stillServing();
  });

  test('random well-framed headers with random payloads', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            flags: fc.integer({ min: 0, max: 3 }),
            command: fc.integer({ min: 0, max: 10 }),
            offset: fc.integer({ min: -5, max: 40 }),
            payload: fc.uint8Array({ maxLength: 64 }),
          }),
          { maxLength: 8 },
        ),
        async (frames) => {
          const c = await rawConnect(g.port);
          const bytes = frames.map((f, i) => Buffer.concat([header(f.command, i, f.payload.length, f.offset, f.flags), Buffer.from(f.payload)]));
          // Every frame is complete, so the server answers or refuses each; then we close.
          c.socket.write(Buffer.concat([openSession(100), ...bytes]));
          await new Promise((r) => setTimeout(r, 5));
          c.socket.end();
          assert.ok(await serverCloses(c));
        },
      ),
      { numRuns: 150 },
    );
    await stillServing();
  });

  test('every AFP command code with random arguments gets an answer, before and after login', async () => {
    const pre = await AfpClient.connect(g.host, g.port);
    const post = await AfpClient.connect(g.host, g.port);
    await post.login({ user: USER.name, password: USER.password });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 600 }), async (code, rest) => {
        // Logout would end the logged-in half of the experiment; it is covered elsewhere.
        if (code === AfpCommand.FPLogout) return;
        const payload = Buffer.concat([Buffer.from([code]), Buffer.from(rest)]);
        const a = await pre.raw(payload);
        const b = await post.raw(payload);
        assert.equal(typeof a.code, 'number');
        assert.equal(typeof b.code, 'number');
      }),
      { numRuns: 1500 },
    );
    // Both sessions are still alive and the logged-in one still knows who it is.
    assert.equal((await pre.getSrvrInfo()).serverName, 'Test Gateway');
    assert.ok((await post.getUserInfo()).uid! >= 1000);
    await pre.close();
    await post.close();
    await stillServing();
  });

  test('truncated versions of every real request are answered with an error, not a crash', async () => {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    for (const code of Object.values(AfpCommand)) {
      if (code === AfpCommand.FPLogout) continue;
      for (let len = 1; len <= 24; len++) {
        const r = await c.raw(Buffer.alloc(len, 0).fill(code, 0, 1));
        assert.equal(typeof r.code, 'number');
      }
    }
    assert.ok((await c.getUserInfo()).uid! >= 1000);
    await c.close();
  });

  test('a pipelining flood with nobody reading replies keeps server memory bounded', async () => {
    const quantum = g.gw.config.dsi.requestQuantum;
    const c = await rawConnect(g.port);
    c.socket.pause(); // we do not read: replies back up, the server must stop reading too
    c.socket.write(openSession());
    const req = Buffer.concat([header(DsiCommand.Command, 0, 2), Buffer.from([AfpCommand.FPGetSrvrInfo, 0])]);
    const burst = Buffer.concat(Array.from({ length: 20_000 }, (_, i) => { const b = Buffer.from(req); b.writeUInt16BE(i & 0xffff, 2); return b; }));
    let written = 0;
    for (let i = 0; i < 40; i++) {
      c.socket.write(burst);
      written += burst.length;
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 300));
    // bufferedBytes counts unsent replies too: a client that never reads cannot make us hoard them.
    for (const conn of g.gw.server.allConnections()) {
      assert.ok(conn.bufferedBytes <= 2 * quantum + DSI_HEADER_SIZE + 256 * 1024, `connection holds ${conn.bufferedBytes} bytes`);
    }
    assert.ok(written > 4 * quantum, 'the flood was larger than the bound');
    // And a client that never reads is cut off once the idle timeout passes without progress.
    const timeouts = g.gw.server.closeCounts.timeout;
    assert.ok(await serverCloses(c));
    assert.equal(g.gw.server.closeCounts.timeout, timeouts + 1);
    await stillServing();
  });

  test('a DSIGetStatus flood from a client that never reads is bounded and then cut off', async () => {
    const c = await rawConnect(g.port);
    c.socket.pause();
    const one = header(DsiCommand.GetStatus, 1, 0);
    const burst = Buffer.concat(Array.from({ length: 50_000 }, () => one));
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      c.socket.write(burst);
      await new Promise((r) => setTimeout(r, 10));
      for (const conn of g.gw.server.allConnections()) peak = Math.max(peak, conn.bufferedBytes);
    }
    assert.ok(peak <= 2 * g.gw.config.dsi.requestQuantum + 256 * 1024, `peak ${peak} bytes held for one connection`);
    assert.ok(await serverCloses(c));
    await stillServing();
  });

  test("a client's FIN does not discard the replies to what it sent before", async () => {
    const c = await rawConnect(g.port);
    const login = new Writer(64).u8(AfpCommand.FPLogin).pstring(Buffer.from('AFP3.4')).pstring(Buffer.from('DHX2')).pstring(Buffer.from(USER.name)).alignEven().finish();
    c.socket.end(Buffer.concat([openSession(1), header(DsiCommand.Command, 2, login.length), login]));
    assert.ok(await serverCloses(c));
    assert.deepEqual(c.frames.map((f) => f.requestId), [1, 2], 'both requests were answered');
    assert.equal(c.frames[1]!.codeOrOffset, -5001, 'the DHX2 login continues');
  });
});
