/**
 * The status page as a browser draws it: headless Chromium takes a screenshot while a Mac
 * is connected, and the picture must show the page's drawn parts (the usage bar in its
 * colour), not a blank or an error page. The HTML's content is checked in metrics.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AfpClient } from '../../src/client/afp-client.js';
import { ForkMode } from '../../src/client/afp-fork.js';
import { ROOT } from '../../src/client/afp-volume.js';
import { startTestGateway } from '../helpers/gateway.js';
import { countColour, decodePng } from '../helpers/png.js';

const BROWSERS = ['chromium-headless-shell', 'chromium', 'chromium-browser', 'google-chrome'];
const USER = { name: 'shot', password: 'shot-pw' };
/** The page's bar colour (#2a6 in status-page.ts). */
const BAR: [number, number, number] = [0x22, 0xaa, 0x66];
const WIDTH = 1000;
const HEIGHT = 900;

function findBrowser(): string | undefined {
  return BROWSERS.find((b) => spawnSync(b, ['--version'], { stdio: 'ignore' }).status === 0);
}

function screenshot(browser: string, url: string, out: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['--headless', '--no-sandbox', '--disable-gpu', `--window-size=${WIDTH},${HEIGHT}`, `--screenshot=${out}`, url];
    const child = spawn(browser, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(log);
      else reject(new Error(`${browser} exited with ${code}:\n${log}`));
    });
  });
}

test('headless Chromium renders the status page with its bars', async (t) => {
  const browser = findBrowser();
  if (!browser) {
    if (process.env.CI === 'true') throw new Error('chromium is required under CI (apt-get install chromium-headless-shell)');
    return t.skip('no chromium installed (apt-get install chromium-headless-shell)');
  }
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-shot-'));
  const g = await startTestGateway({
    users: [USER],
    config: { ops: { metricsListen: { host: '127.0.0.1', port: 0 } }, volumes: [{ name: 'Shots', sizeLimit: '8MiB' }] },
  });
  try {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    const v = await c.openVolume('Shots');
    await v.createFile(ROOT, 'half.bin');
    const f = await v.openFork(ROOT, 'half.bin', { mode: ForkMode.Read | ForkMode.Write });
    await f.write(0, randomBytes(4 * 1024 * 1024));
    await f.sync();
    await f.close();

    const url = `http://127.0.0.1:${g.gw.ops!.port}/status`;
    const out = join(dir, 'status.png');
    await screenshot(browser, url, out);
    const img = decodePng(await readFile(out));
    assert.equal(img.width, WIDTH);
    assert.equal(img.height, HEIGHT);
    // The volume's bar is half full: about 5em × .8em of the bar colour, some hundreds of pixels.
    const bar = countColour(img, BAR);
    assert.ok(bar > 300, `the usage bar is drawn in its colour (${bar} pixels)`);
    const white = countColour(img, [255, 255, 255]);
    assert.ok(white > (WIDTH * HEIGHT) / 2, 'a page on a white background, not an error screen');
    assert.ok(white < WIDTH * HEIGHT - 5000, 'with text drawn on it');
    await c.close();
  } finally {
    await g.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
