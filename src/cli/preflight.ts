/**
 * What `serve` checks before it starts the gateway: that the Redis and the bucket it is
 * configured with answer and accept it. Without this, an unreachable Redis fails the start
 * only after the connect timeout with a message that names no key, and a missing bucket or a
 * refused key starts a gateway that accepts backups it can never upload.
 *
 * The checks are doctor's (meta/redis-health.ts, objects/probe.ts), limited to what decides
 * whether starting makes sense; the rest (persistence, free space, multicast) stays with
 * `afp-gateway doctor`. Gateway.start itself does no such checks: tests start gateways
 * in-process against servers they stop and start on purpose.
 */
import type { GatewayConfig } from '../config/schema.js';
import { checkRedisReachable } from '../meta/redis-health.js';
import { checkS3Store } from '../objects/probe.js';
import { failed, type CheckResult } from '../ops/check-result.js';

/** The failures only; empty when the gateway may start. */
export async function preflight(config: GatewayConfig): Promise<CheckResult[]> {
  const groups = await Promise.all([
    config.metadata.backend === 'redis' ? checkRedisReachable(config.metadata) : [],
    config.objects.backend === 's3' ? checkS3Store(config.objects).then((r) => [r]) : [],
  ]);
  return failed(groups.flat());
}

/**
 * The exit status for failures: 78 (EX_CONFIG) when the configuration must change (a missing
 * bucket, a refused key or password); 1 when every failure may pass by itself (Redis or S3 down
 * or unreachable), so that systemd, whose unit restarts on 1 but not on 78, keeps trying and the
 * gateway comes up once they are back.
 */
export function preflightExitCode(failures: readonly CheckResult[]): number {
  return failures.every((f) => f.transient === true) ? 1 : 78;
}

export function formatPreflight(failures: readonly CheckResult[]): string {
  const lines = failures.map((f) => `  ${f.key !== undefined ? `${f.key}: ` : ''}${f.message}${f.fix !== undefined ? `\n    fix: ${f.fix}` : ''}`);
  const transient = preflightExitCode(failures) === 1;
  return [
    'afp-gateway: not starting: the configured backends are not usable',
    ...lines,
    transient ? '(this may pass by itself; `afp-gateway doctor` checks the whole configuration)' : '(`afp-gateway doctor` checks the whole configuration)',
  ].join('\n');
}
