import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword } from '../../src/auth/password.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger, createLogger, type Logger } from '../../src/ops/log.js';

/** Cheap scrypt for tests; production uses the config default (N = 32768). */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1 };

export interface TestGatewayOptions {
  /** Raw config merged over the test defaults (validated by the real schema). */
  config?: Record<string, unknown>;
  users?: { name: string; password: string }[];
  /** Applied after validation, for timings the schema would not allow (sub-second tickles). */
  tune?: (cfg: GatewayConfig) => void;
  /** The gateway's logger (default: silent, or debug on stdout when AFPGW_TEST_LOG is set). */
  log?: Logger;
}

export interface TestGateway {
  gw: Gateway;
  host: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = await mkdtemp(join(tmpdir(), 'afpgw-test-'));
  const cfg = parseConfig(
    {
      serverName: 'Test Gateway',
      dataDir,
      listen: { host: '127.0.0.1', port: 0, fallbackPort: null },
      auth: { scrypt: TEST_SCRYPT },
      // Test gateways stay off the network's mDNS; test/discovery covers advertising.
      bonjour: { enabled: false },
      // Many test gateways share the machine: metrics only where a test asks (port 0 = any).
      ops: { metricsListen: null },
      ...opts.config,
    },
    { source: 'test', baseDir: dataDir },
  );
  opts.tune?.(cfg);
  const log = opts.log ?? (process.env.AFPGW_TEST_LOG ? createLogger('debug') : silentLogger());
  const gw = await Gateway.start(cfg, log);
  for (const u of opts.users ?? []) await gw.meta.createUser({ name: u.name, password: await hashPassword(u.password, TEST_SCRYPT) });
  return {
    gw,
    host: '127.0.0.1',
    port: gw.port,
    dataDir,
    async stop() {
      await gw.stop(0);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
