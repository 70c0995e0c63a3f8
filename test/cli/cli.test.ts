import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { AfpClient } from '../../src/client/afp-client.js';
import { AfpError } from '../../src/afp/errors.js';
import { kFPUserNotAuth } from '../../src/afp/result-codes.js';
import { runCli, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

/** Low scrypt cost keeps the CLI tests quick; the env override is the documented way to set it. */
const ENV = { AFPGW_AUTH__SCRYPT__N: '1024', AFPGW_LISTEN__HOST: '127.0.0.1' };

describe('the afp-gateway command', () => {
  let dir: string;
  let port: number;
  let server: ChildProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'afpgw-cli-'));
    port = await freePort();
  });

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
      await once(server, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  });

  test('user add reads the password from stdin; list, passwd and del work', async () => {
    const add = await runCli(['user', 'add', 'carol', '--data', dir], 'first-password\n', ENV);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /added user carol \(uid 1000\)/);
    const dup = await runCli(['user', 'add', 'Carol', '--data', dir], 'x\n', ENV);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);
    const pw = await runCli(['user', 'passwd', 'carol', '--data', dir], 'second-password\n', ENV);
    assert.equal(pw.code, 0, pw.stderr);
    const add2 = await runCli(['user', 'add', 'dave', '--data', dir], 'dave-password\n', ENV);
    assert.equal(add2.code, 0, add2.stderr);
    const del = await runCli(['user', 'del', 'dave', '--data', dir], '', ENV);
    assert.equal(del.code, 0, del.stderr);
    const list = await runCli(['user', 'list', '--data', dir], '', ENV);
    assert.match(list.stdout, /^carol\tuid=1000\tgid=1000\t/m);
    assert.doesNotMatch(list.stdout, /dave/);
    const empty = await runCli(['user', 'add', 'erin', '--data', dir], '', ENV);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /empty password/);
  });

  test('serve starts on the embedded default; probe shows AFP3.4 and DHX2', async () => {
    ({ child: server } = await startServe(['--port', String(port), '--data', dir], ENV));
    const p = await runCli(['probe', `127.0.0.1:${port}`]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /AFP versions:\s+AFP3\.4/);
    assert.match(p.stdout, /UAMs:\s+DHX2, DHCAST128/);
    assert.match(p.stdout, /Signature:\s+[0-9a-f]{32}/);
    assert.match(p.stdout, new RegExp(`Addresses:\\s+127\\.0\\.0\\.1:${port}`));
  });

  test('the user added by the CLI logs in with DHX2 through the client; a wrong password gets kFPUserNotAuth', async () => {
    const c = await AfpClient.connect('127.0.0.1', port);
    await c.login({ uam: 'DHX2', user: 'carol', password: 'second-password' });
    assert.deepEqual((await c.getSrvrParms()).volumes.map((v) => v.name), ['TimeMachine']);
    await c.close();
    const bad = await AfpClient.connect('127.0.0.1', port);
    await assert.rejects(bad.login({ user: 'carol', password: 'first-password' }), (e: unknown) => e instanceof AfpError && e.code === kFPUserNotAuth);
    await bad.close();
  });

  test('probe --user logs in and lists volumes', async () => {
    const ok = await runCli(['probe', `127.0.0.1:${port}`, '--user', 'carol'], 'second-password\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Logged in:\s+carol with DHX2 \(uid 1000, gid 1000\)/);
    assert.match(ok.stdout, /Volumes:\s+TimeMachine/);
    const bad = await runCli(['probe', `127.0.0.1:${port}`, '--user', 'carol'], 'nope\n');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /kFPUserNotAuth/);
  });

  test('ls lists a volume path over AFP', async () => {
    const c = await AfpClient.connect('127.0.0.1', port);
    await c.login({ user: 'carol', password: 'second-password' });
    const v = await c.openVolume('TimeMachine');
    const dir = await v.createDir(2, 'Mac.sparsebundle');
    await v.createFile(dir, 'Info.plist');
    await v.createDir(dir, 'bands');
    await c.close();
    const r = await runCli(['ls', `127.0.0.1:${port}`, 'TimeMachine/Mac.sparsebundle', '--user', 'carol'], 'second-password\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^-rw-r--r-- +\d+ +0 .* Info\.plist$/m);
    assert.match(r.stdout, /^drwxr-xr-x +\d+ +0 items .* bands\/$/m);
    assert.match(r.stdout, /2 entries/);
    const j = await runCli(['ls', `127.0.0.1:${port}`, 'TimeMachine', '--user', 'carol', '--json'], 'second-password\n');
    assert.deepEqual(JSON.parse(j.stdout).map((e: { name: string }) => e.name), ['Mac.sparsebundle']);
    const missing = await runCli(['ls', `127.0.0.1:${port}`, 'TimeMachine/nope', '--user', 'carol'], 'second-password\n');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /kFPDirNotFound/);
  });

  test('SIGTERM stops the server cleanly', async () => {
    server.kill('SIGTERM');
    const [code] = (await once(server, 'exit')) as [number | null];
    assert.equal(code, 0);
  });

  test('a bad config file is refused with the key and the reason', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'listen:\n  port: 99999\nvolumes:\n  - name: TM\n    blockSize: 3MiB\n');
    const r = await runCli(['serve', '--config', file], '', ENV);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /listen\.port/);
    assert.match(r.stderr, /volumes\[0\]\.blockSize: must be a power of two/);
  });

  test('AFPGW_CONFIG names the config file when --config is not given', async () => {
    const file = join(dir, 'env.yaml');
    await writeFile(file, 'dsi:\n  replayCacheSize: 7\n');
    const r = await runCli(['user', 'list', '--data', dir], '', { ...ENV, AFPGW_CONFIG: file });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /env\.yaml: dsi\.replayCacheSize/);
  });

  test('unknown commands and flags are explained', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command/);
    const f = await runCli(['serve', '--no-such-flag']);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /no-such-flag/);
  });
});
