import { parseArgs } from 'node:util';

export interface CliOptions {
  config?: string;
  port?: number;
  data?: string;
  user?: string;
  uam?: string;
  json: boolean;
  /** The control socket of a running gateway (sessions, cache flush, gc). */
  socket?: string;
  /** `sessions --kill ID` */
  kill?: string;
  /** Seconds (`cache flush --timeout`); 0: none. */
  timeout?: number;
  /** migrate: where the embedded store to copy from is. */
  from?: string;
  /** migrate: replace what the target holds instead of refusing. */
  force: boolean;
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
      socket: { type: 'string' },
      kill: { type: 'string' },
      timeout: { type: 'string' },
      from: { type: 'string' },
      force: { type: 'boolean', default: false },
      repair: { type: 'boolean', default: false },
    },
  });
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port: ${values.port} is not a TCP port`);
  }
  let timeout: number | undefined;
  if (values.timeout !== undefined) {
    timeout = Number(values.timeout);
    if (!Number.isFinite(timeout) || timeout < 0) throw new Error(`--timeout: ${values.timeout} is not a number of seconds`);
  }
  return {
    ...(values.socket !== undefined ? { socket: values.socket } : {}),
    ...(values.kill !== undefined ? { kill: values.kill } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(values.uam !== undefined ? { uam: values.uam } : {}),
    json: values.json ?? false,
    ...(values.from !== undefined ? { from: values.from } : {}),
    force: values.force ?? false,
    repair: values.repair ?? false,
    positionals,
  };
}
