import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AfpClient } from '../../src/client/afp-client.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { Progress } from '../../src/cli/progress.js';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const CAROL = { name: 'carol', password: 'carol-pw' };

describe('afp-gateway put and get', () => {
  let g: TestGateway;
  let dir: string;
  let server: string;

  before(async () => {
    g = await startTestGateway({ users: [CAROL], config: { volumes: [{ name: 'TimeMachine', timeMachine: true }] } });
    dir = await mkdtemp(join(tmpdir(), 'afpgw-putget-'));
    server = `127.0.0.1:${g.port}`;
  });

  after(async () => {
    await g?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]): ReturnType<typeof runCli> => runCli([...args, '--user', CAROL.name], CAROL.password + '\n');

  test('a few megabytes go up and come back byte for byte', async () => {
    // Not a multiple of the 1 MiB quantum, so the last piece is short.
    const content = randomBytes(5 * 1024 * 1024 + 12345);
    const src = join(dir, 'random.bin');
    await writeFile(src, content);
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: CAROL.name, password: CAROL.password });
    const v = await c.openVolume('TimeMachine');
    await v.createDir(ROOT, 'uploads');

    const up = await cli('put', server, src, 'TimeMachine/uploads/');
    assert.equal(up.code, 0, up.stderr);
    // stderr is a pipe here: no bar, one summary line.
    assert.match(up.stderr, /^put TimeMachine\/uploads\/random\.bin: 5\.3 MB in \d+\.\d s \([\d.]+ [kMG]?B\/s\)\n$/);
    const remote = await v.openFork(ROOT, 'uploads/random.bin', { mode: ForkMode.Read });
    assert.equal(remote.params.dataLength, content.length);
    assert.ok((await remote.read(0, content.length)).data.equals(content), 'the server holds the same bytes');
    await remote.close();

    const dst = join(dir, 'back.bin');
    const down = await cli('get', server, 'TimeMachine/uploads/random.bin', dst);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, /^get TimeMachine\/uploads\/random\.bin: 5\.3 MB in /);
    assert.ok((await readFile(dst)).equals(content));
    // Into a directory: the remote name is kept; no temporary file is left behind.
    const into = join(dir, 'into');
    await mkdir(into);
    assert.equal((await cli('get', server, 'TimeMachine/uploads/random.bin', into)).code, 0);
    assert.deepEqual(await readdir(into), ['random.bin']);
    await c.close();
  });

  test('put replaces an existing file; empty files work both ways', async () => {
    const first = join(dir, 'first.txt');
    await writeFile(first, 'a longer first version\n');
    assert.equal((await cli('put', server, first, 'TimeMachine/notes.txt')).code, 0);
    const second = join(dir, 'second.txt');
    await writeFile(second, 'short\n');
    assert.equal((await cli('put', server, second, 'TimeMachine/notes.txt')).code, 0);
    const back = join(dir, 'notes.txt');
    assert.equal((await cli('get', server, 'TimeMachine/notes.txt', back)).code, 0);
    assert.equal(await readFile(back, 'utf8'), 'short\n');

    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    assert.equal((await cli('put', server, empty, 'TimeMachine')).code, 0, 'a bare volume puts at the root under the local name');
    const emptyBack = join(dir, 'empty.back');
    assert.equal((await cli('get', server, 'TimeMachine/empty', emptyBack)).code, 0);
    assert.equal((await readFile(emptyBack)).length, 0);
  });

  test('errors: missing remote file or directory, bad usage', async () => {
    const missing = await cli('get', server, 'TimeMachine/nope.bin', join(dir, 'nope.bin'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /afp-gateway get: TimeMachine\/nope\.bin: kFPObjectNotFound/);
    await assert.rejects(readFile(join(dir, 'nope.bin')), 'no partial file');
    const src = join(dir, 'x.bin');
    await writeFile(src, 'x');
    const noDir = await cli('put', server, src, 'TimeMachine/no/such/dir/x.bin');
    assert.equal(noDir.code, 1);
    assert.match(noDir.stderr, /kFPObjectNotFound/);
    const usage = await runCli(['put', server, src]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: afp-gateway put/);
    const notFile = await cli('put', server, dir, 'TimeMachine/');
    assert.equal(notFile.code, 2);
    assert.match(notFile.stderr, /is not a regular file/);
  });
});

test('the progress bar: bytes, percent, rate, ETA; a summary at the end', () => {
  let t = 0;
  let out = '';
  const p = new Progress('put x', 10_000_000, { isTTY: true, write: (s: string) => (out += s) }, () => t);
  t = 1000;
  p.add(2_500_000);
  assert.match(out, /\rput x \[#{6}-{18}\] 2\.5 MB \/ 10\.0 MB {2}25% {2}2\.5 MB\/s {2}ETA 0:03/);
  t = 1050;
  out = '';
  p.add(1);
  assert.equal(out, '', 'no redraw within 100 ms');
  t = 4000;
  p.add(7_499_999);
  t = 4000;
  assert.match(p.finish(), /^put x: 10\.0 MB in 4\.0 s \(2\.5 MB\/s\)$/);
  let plain = '';
  const q = new Progress('get y', 10, { write: (s: string) => (plain += s) }, () => 0);
  q.add(10);
  assert.equal(plain, '', 'no bar when stderr is not a terminal');
  q.finish();
  assert.match(plain, /^get y: 10 B in 0\.0 s/);
});
