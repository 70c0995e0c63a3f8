import { ConfigError } from '../config/errors.js';
import { VERSION } from '../gateway.js';
import { doctor } from './doctor.js';
import { parseCli } from './options.js';
import { ls } from './ls.js';
import { probe } from './probe.js';
import { serve } from './serve.js';
import { status } from './status.js';
import { get, put } from './transfer.js';
import { user } from './user.js';

const HELP = `afp-gateway ${VERSION}: Time Machine over AFP, with data in S3 and state in Redis

usage: afp-gateway <command> [options]

commands:
  serve                     run the gateway (no config: embedded store under ./afp-data)
      --config FILE         YAML config (see docs/configuration.md)
      --port N              listen port (default 548; falls back to 10548 without root)
      --data DIR            data directory of the embedded default
  user add|passwd|del|list [NAME]
                            manage users (password read from the terminal, or stdin)
  probe HOST[:PORT]         show what an AFP server says about itself
      --user NAME [--uam U] also log in and list the volumes
  ls HOST[:PORT] VOLUME[/PATH] --user NAME [--json]
                            list a directory of a volume over AFP, like ls -l
  put HOST[:PORT] LOCAL-FILE VOLUME[/PATH] --user NAME
                            copy a file to a volume (replacing it), then sync it
  get HOST[:PORT] VOLUME/PATH LOCAL-FILE --user NAME
                            copy a file from a volume
                            (put/get: a PATH ending in / or a local directory keeps
                            the file's name; progress goes to stderr)
  status [HOST:PORT] [--json]
                            what a running gateway is doing: sessions, volumes,
                            cache, uploads (from its ops endpoint, default
                            127.0.0.1:9548; the same as its page at /status)
  doctor [--config FILE] [--json]
                            check a config end to end before serving with it: ports,
                            cache directory and space, Redis, the bucket, multicast
                            (exit 0 ok or warnings only, 1 a check failed, 78 bad config)
  version                   print the version
`;

const commands: Record<string, (o: ReturnType<typeof parseCli>) => Promise<number>> = { serve, user, probe, ls, put, get, status, doctor };

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(HELP);
    return cmd ? 0 : 2;
  }
  if (cmd === 'version' || cmd === '--version') {
    process.stdout.write(VERSION + '\n');
    return 0;
  }
  const run = commands[cmd];
  if (!run) {
    process.stderr.write(`afp-gateway: unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
    return 2;
  }
  try {
    return await run(parseCli(rest));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`afp-gateway: configuration error\n${e.message}\n`);
      return 78; // EX_CONFIG
    }
    process.stderr.write(`afp-gateway ${cmd}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
