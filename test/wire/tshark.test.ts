import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AfpClient } from '../../src/client/afp-client.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { catSearch, catSearchAll } from '../../src/client/afp-catsearch.js';
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
        await c.getSessionToken(0);
        await c.getSessionToken(3, { id: Buffer.from('tshark-mac'), timestamp: 12345 });
        await c.raw(Buffer.from([AfpCommand.FPDisconnectOldSession, 0, 0, 0, 0, 0, 0, 16, ...Buffer.alloc(16, 7)]));
        // An unimplemented command: the error reply must dissect cleanly too.
        await c.raw(Buffer.from([AfpCommand.FPGetAuthMethods, 0, 0, 0]));
        // The namespace: every parameter block, both entry formats, xattrs.
        const v = await c.openVolume('TimeMachine');
        await v.getParms();
        const d = await v.createDir(ROOT, 'Büro.sparsebundle'.normalize('NFD')); // as a Mac sends it
        await v.createFile(d, 'Info.plist');
        await v.createDir(d, 'bands');
        await v.getFileDirParms(d, 'Info.plist');
        await v.getFileDirParms(ROOT, 'Büro.sparsebundle');
        await v.setParms('file', d, 'Info.plist', 0x0020 | 0x0008, { finderInfo: Buffer.alloc(32, 1), modifiedAt: Date.UTC(2024, 0, 1) });
        await v.enumerate(d, '');
        await v.enumerate(d, '', { variant: 'ext', fileBitmap: 0x0140, dirBitmap: 0x0140 });
        await v.enumerate(d, '', { variant: 'legacy', fileBitmap: 0x0140, dirBitmap: 0x0140 });
        await v.setXattr(d, 'Info.plist', 'com.apple.metadata:x', Buffer.from('value'));
        await v.getXattr(d, 'Info.plist', 'com.apple.metadata:x');
        await v.listXattrs(d, 'Info.plist');
        await v.rename(d, 'Info.plist', 'Info.bckup');
        await v.moveAndRename(d, 'Info.bckup', ROOT, '', 'moved');
        await v.resolveId((await v.getFileDirParms(ROOT, 'moved')).params.nodeId!);
        await v.delete(ROOT, 'moved');
        await v.syncDir(d);
        await catSearchAll(v, { utf8Name: 'band' });
        await catSearch(v, { longName: 'band', modifiedAt: [0, Date.now() + 60_000] }, { variant: 'legacy', fileBitmap: 0x0042, dirBitmap: 0x0042 });
        await v.close();
      }
      await c.logout();
      await c.close();
    }
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    cap.kill('SIGINT');
    await new Promise((r) => (cap.exitCode === null ? cap.once('exit', r) : r(undefined)));
    if (process.env.AFPGW_KEEP_PCAP) copyFileSync(pcap, process.env.AFPGW_KEEP_PCAP);
    await g.stop();
  }
  try {
    const text = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${g.port},dsi`, '-V', '-O', 'dsi,afp'], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
    // Wireshark's dissector expects a path after FPSyncDir's DirID; servers (netatalk's
    // afp_syncdir) read only VolID and DirID, which is all our client sends. That request is
    // the one packet allowed to look short to it; everything the server sends must dissect.
    const frames = text.split(/\n(?=Frame \d+:)/);
    const malformed = frames.filter((f) => /Malformed Packet/i.test(f));
    for (const f of malformed) assert.match(f, /Command: FPSyncDir \(78\)\n\s+Pad\n\s+Volume id: \d+\n\s+DID: \d+\n\[Malformed Packet: AFP\]/, `malformed frame:\n${f.slice(0, 1500)}`);
    assert.doesNotMatch(text, /Expert Info \((Error|Warning)/);
    for (const expected of [
      /Command: GetStatus \(3\)/,
      /AFP version: AFP3\.4/,
      /UAM: DHX2/,
      /Server name: Test Gateway/,
      /Option: Server quantum \(0\)\s+Length: 4\s+Quantum: 1048576/,
      /Option: Replay cache size \(2\)\s+Length: 4\s+Replay: 128/,
      /Type: LoginWithTimeAndID \(0x0003\)\s+Len: 10\s+Time stamp: 0x00003039/,
      /Command: FPGetSessionToken \(64\)\s+\[Response to: \d+\]\s+\[Time from request: [\d.]+ seconds\]\s+Len: 16\s+Token: [0-9a-f]{32}/,
      /Command: FPDisconnectOldSession \(65\)/,
      /Command: FPLoginExt \(63\)/,
      /Command: FPLogin \(18\)/,
      /Command: FPLoginCont \(19\)/,
      /Command: FPGetSrvrParms \(16\)/,
      /Command: FPGetUserInfo \(37\)/,
      /Command: FPMapID \(21\)/,
      /Command: FPMapName \(22\)/,
      /Command: FPZzzzz \(122\)/,
      /Command: FPLogout \(20\)/,
      /Command: FPOpenVol \(24\)/,
      /Volume: TimeMachine/,
      /TM lock steal: True/,
      /Signature: Fixed Directory ID \(2\)/,
      /Unicode hint: Unknown \(0x08000103\)\s+Len: 19\s+Name: Bu\u0308ro\.sparsebundle/u, // decomposed on the wire
      /UNIX privileges\s+UID: \d+\s+GID: \d+\s+Permissions: 040755/,
      /Command: FPEnumerateExt2 \(68\)/,
      /Command: FPEnumerateExt \(66\)/,
      /Command: FPEnumerate \(9\)/,
      /Name: Info\.plist/,
      /Command: FPGetFileDirParms \(34\)/,
      /Command: FPSetFileParms \(30\)/,
      /Command: FPGetExtAttr \(69\)/,
      /Command: FPListExtAttrs \(72\)/,
      /Command: FPMoveAndRename \(23\)/,
      /Command: FPResolveID \(41\)/,
      /Command: FPSyncDir \(78\)/,
      /Command: FPCatSearchExt \(67\)/,
      /Command: FPCatSearch \(43\)/,
    ]) {
      assert.match(text, expected);
    }
    const summary = execFileSync('tshark', ['-r', pcap, '-d', `tcp.port==${g.port},dsi`, '-Y', `tcp.srcport==${g.port}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.doesNotMatch(summary, /Reply without query|Malformed/, 'every server packet dissects cleanly');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
