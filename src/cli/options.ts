import { parseArgs } from 'node:util';

export interface CliOptions {
  config?: string;
  port?: number;
  data?: string;
  user?: string;
  uam?: string;
  json: boolean;
  /** verify: fix what is safe to fix. */
  repair: boolean;
  positionals: string[];
}

/** Flags shared by every subcommand; each uses what it needs. */
export function parseCli(argv: string[]): CliOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      data: { type: 'string', short: 'd' },
      user: { type: 'string', short: 'u' },
      uam: { type: 'string' },
      json: { type: 'boolean', default: false },
      repair: { type: 'boolean', default: false },
    },
  });
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port: ${values.port} is not a TCP port`);
  }
  return {
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(values.uam !== undefined ? { uam: values.uam } : {}),
    json: values.json ?? false,
    repair: values.repair ?? false,
    positionals,
  };
}
