/**
 * Throwaway redis-server processes for tests: loopback only, no persistence, a fresh
 * working directory each. A test process never leaves one behind: stop() kills it, and
 * whatever is still running when the process exits (or is interrupted) gets SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { freePort } from './ports.js';
import { supervise } from './reap.js';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
  process: ChildProcess;
}

const BINARY = 'redis-server';
const READY_TIMEOUT_MS = 5000;
const START_ATTEMPTS = 3;

let available: boolean | undefined;

/** Whether redis-server is on PATH. */
export function redisAvailable(): boolean {
  available ??= (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, BINARY), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return available;
}

/**
 * True when the test can use Redis. Without redis-server the test is skipped, except under
 * CI, where a missing server must fail loudly rather than pass as a skip.
 */
export function needRedis(t: TestContext): boolean {
  if (redisAvailable()) return true;
  if (process.env.CI === 'true') throw new Error(`${BINARY} is required under CI but is not on PATH`);
  t.skip('redis-server not installed (apt-get install redis-server)');
  return false;
}

export async function startRedis(opts: { extraArgs?: string[] } = {}): Promise<RedisServer> {
  let lastError: Error | undefined;
  // Another process may take the port between our probe and redis binding it; try again then.
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(await freePort(), opts.extraArgs ?? []);
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) break;
    }
  }
  throw lastError ?? new Error('redis-server did not start');
}

async function startOnce(port: number, extraArgs: string[]): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs];
  const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const { stop, waitReady } = supervise(child, dir);
  await waitReady(`redis-server on port ${port}`, () => answersPing(port), READY_TIMEOUT_MS);
  return { port, url: `redis://127.0.0.1:${port}`, stop, process: child };
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      // A server started with --requirepass refuses PING, which still shows it is up.
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
  });
}
