/**
 * Is the configured Redis fit to hold the gateway's metadata? For `afp-gateway doctor` and
 * the checks `serve` runs before it starts: the master answers (directly, or found through the
 * sentinels), the password is accepted, it is a master and not a read-only replica, and its
 * settings keep the metadata: persistence (an AOF, or a replica), no eviction, and the replicas
 * metadata.waitReplicas asks for.
 *
 * Its own short-lived connections, without the store's reconnecting: a check must answer
 * within seconds, not wait out metadata.failoverWaitSeconds. INFO rather than CONFIG GET,
 * because managed Redis services often disable CONFIG; when INFO is refused too, the settings
 * are reported as unchecked rather than failed.
 */
import { Redis, type RedisOptions as IORedisOptions } from 'ioredis';
import type { RedisMetadataConfig } from '../config/schema.js';
import { fail, ok, warn, type CheckResult } from '../ops/check-result.js';

export const DEFAULT_HEALTH_TIMEOUT_MS = 3000;

interface Address {
  host: string;
  port: number;
}

/** Where the master is: the URL as configured, or the address the sentinels name. */
type Master = { url: string; key: 'metadata.url'; where: string } | { address: Address; key: 'metadata.sentinels'; where: string };

/** The connection checks alone (what `serve` needs before it starts). */
export async function checkRedisReachable(cfg: RedisMetadataConfig, timeoutMs = DEFAULT_HEALTH_TIMEOUT_MS): Promise<CheckResult[]> {
  const { results, client } = await connectMaster(cfg, timeoutMs);
  if (client !== undefined) stop(client);
  return results;
}

/** Everything: reachability, then the master's role, persistence, memory policy and replicas. */
export async function checkRedis(cfg: RedisMetadataConfig, timeoutMs = DEFAULT_HEALTH_TIMEOUT_MS): Promise<CheckResult[]> {
  const { results, client, master } = await connectMaster(cfg, timeoutMs);
  if (client === undefined || master === undefined) return results;
  try {
    let info: Map<string, string>;
    try {
      info = parseInfo(await client.info());
    } catch (err) {
      results.push(
        warn('redis-settings', `could not check Redis's persistence, memory policy and replicas: INFO is refused (${messageOf(err)})`, {
          fix: `check by hand: appendonly yes (or a replica), maxmemory-policy noeviction, and at least ${cfg.waitReplicas} connected replica(s)`,
        }),
      );
      return results;
    }
    results.push(...judgeSettings(cfg, master, info));
    return results;
  } finally {
    stop(client);
  }
}

// ---- connecting ------------------------------------------------------------------------

async function connectMaster(cfg: RedisMetadataConfig, timeoutMs: number): Promise<{ results: CheckResult[]; client?: Redis; master?: Master }> {
  const results: CheckResult[] = [];
  let master: Master;
  if (cfg.sentinels !== undefined) {
    const found = await askSentinels(cfg.sentinels, cfg.sentinelName, timeoutMs);
    results.push(found.result);
    if (found.master === undefined) return { results };
    master = { address: found.master, key: 'metadata.sentinels', where: `${found.master.host}:${found.master.port} (the master the sentinels name)` };
  } else {
    const url = cfg.url ?? 'redis://127.0.0.1:6379';
    master = { url, key: 'metadata.url', where: hostPort(url) };
  }
  const opts: IORedisOptions = { ...quickOptions(timeoutMs), ...(cfg.password !== undefined ? { password: cfg.password } : {}) };
  const client = 'url' in master ? new Redis(master.url, opts) : new Redis({ ...opts, ...master.address });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await withTimeout(client.connect(), timeoutMs);
    await client.ping();
  } catch (err) {
    stop(client);
    results.push(connectFailure(cfg, master, lastError ?? toError(err), timeoutMs));
    return { results };
  }
  results.push(ok('redis', `Redis at ${master.where} answers PING`));
  return { results, client, master };
}

/** One attempt, no offline queue, every command bounded: a check must not wait for a reconnect. */
function quickOptions(timeoutMs: number): IORedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
    enableOfflineQueue: false,
  };
}

async function askSentinels(sentinels: readonly Address[], name: string, timeoutMs: number): Promise<{ result: CheckResult; master?: Address }> {
  type Answer = { sentinel: Address; master: Address | null } | { sentinel: Address; error: { text: string; transient: boolean } };
  const answers = await Promise.all(
    sentinels.map(async (s): Promise<Answer> => {
      const client = new Redis({ ...quickOptions(timeoutMs), host: s.host, port: s.port });
      let lastError: Error | undefined;
      client.on('error', (err: Error) => {
        lastError = err;
      });
      try {
        await withTimeout(client.connect(), timeoutMs);
        const reply = await client.call('SENTINEL', 'get-master-addr-by-name', name);
        const master = Array.isArray(reply) && reply.length === 2 ? { host: String(reply[0]), port: Number(reply[1]) } : null;
        return { sentinel: s, master };
      } catch (err) {
        return { sentinel: s, error: describeNetError(lastError ?? toError(err), timeoutMs) };
      } finally {
        stop(client);
      }
    }),
  );
  const addr = (a: Address): string => `${a.host}:${a.port}`;
  const silent = answers.flatMap((a) => ('error' in a ? [a] : []));
  const named = answers.flatMap((a) => ('master' in a && a.master ? [a.master] : []));
  const list = sentinels.map(addr).join(', ');
  if (silent.length === answers.length) {
    const why = silent.map((a) => `${addr(a.sentinel)}: ${a.error.text}`).join('; ');
    return {
      result: fail('redis', `no sentinel answers (${why})`, {
        key: 'metadata.sentinels',
        fix: 'check that redis-sentinel runs on the hosts and ports metadata.sentinels lists, and that no firewall drops them',
        transient: silent.every((a) => a.error.transient),
      }),
    };
  }
  if (named.length === 0)
    return {
      result: fail('redis', `the sentinels (${list}) know no master named "${name}"`, {
        key: 'metadata.sentinelName',
        fix: 'set metadata.sentinelName to the name in the sentinels\' "sentinel monitor" line (SENTINEL MASTERS lists them)',
        transient: false,
      }),
    };
  const master = named[0]!;
  const disagree = named.some((m) => addr(m) !== addr(master));
  if (disagree || silent.length > 0) {
    const problems = [
      ...(silent.length > 0 ? [`${silent.length} of ${answers.length} do not answer (${silent.map((a) => addr(a.sentinel)).join(', ')})`] : []),
      ...(disagree ? [`they name different masters (${[...new Set(named.map(addr))].join(', ')})`] : []),
    ];
    return {
      master,
      result: warn('sentinels', `the sentinels name master ${addr(master)}, but ${problems.join(' and ')}`, {
        key: 'metadata.sentinels',
        fix: 'a failover needs a majority of the sentinels: bring the silent ones back, or correct metadata.sentinels',
      }),
    };
  }
  return { master, result: ok('sentinels', `${answers.length} sentinel(s) answer and name master ${addr(master)} for "${name}"`) };
}

function connectFailure(cfg: RedisMetadataConfig, master: Master, err: Error, timeoutMs: number): CheckResult {
  const msg = err.message;
  const passwordKey = cfg.password === undefined && 'url' in master && hasPassword(master.url) ? 'metadata.url' : 'metadata.password';
  if (msg.startsWith('WRONGPASS') || /invalid password/i.test(msg))
    return fail('redis', `Redis at ${master.where} refuses the password (${firstLine(msg)})`, {
      key: passwordKey,
      fix: `set ${passwordKey} to the password Redis expects (its requirepass, or the ACL user's)`,
      transient: false,
    });
  if (msg.startsWith('NOAUTH'))
    return fail('redis', `Redis at ${master.where} requires a password and none is configured`, {
      key: 'metadata.password',
      fix: 'set metadata.password (or AFPGW_METADATA__PASSWORD in the service environment)',
      transient: false,
    });
  const net = describeNetError(err, timeoutMs);
  const fix =
    master.key === 'metadata.url'
      ? `check that redis-server runs at ${master.where} and that metadata.url names its host and port`
      : 'the sentinels name this address as the master: it must be reachable from this machine (see replica-announce-ip in redis.conf)';
  return fail('redis', `Redis at ${master.where}: ${net.text}`, { key: master.key, fix, transient: net.transient });
}

/** Network errors in words, and whether they may pass by themselves. */
function describeNetError(err: Error, timeoutMs: number): { text: string; transient: boolean } {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ECONNREFUSED':
      return { text: 'connection refused (nothing listens there)', transient: true };
    case 'ENOTFOUND':
      return { text: `the host name does not resolve (${err.message})`, transient: false };
    case 'EAI_AGAIN':
      return { text: `the host name cannot be resolved now (${err.message})`, transient: true };
    case 'ETIMEDOUT':
      return { text: `no answer within ${timeoutMs / 1000} s`, transient: true };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { text: `no route to it (${code})`, transient: true };
    default:
      if (err instanceof TimeoutError || /timed? ?out/i.test(err.message)) return { text: `no answer within ${timeoutMs / 1000} s`, transient: true };
      return { text: firstLine(err.message), transient: true };
  }
}

// ---- judging the settings ---------------------------------------------------------------

function judgeSettings(cfg: RedisMetadataConfig, master: Master, info: Map<string, string>): CheckResult[] {
  const out: CheckResult[] = [];
  const role = info.get('role');
  if (role !== undefined && role !== 'master') {
    out.push(
      fail('redis', `Redis at ${master.where} is a ${role === 'slave' ? 'replica' : role}, read-only: every change the gateway makes would be refused`, {
        key: master.key,
        fix: master.key === 'metadata.url' ? 'point metadata.url at the master, or use metadata.sentinels to follow it' : 'the sentinels are out of date: check SENTINEL MASTERS',
        transient: false,
      }),
    );
    return out;
  }
  const replicas = Number(info.get('connected_slaves') ?? '0');
  const aof = info.get('aof_enabled');
  if (aof === undefined) out.push(warn('redis-persistence', 'could not check appendonly: INFO persistence shows no aof_enabled', { fix: 'check by hand that appendonly is yes' }));
  else if (aof === '1') {
    if (info.get('aof_last_write_status') === 'err')
      out.push(warn('redis-persistence', 'appendonly is on, but Redis reports its last AOF write failed (aof_last_write_status:err)', { fix: "look at Redis's log: a full or failing disk" }));
    else out.push(ok('redis-persistence', 'appendonly is on'));
  } else if (replicas > 0) out.push(ok('redis-persistence', `appendonly is off, but ${replicas} replica(s) keep a copy`));
  else
    out.push(
      warn('redis-persistence', 'appendonly is off and the master has no replica: if Redis restarts, the metadata changed since its last RDB snapshot (if it takes any) is lost, and files backed up since then with it', {
        fix: 'set "appendonly yes" in redis.conf (as infra/redis/redis.conf does), or add a replica',
      }),
    );
  const policy = info.get('maxmemory_policy');
  const maxmemory = Number(info.get('maxmemory') ?? '0');
  if (policy === undefined) out.push(warn('redis-memory', 'could not check maxmemory-policy: INFO memory does not show it', { fix: 'check by hand that maxmemory-policy is noeviction' }));
  else if (policy !== 'noeviction')
    out.push(
      warn('redis-memory', `maxmemory-policy is ${policy}${maxmemory > 0 ? '' : ' (in effect once maxmemory is set)'}: when Redis runs out of memory it deletes keys, the gateway's metadata among them`, {
        fix: 'set "maxmemory-policy noeviction": a full Redis then refuses writes instead of losing data',
      }),
    );
  else out.push(ok('redis-memory', 'maxmemory-policy is noeviction'));
  if (cfg.waitReplicas > replicas)
    out.push(
      fail('redis-replicas', `metadata.waitReplicas is ${cfg.waitReplicas} but the master has ${replicas} connected replica(s): every sync (FPSyncFork) would wait metadata.waitTimeoutMs and fail`, {
        key: 'metadata.waitReplicas',
        fix: `start the replicas, or lower metadata.waitReplicas to ${replicas}`,
        transient: true,
      }),
    );
  else if (cfg.waitReplicas > 0) out.push(ok('redis-replicas', `${replicas} replica(s) connected; syncs wait for ${cfg.waitReplicas}`));
  return out;
}

/** INFO's "key:value" lines, section headers and blanks dropped. */
function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

// ---- small helpers ---------------------------------------------------------------------

/** disconnect() on a connection that has already ended arms a 2 s timer that holds the process. */
function stop(client: Redis): void {
  if (client.status !== 'end') client.disconnect();
}

class TimeoutError extends Error {}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return url;
  }
}

function hasPassword(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== '' || u.username !== '';
  } catch {
    return false;
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function messageOf(err: unknown): string {
  return firstLine(toError(err).message);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
