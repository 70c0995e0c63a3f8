import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AfpClient } from '../../src/client/afp-client.js';
import { AfpCommand } from '../../src/afp/commands.js';
import { startTestGateway } from '../helpers/gateway.js';

function tsharkUsable(): boolean {
  return spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * An independent parser judges our bytes: Wireshark's DSI and AFP dissectors decode a
 * captured session, and any malformed packet or dissector error fails the test.
 */
test('Wireshark dissects a whole session without malformed packets', async (t) => {
  if (!tsharkUsable()) {
    if (process.env.CI === 'true') throw new Error('tshark is required under CI (apt-get install tshark)');
    return t.skip('tshark not installed (apt-get install tshark)');
  }
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-tshark-'));
  const pcap = join(dir, 'afp.pcap');
  const g = await startTestGateway({
    users: [{ name: 'alice', password: 'secretpw' }],
    config: { auth: { uams: ['DHX2', 'DHCAST128', 'Cleartxt Passwrd', 'No User Authent'], scrypt: { N: 1024, r: 8, p: 1 } } },
  });
  const cap = spawn('tshark', ['-i', 'lo', '-f', `tcp port ${g.port}`, '-w', pcap], { stdio: ['ignore', 'ignore', 'pipe'] });
  let capErr = '';
  try {
    await new Promise<void>((resolve, reject) => {
      cap.stderr!.on('data', (d: Buffer) => {
        capErr += d.toString();
        if (capErr.includes('Capturing on')) resolve();
      });
      cap.once('exit', (code) => reject(new Error(`tshark exited (${code}): ${capErr}`)));
    });
    // tshark announces itself a moment before the capture filter is live.
    await new Promise((r) => setTimeout(r, 1000));

    await AfpClient.serverInfo(g.host, g.port);
    for (const [uam, ext] of [['DHX2', true], ['DHCAST128', false], ['Cleartxt Passwrd', true], ['No User Authent', false]] as const) {
      const c = await AfpClient.connect(g.host, g.port);
      await c.login({ uam, user: 'alice', password: 'secretpw', ext });
      await c.getUserInfo();
      await c.getSrvrParms();
      await c.getSrvrInfo();
      if (uam === 'DHX2') {
        await c.mapId(3, 1000);
        await c.mapName(1, 'alice');
        await c.raw(Buffer.from([AfpCommand.FPGetSrvrMsg, 0, 0, 1, 0, 3]));
        await c.zzzzz(1);
        await c.zzzzz(2);
        // An unimplemented command: the error reply must dissect cleanly too.
        await c.raw(Buffer.from([AfpCommand.FPGetAuthMethods, 0, 0, 0]));
      }
      await c.logout();
      await c.close();
    }
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    cap.kill('SIGINT');
    await new Promise((r) => (cap.exitCode === null ? cap.once('exit', r) : r(undefined)));
    await g.stop();
  }
  try {
    const text = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${g.port},dsi`, '-V', '-O', 'dsi,afp'], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
    assert.doesNotMatch(text, /Malformed Packet/i);
    assert.doesNotMatch(text, /Expert Info \((Error|Warning)/);
    for (const expected of [
      /Command: GetStatus \(3\)/,
      /AFP version: AFP3\.4/,
      /UAM: DHX2/,
      /Server name: Test Gateway/,
      /Option: Server quantum \(0\)\s+Length: 4\s+Quantum: 1048576/,
      /Command: FPLoginExt \(63\)/,
      /Command: FPLogin \(18\)/,
      /Command: FPLoginCont \(19\)/,
      /Command: FPGetSrvrParms \(16\)/,
      /Command: FPGetUserInfo \(37\)/,
      /Command: FPMapID \(21\)/,
      /Command: FPMapName \(22\)/,
      /Command: FPZzzzz \(122\)/,
      /Command: FPLogout \(20\)/,
    ]) {
      assert.match(text, expected);
    }
    const summary = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${g.port},dsi`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.doesNotMatch(summary, /Reply without query|Malformed/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
