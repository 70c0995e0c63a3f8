/**
 * A throwaway Redis Sentinel deployment for tests: a master redis-server, its replicas
 * (replicaof) and three redis-sentinel processes watching it (quorum 2, the master is down
 * after ~1 s without an answer, a short failover timeout), all on free loopback ports in
 * temp directories. The data servers are redis-server.ts's; the sentinels are cleaned up the
 * same way: stop() ends them, and whatever is still running when the test process exits (or
 * is interrupted) gets SIGKILL.
 *
 * killMaster() SIGKILLs whichever server the sentinels name as master; waitForNewMaster()
 * waits until every sentinel that answers names another one and that one says it is master;
 * addReplica() starts a fresh replica of the current master (the dead box coming back, or
 * its replacement), for setups that WAIT for a replica.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { supervise } from './reap.js';
import { startRedis, type RedisServer } from './redis-server.js';

export interface Address {
  host: string;
  port: number;
}

export interface SentinelOptions {
  /** The master's name as the sentinels know it (default mymaster). */
  name?: string;
  /** Replicas of the master (default 1). */
  replicas?: number;
  /** Sentinels (default 3). */
  sentinels?: number;
  /** Sentinels that must agree the master is down (default 2). */
  quorum?: number;
  /** down-after-milliseconds (default 1000). */
  downAfterMs?: number;
  /** failover-timeout (default 3000). */
  failoverTimeoutMs?: number;
}

export interface RedisSentinelSet {
  readonly name: string;
  /** The sentinels' addresses, as a client's config lists them. */
  readonly sentinels: Address[];
  /** Every data server started, master and replicas, dead or alive. */
  readonly servers: readonly RedisServer[];
  /** The master the sentinels name now (most of those that answer). */
  master(): Promise<Address>;
  /** SIGKILLs the current master; resolves once it is dead, with its address and when it died (performance.now()). */
  killMaster(): Promise<Address & { killedAt: number }>;
  /** Waits until every sentinel that answers names a master other than `old`, and that server is master. */
  waitForNewMaster(old: Address, timeoutMs?: number): Promise<Address>;
  /** Starts a replica of the current master and waits until its link is up. */
  addReplica(): Promise<RedisServer>;
  /** What the sentinels wrote, for a test's diagnostics. */
  sentinelLogs(): string;
  stop(): Promise<void>;
}

const SENTINEL = 'redis-sentinel';
const SERVER = 'redis-server';
const READY_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 3;
/** Data servers: an initial sync without the 5 s wait for more replicas, so a replica is up at once. */
const SERVER_ARGS = ['--repl-diskless-sync-delay', '0'];

function onPath(binary: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

let available: boolean | undefined;

/** Whether redis-server and redis-sentinel are on PATH. */
export function sentinelAvailable(): boolean {
  available ??= onPath(SERVER) && onPath(SENTINEL);
  return available;
}

/**
 * True when the test can run Sentinel. Without the binaries the test is skipped, except under
 * CI (where .ci/run installs them), where a missing binary must fail loudly, not pass as a skip.
 */
export function needSentinel(t: TestContext): boolean {
  if (sentinelAvailable()) return true;
  if (process.env.CI === 'true') throw new Error(`${SERVER} and ${SENTINEL} are required under CI but are not both on PATH`);
  t.skip('redis-sentinel not installed (apt-get install redis-server redis-sentinel)');
  return false;
}

interface SentinelProcess {
  port: number;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

async function startSentinel(master: Address, o: Required<SentinelOptions>): Promise<SentinelProcess> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    try {
      return await startSentinelOnce(await freePort(), master, o);
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) break;
    }
  }
  throw lastError ?? new Error('redis-sentinel did not start');
}

async function startSentinelOnce(port: number, master: Address, o: Required<SentinelOptions>): Promise<SentinelProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-sentinel-'));
  // Sentinel rewrites its config file (what it learns about replicas, other sentinels, epochs).
  const conf = join(dir, 'sentinel.conf');
  await writeFile(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'logfile ""',
      `sentinel monitor ${o.name} ${master.host} ${master.port} ${o.quorum}`,
      `sentinel down-after-milliseconds ${o.name} ${o.downAfterMs}`,
      `sentinel failover-timeout ${o.name} ${o.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${o.name} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn(SENTINEL, [conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The whole log is kept: a test prints it when a failover goes wrong.
  const { output, stop, waitReady } = supervise(child, dir, 64_000);
  await waitReady(`redis-sentinel on port ${port}`, async () => (await command(port, ['PING']).catch(() => null)) === 'PONG', READY_TIMEOUT_MS);
  return { port, child, output, stop };
}

// ---- the deployment -------------------------------------------------------------------------

export async function startSentinelSet(opts: SentinelOptions = {}): Promise<RedisSentinelSet> {
  const o: Required<SentinelOptions> = { name: 'mymaster', replicas: 1, sentinels: 3, quorum: 2, downAfterMs: 1000, failoverTimeoutMs: 3000, ...opts };
  const servers: RedisServer[] = [];
  const sentinels: SentinelProcess[] = [];
  const stop = async (): Promise<void> => {
    // The sentinels first: a server stopping under them must not start a failover.
    await Promise.all(sentinels.map((s) => s.stop()));
    await Promise.all(servers.map((s) => s.stop()));
  };

  try {
    const master = await startRedis({ extraArgs: SERVER_ARGS });
    servers.push(master);
    for (let i = 0; i < o.replicas; i++) servers.push(await startReplica({ host: '127.0.0.1', port: master.port }));
    // The sentinels learn the replicas from the master's INFO, which they read as they connect
    // and then only every 10 s: start them once the replicas are attached.
    for (let i = 0; i < o.sentinels; i++) sentinels.push(await startSentinel({ host: '127.0.0.1', port: master.port }, o));
    await waitFor(`${o.sentinels} sentinels to know each other and ${o.replicas} replicas`, READY_TIMEOUT_MS, async () => {
      for (const s of sentinels) {
        const m = fields(await command(s.port, ['SENTINEL', 'MASTER', o.name]));
        if (m.flags !== 'master' || Number(m['num-other-sentinels']) !== o.sentinels - 1 || Number(m['num-slaves']) !== o.replicas) return false;
        const replicas = await command(s.port, ['SENTINEL', 'REPLICAS', o.name]);
        if (!Array.isArray(replicas) || replicas.map(fields).filter((r) => r.flags === 'slave' && r['master-link-status'] === 'ok').length !== o.replicas) return false;
      }
      return true;
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const answers = async (): Promise<Address[]> => {
    const got = await Promise.all(
      sentinels
        .filter((s) => s.child.exitCode === null && s.child.signalCode === null)
        .map((s) => command(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', o.name]).catch(() => null)),
    );
    return got.flatMap((a) => (Array.isArray(a) && a.length === 2 ? [{ host: String(a[0]), port: Number(a[1]) }] : []));
  };

  const master = async (): Promise<Address> => {
    const all = await answers();
    const votes = new Map<string, { a: Address; n: number }>();
    for (const a of all) {
      const k = `${a.host}:${a.port}`;
      const v = votes.get(k) ?? { a, n: 0 };
      v.n++;
      votes.set(k, v);
    }
    const best = [...votes.values()].sort((x, y) => y.n - x.n)[0];
    if (!best) throw new Error(`no sentinel of ${o.name} names a master`);
    return best.a;
  };

  return {
    name: o.name,
    sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
    servers,
    master,
    async killMaster() {
      const addr = await master();
      const server = servers.find((s) => s.port === addr.port);
      if (!server) throw new Error(`the sentinels name ${addr.host}:${addr.port} as master, which this set did not start`);
      const dead = new Promise<void>((resolve) => {
        if (server.process.exitCode !== null || server.process.signalCode !== null) resolve();
        else server.process.once('exit', () => resolve());
      });
      server.process.kill('SIGKILL');
      const killedAt = performance.now();
      // The child is unref'd (redis-server.ts): a timer keeps the event loop up until its exit arrives.
      const hold = setTimeout(() => undefined, 10_000);
      await dead;
      clearTimeout(hold);
      // Its working directory goes now; the process is gone already.
      await server.stop();
      return { ...addr, killedAt };
    },
    async waitForNewMaster(old, timeoutMs = 60_000) {
      let found: Address | undefined;
      await waitFor(`the sentinels to promote a new master in place of ${old.host}:${old.port}`, timeoutMs, async () => {
        const all = await answers();
        const majority = Math.floor(o.sentinels / 2) + 1;
        if (all.length < majority) return false;
        const first = all[0]!;
        if (first.port === old.port || all.some((a) => a.host !== first.host || a.port !== first.port)) return false;
        const role = await command(first.port, ['ROLE']).catch(() => null);
        if (!Array.isArray(role) || role[0] !== 'master') return false;
        found = first;
        return true;
      });
      return found!;
    },
    async addReplica() {
      const replica = await startReplica(await master());
      servers.push(replica);
      return replica;
    },
    sentinelLogs() {
      return sentinels.map((s) => `--- sentinel ${s.port}\n${s.output().trim()}`).join('\n');
    },
    stop,
  };
}

async function startReplica(master: Address): Promise<RedisServer> {
  const replica = await startRedis({ extraArgs: [...SERVER_ARGS, '--replicaof', master.host, String(master.port)] });
  try {
    await waitFor(`the replica on port ${replica.port} to sync from ${master.host}:${master.port}`, READY_TIMEOUT_MS, async () => {
      const info = String(await command(replica.port, ['INFO', 'replication']));
      return /^master_link_status:up\r?$/m.test(info);
    });
  } catch (err) {
    await replica.stop();
    throw err;
  }
  return replica;
}

// ---- talking to them ------------------------------------------------------------------------

/** One command on a fresh connection: no retries, no queueing while away, short timeouts. */
export async function command(port: number, args: [string, ...string[]]): Promise<unknown> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
    enableOfflineQueue: false,
  });
  // Failures come back through the rejected call; without a listener ioredis prints them.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(args[0], ...args.slice(1));
  } finally {
    redis.disconnect();
  }
}

/** A flat [key, value, key, value, …] reply as an object. */
function fields(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
