import { ConfigError } from '../config/errors.js';
import { VERSION } from '../gateway.js';
import { doctor } from './doctor.js';
import { parseCli } from './options.js';
import { ls } from './ls.js';
import { migrate } from './migrate.js';
import { probe } from './probe.js';
import { serve } from './serve.js';
import { status } from './status.js';
import { sessions } from './sessions.js';
import { cache } from './cache.js';
import { gc } from './gc.js';
import { ControlUnreachable } from './control-client.js';
import { get, put } from './transfer.js';
import { init } from './init.js';
import { user } from './user.js';
import { verify } from './verify.js';

const HELP = `afp-gateway ${VERSION}: Time Machine over AFP, with data in S3 and state in Redis

usage: afp-gateway <command> [options]

commands:
  serve                     run the gateway (no config: embedded store under ./afp-data)
      --config FILE         YAML config (see docs/configuration.md)
      --port N              listen port (default 548; falls back to 10548 without root)
      --data DIR            data directory of the embedded default
  init [--config FILE] [--force] [setting flags]
                            write a commented starter config, asking a few
                            questions or from flags (init --help lists them)
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
  sessions [--kill ID] [--json]
                            the running gateway's AFP sessions (id, user, Mac,
                            state), or end one: its files close, its locks go,
                            and its Mac cannot resume it
  cache flush [--timeout S] upload and commit every dirty block now, with a
                            progress bar (before maintenance of the cache disk)
  gc [--json]               delete now the replaced objects whose grace period
                            (objects.gcGraceSeconds) is over
      (sessions, cache and gc reach the gateway through its control socket,
      ops.controlSocket of --config FILE, or --socket PATH)
  migrate --config NEW.yaml [--from DIR|OLD.yaml] [--force]
                            copy a stopped gateway's metadata from the embedded
                            store into the Redis NEW.yaml names, then read it all
                            back to check it (the objects stay in the bucket);
                            --from: the store's directory, its data directory or
                            the old config (default: dataDir/meta of NEW.yaml);
                            --force: replace what the target already holds
  verify VOLUME [--config FILE] [--repair] [--json]
                            check that the volume's metadata and its objects in
                            the bucket agree (exit 1 on problems); --repair fixes
                            what is safe to fix, with every gateway stopped
  doctor [--config FILE] [--json]
                            check a config end to end before serving with it: ports,
                            cache directory and space, Redis, the bucket, multicast
                            (exit 0 ok or warnings only, 1 a check failed, 78 bad config)
  version                   print the version
`;

const commands: Record<string, (o: ReturnType<typeof parseCli>) => Promise<number>> = { serve, user, probe, ls, put, get, status, sessions, cache, gc, migrate, verify, doctor };
/** Commands with flags of their own: they get the raw arguments instead of parseCli's. */
const ownFlags: Record<string, (argv: string[]) => Promise<number>> = { init };

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
  const own = ownFlags[cmd];
  const run = commands[cmd];
  if (!own && !run) {
    process.stderr.write(`afp-gateway: unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
    return 2;
  }
  try {
    return await (own ? own(rest) : run!(parseCli(rest)));
  } catch (e) {
    if (e instanceof ControlUnreachable) {
      process.stderr.write(`afp-gateway ${cmd}: ${e.message}\n`);
      return 1;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`afp-gateway: configuration error\n${e.message}\n`);
      return 78; // EX_CONFIG
    }
    process.stderr.write(`afp-gateway ${cmd}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
