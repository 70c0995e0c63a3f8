/**
 * `afp-gateway doctor [--config FILE] [--json]`: checks a configuration end to end, before (or
 * instead of) starting the gateway with it, and says what to fix. Each part is checked by the
 * layer that owns it (meta/ for Redis, objects/ for the bucket, discovery/ for multicast, ops/
 * for ports and directories); this command runs them and prints one line per finding.
 *
 * Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 78 when the
 * configuration does not load at all.
 */
import { ConfigError, formatProblem } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { checkMulticast } from '../discovery/multicast-check.js';
import { checkRedis } from '../meta/redis-health.js';
import { checkS3Store } from '../objects/probe.js';
import { fail, ok, skip, type CheckResult } from '../ops/check-result.js';
import { checkCacheSpace, checkWritableDir } from '../ops/dir-check.js';
import { checkAfpPort, checkOpsPort } from '../ops/port-check.js';
import type { CliOptions } from './options.js';
import { configSource } from './serve.js';

const EX_CONFIG = 78;

export async function doctor(opts: CliOptions): Promise<number> {
  const source = configSource(opts);
  const from = source?.file ?? '(no config file: defaults and AFPGW_* variables)';
  let config: GatewayConfig;
  try {
    config = await loadConfig(source);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const results = err.problems.map((p) => fail('config', formatProblem(p), { ...(p.path !== undefined ? { key: p.path } : {}), transient: false }));
    report(from, results, EX_CONFIG, opts.json);
    return EX_CONFIG;
  }
  const results = [ok('config', `${from} loads: metadata ${config.metadata.backend}, objects ${config.objects.backend}, ${config.volumes.length} volume(s)`), ...(await runChecks(config))];
  const code = results.some((r) => r.status === 'fail') ? 1 : 0;
  report(from, results, code, opts.json);
  return code;
}

/**
 * Every check of a loaded configuration, in a fixed order. The directory checks run one after
 * another (a directory made and removed by one must not vanish under the next); the network
 * checks, which wait on timeouts, run side by side.
 */
async function runChecks(config: GatewayConfig): Promise<CheckResult[]> {
  const local: CheckResult[] = [];
  local.push(...(await checkCache(config.cache)));
  if (config.metadata.backend === 'embedded') local.push(await checkWritableDir('metadata', 'metadata.path', config.metadata.path));
  if (config.objects.backend === 'fs') local.push(await checkWritableDir('objects', 'objects.path', config.objects.path));
  const network = await Promise.all([
    checkAfpPort(config.listen).then((r) => [r]),
    config.ops.metricsListen === null ? [skip('ops', 'ops.metricsListen is null: no metrics endpoint')] : checkOpsPort(config.ops.metricsListen).then((r) => [r]),
    config.metadata.backend === 'redis' ? checkRedis(config.metadata) : [],
    config.objects.backend === 's3' ? checkS3Store(config.objects).then((r) => [r]) : [],
    config.bonjour.enabled ? checkMulticast(config.bonjour.interfaces) : [skip('multicast', 'bonjour.enabled is false: the gateway does not advertise itself')],
  ]);
  const [listen, ops, ...rest] = network;
  return [...listen!, ...ops!, ...local, ...rest.flat()];
}

async function checkCache(cache: GatewayConfig['cache']): Promise<CheckResult[]> {
  const writable = await checkWritableDir('cache', 'cache.dir', cache.dir);
  if (writable.status === 'fail') return [writable];
  return [writable, await checkCacheSpace(cache.dir, cache.size, cache.dirtyLimit)];
}

const LABEL: Record<CheckResult['status'], string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' };

function report(from: string, results: readonly CheckResult[], exitCode: number, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ config: from, exitCode, checks: results }, null, 2) + '\n');
    return;
  }
  const width = Math.max(...results.map((r) => r.check.length));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${LABEL[r.status].padEnd(4)}  ${r.check.padEnd(width)}  ${r.message}`);
    if (r.fix !== undefined && r.status !== 'ok') lines.push(`${' '.repeat(6 + width)}  fix: ${r.fix}`);
  }
  const failures = results.filter((r) => r.status === 'fail').length;
  const warnings = results.filter((r) => r.status === 'warn').length;
  const counts = `${failures} failed, ${warnings} warning${warnings === 1 ? '' : 's'}`;
  lines.push(
    '',
    exitCode === EX_CONFIG
      ? 'doctor: the configuration does not load; fix it first (the other checks need it)'
      : failures > 0
        ? `doctor: ${counts}: the gateway would not work as configured`
        : `doctor: ${counts}: ready to serve`,
  );
  process.stdout.write(lines.join('\n') + '\n');
}
