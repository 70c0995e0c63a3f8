import { loadConfig } from '../config/load.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../ops/log.js';
import type { CliOptions } from './options.js';

export async function serve(opts: CliOptions): Promise<number> {
  const config = await loadConfig(configSource(opts));
  const log = createLogger(config.log.level);
  const gw = await Gateway.start(config, log);
  if (gw.fellBack) {
    process.stderr.write(`afp-gateway: port ${config.listen.port} needs root (or CAP_NET_BIND_SERVICE); listening on ${gw.port} instead.\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down');
      gw.stop(2000).then(resolve, (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

export function configSource(opts: CliOptions): Parameters<typeof loadConfig>[0] {
  const overrides: { port?: number; dataDir?: string } = {};
  if (opts.port !== undefined) overrides.port = opts.port;
  if (opts.data !== undefined) overrides.dataDir = opts.data;
  return { ...(opts.config !== undefined ? { file: opts.config } : {}), env: process.env, overrides };
}
