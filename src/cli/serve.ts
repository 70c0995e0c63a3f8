import { CONFIG_FILE_ENV, loadConfig } from '../config/load.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../ops/log.js';
import type { CliOptions } from './options.js';
import { formatPreflight, preflight, preflightExitCode } from './preflight.js';

export async function serve(opts: CliOptions): Promise<number> {
  const config = await loadConfig(configSource(opts));
  const problems = await preflight(config);
  if (problems.length > 0) {
    process.stderr.write(formatPreflight(problems) + '\n');
    return preflightExitCode(problems);
  }
  const log = createLogger(config.log.level);
  const gw = await Gateway.start(config, log);
  if (gw.fellBack) {
    process.stderr.write(`afp-gateway: port ${config.listen.port} needs root (or CAP_NET_BIND_SERVICE); listening on ${gw.port} instead.\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down');
      gw.stop(2000, config.cache.shutdownDrainSeconds * 1000).then(resolve, (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => {
      // A broken file is refused whole: the running configuration stays.
      loadConfig(configSource(opts))
        .then((next) => gw.reload(next))
        .catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'configuration reload refused; the running configuration stays'));
    });
  });
  return 0;
}

/** `--config FILE`, else the file named by AFPGW_CONFIG (handy in systemd units and containers). */
export function configSource(opts: CliOptions): Parameters<typeof loadConfig>[0] {
  const overrides: { port?: number; dataDir?: string } = {};
  if (opts.port !== undefined) overrides.port = opts.port;
  if (opts.data !== undefined) overrides.dataDir = opts.data;
  const file = opts.config ?? process.env[CONFIG_FILE_ENV];
  return { ...(file !== undefined ? { file } : {}), env: process.env, overrides };
}
