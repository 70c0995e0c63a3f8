/**
 * `afp-gateway init`: writes a commented starter config from a few answers (on a terminal,
 * piped in, or given as flags), checks it with the real loader before it takes its name, and
 * says what to do next.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, formatProblem } from '../config/errors.js';
import { loadConfig, parseConfig } from '../config/load.js';
import { defaultServerName, type GatewayConfig } from '../config/schema.js';
import { renderStarterConfig, starterConfig, starterHoldsSecret, type StarterAnswers, type StarterMetadata, type StarterObjects } from '../config/starter.js';
import { VERSION } from '../gateway.js';
import { FileExistsError, writeFileAtomic, type AtomicWriteOptions } from './atomic-file.js';
import { FlagAnswers, InitUsageError, LineAnswers, TerminalAnswers, q, type AnswerSource } from './init-questions.js';
import { nextSteps, warnings } from './init-report.js';
import { SERVICE_USER, SYSTEM_CONFIG, SYSTEM_DATA_DIR } from './system-install.js';
import { lookupSystemUser, type SystemUser } from './system-user.js';


export const INIT_USAGE = `usage: afp-gateway init [--config FILE] [--force] [setting flags]

Writes a commented starter config. On a terminal it asks; with stdin not a terminal it reads
one answer per line in the order asked (an empty line takes the default); given any setting
flag, or --yes, it asks nothing and takes the defaults for the rest.

  --config FILE             where to write (default ${SYSTEM_CONFIG} as root, else ./afp-gateway.yaml)
  --force                   replace an existing file
  --yes                     ask nothing: flags and defaults only
  --service-user NAME       as root: the user the service runs as (default ${SERVICE_USER}); the
                            file gets its group (mode 0640), or is its own when it holds secrets (0600)
  --write-secrets           write the S3 secret key and Redis password into the file (mode 0600);
                            they are read from the terminal or stdin, never from flags.
                            Without it they belong in the environment (AFPGW_OBJECTS__ACCESS_KEY_ID,
                            AFPGW_OBJECTS__SECRET_ACCESS_KEY, AFPGW_METADATA__PASSWORD)
setting flags:
  --server-name NAME        serverName (default: the short host name)
  --data-dir DIR            dataDir (default ${SYSTEM_DATA_DIR} as root, else ./afp-data)
  --cache-dir DIR           cache.dir (default: DIR/cache)
  --cache-size SIZE         cache.size (default 10GiB)
  --metadata embedded|redis metadata.backend (implied by --redis-url or --redis-sentinels)
  --redis-url URL           metadata.url
  --redis-sentinels LIST    metadata.sentinels, as host:port,host:port
  --redis-master NAME       metadata.sentinelName (default mymaster)
  --objects fs|s3           objects.backend (implied by --s3-bucket)
  --objects-dir DIR         objects.path (fs; default: DIR/objects)
  --s3-endpoint URL         objects.endpoint (leave out for AWS)
  --s3-region REGION        objects.region (default us-east-1)
  --s3-bucket NAME          objects.bucket
  --s3-prefix PREFIX        objects.prefix (default none)
  --s3-path-style yes|no    objects.forcePathStyle (default yes with --s3-endpoint, else no)
  --s3-access-key-id ID     objects.accessKeyId (with --write-secrets)
  --volume NAME             volumes[0].name (default TimeMachine)
  --size-limit SIZE|none    volumes[0].sizeLimit (default none)
  --time-machine yes|no     volumes[0].timeMachine (default yes)
  --bonjour yes|no          bonjour.enabled (default yes)
`;

const SETTING_FLAGS = [
  'server-name', 'data-dir', 'cache-dir', 'cache-size', 'metadata', 'redis-url', 'redis-sentinels', 'redis-master',
  'objects', 'objects-dir', 's3-endpoint', 's3-region', 's3-bucket', 's3-prefix', 's3-path-style', 's3-access-key-id',
  'volume', 'size-limit', 'time-machine', 'bonjour',
] as const;

interface InitFlags {
  config?: string;
  force: boolean;
  yes: boolean;
  writeSecrets: boolean;
  serviceUser?: string;
  settings: Record<string, string | undefined>;
}

function parseFlags(argv: string[]): InitFlags {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      force: { type: 'boolean', default: false },
      yes: { type: 'boolean', short: 'y', default: false },
      'write-secrets': { type: 'boolean', default: false },
      'service-user': { type: 'string' },
      ...Object.fromEntries(SETTING_FLAGS.map((f) => [f, { type: 'string' as const }])),
    },
  });
  if (positionals.length > 0) throw new InitUsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const v = values as Record<string, string | boolean | undefined>;
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  return {
    ...(str('config') !== undefined ? { config: str('config')! } : {}),
    force: v.force === true,
    yes: v.yes === true,
    writeSecrets: v['write-secrets'] === true,
    ...(str('service-user') !== undefined ? { serviceUser: str('service-user')! } : {}),
    settings: Object.fromEntries(SETTING_FLAGS.map((f) => [f, str(f)])),
  };
}

const isRoot = (): boolean => process.getuid?.() === 0;

export async function init(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(INIT_USAGE);
    return 0;
  }
  let flags: InitFlags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    process.stderr.write(`afp-gateway init: ${(err as Error).message}\n\n${INIT_USAGE}`);
    return 2;
  }
  const root = isRoot();
  const target = resolve(flags.config ?? (root ? SYSTEM_CONFIG : 'afp-gateway.yaml'));
  // Before any question: nobody wants to answer ten of them to learn the file is there.
  if (existsSync(target) && !flags.force) {
    process.stderr.write(`afp-gateway init: ${target} exists; give --force to replace it\n`);
    return 1;
  }

  let service: SystemUser | undefined;
  try {
    service = await serviceUser(flags, root);
  } catch (err) {
    process.stderr.write(`afp-gateway init: ${(err as Error).message}\n`);
    return 2;
  }

  const given = SETTING_FLAGS.some((f) => flags.settings[f] !== undefined);
  const source: AnswerSource = given || flags.yes ? new FlagAnswers(flags.settings) : process.stdin.isTTY ? new TerminalAnswers() : new LineAnswers();
  let answers: StarterAnswers;
  try {
    if (source instanceof TerminalAnswers) process.stderr.write(`Writing ${target}. Press Enter to take the value in brackets.\n`);
    answers = await collect(source, flags, root, target);
  } catch (err) {
    if (err instanceof InitUsageError) {
      process.stderr.write(`afp-gateway init: ${err.message}\nNothing was written.\n`);
      return 2;
    }
    throw err;
  } finally {
    source.close();
  }

  // The answers one by one were fine; together they may still not be (a cache smaller than
  // a block). Reported by key, before anything is written.
  let effective: GatewayConfig;
  try {
    effective = parseConfig(starterConfig(answers), { source: target, baseDir: dirname(target) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`afp-gateway init: these answers do not make a valid configuration:\n${err.message}\nNothing was written.\n`);
      return 2;
    }
    throw err;
  }

  const secret = starterHoldsSecret(answers);
  const mode = secret ? 0o600 : 0o640;
  // The service reads the file as its own user: with a secret the file is that user's alone,
  // otherwise root's with the service's group, so the service can read but not change it.
  const owner = service ? (secret ? { uid: service.uid, gid: service.gid } : { uid: 0, gid: service.gid }) : undefined;
  const text = renderStarterConfig(answers, effective, `afp-gateway init ${VERSION} on ${new Date().toISOString().slice(0, 10)}`);
  const failed = await publish(target, text, { mode, overwrite: flags.force, ...(owner ? { owner } : {}) });
  if (failed !== undefined) return failed;

  const ownerText = owner ? `, owner ${owner.uid === 0 ? 'root' : service!.name}:${service!.group}` : '';
  process.stdout.write(`wrote ${target} (mode 0${mode.toString(8)}${ownerText})\n`);
  for (const w of warnings(answers, effective, target, root, service)) process.stdout.write(`note: ${w}\n`);
  process.stdout.write(nextSteps(answers, target, root));
  return 0;
}

/**
 * Writes the file once the real loader has read it under its temporary name; an exit code
 * when that did not happen.
 */
async function publish(target: string, text: string, o: Omit<AtomicWriteOptions, 'check'>): Promise<number | undefined> {
  try {
    await writeFileAtomic(target, text, {
      ...o,
      check: async (tmp) => {
        try {
          await loadConfig({ file: tmp, env: {}, cwd: dirname(target) });
        } catch (err) {
          // Named after the file it was going to be, not the temporary one.
          if (err instanceof ConfigError) throw new ConfigError(err.problems.map((p) => ({ ...p, source: target })));
          throw err;
        }
      },
    });
    return undefined;
  } catch (err) {
    if (err instanceof FileExistsError) {
      process.stderr.write(`afp-gateway init: ${target} appeared meanwhile; give --force to replace it\n`);
      return 1;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`afp-gateway init: the file would not load (a bug in init; please report it):\n${err.problems.map(formatProblem).join('\n')}\nNothing was written.\n`);
      return 78;
    }
    throw err;
  }
}

async function serviceUser(flags: InitFlags, root: boolean): Promise<SystemUser | undefined> {
  if (!root) {
    if (flags.serviceUser !== undefined) throw new Error('--service-user needs root (only root can give a file to another user)');
    return undefined;
  }
  const name = flags.serviceUser ?? SERVICE_USER;
  const found = await lookupSystemUser(name);
  if (!found && flags.serviceUser !== undefined) throw new Error(`--service-user: no user named ${name} in /etc/passwd`);
  return found;
}

/** The questions, in order; those that depend on an earlier answer come right after it. */
async function collect(src: AnswerSource, flags: InitFlags, root: boolean, target: string): Promise<StarterAnswers> {
  const serverName = await src.answer(q.serverName(defaultServerName()));
  const dataDir = await src.answer(q.dataDir(root ? SYSTEM_DATA_DIR : './afp-data'));
  const under = (leaf: string): string => {
    const d = isAbsolute(dataDir) ? dataDir : relative(process.cwd(), resolve(dirname(target), dataDir)) || '.';
    return join(d, leaf);
  };
  const cacheDir = await src.answer(q.cacheDir(under('cache')));
  const cacheSize = await src.answer(q.cacheSize());
  const metadata = await collectMetadata(src, flags);
  const objects = await collectObjects(src, flags, under('objects'));
  const name = await src.answer(q.volumeName());
  const sizeLimit = await src.answer(q.sizeLimit());
  const timeMachine = await src.answer(q.timeMachine());
  const bonjour = await src.answer(q.bonjour());
  return { serverName, dataDir, ...(cacheDir !== undefined ? { cacheDir } : {}), cacheSize, metadata, objects, volume: { name, sizeLimit, timeMachine }, bonjour };
}

/** A backend flag, or the one another flag implies; a contradiction is a usage error. */
function impliedBackend(src: AnswerSource, flags: InitFlags, flag: string, implied: string, by: readonly string[]): void {
  if (!(src instanceof FlagAnswers)) return;
  const set = flags.settings[flag];
  const implying = by.find((f) => flags.settings[f] !== undefined);
  if (implying === undefined) return;
  if (set === undefined) flags.settings[flag] = implied;
  else if (set.toLowerCase() !== implied) throw new InitUsageError(`--${implying} needs --${flag} ${implied} (got --${flag} ${set})`);
}

async function collectMetadata(src: AnswerSource, flags: InitFlags): Promise<StarterMetadata> {
  impliedBackend(src, flags, 'metadata', 'redis', ['redis-url', 'redis-sentinels', 'redis-master']);
  const backend = await src.answer(q.metadata());
  if (backend === 'embedded') return { backend };
  let target: { url: string } | { sentinels: { host: string; port: number }[] };
  if (src instanceof FlagAnswers) {
    const url = src.has('redis-url');
    const sentinels = src.has('redis-sentinels');
    if (url === sentinels) throw new InitUsageError('with --metadata redis, give exactly one of --redis-url or --redis-sentinels');
    target = url ? { url: await src.answer(q.redisUrl(flags.writeSecrets)) } : { sentinels: await src.answer(q.redisSentinels()) };
  } else {
    target = await src.answer(q.redisTarget(flags.writeSecrets));
  }
  let where: { url: string } | { sentinels: { host: string; port: number }[]; sentinelName: string };
  if ('url' in target) {
    if (flags.settings['redis-master'] !== undefined) throw new InitUsageError('--redis-master goes with --redis-sentinels, not --redis-url');
    where = target;
  } else {
    where = { sentinels: target.sentinels, sentinelName: await src.answer(q.redisMaster()) };
  }
  const password = flags.writeSecrets ? await src.secret(q.redisPassword()) : undefined;
  return { backend: 'redis', ...where, ...(password !== undefined ? { password } : {}) };
}

async function collectObjects(src: AnswerSource, flags: InitFlags, under: string): Promise<StarterObjects> {
  impliedBackend(src, flags, 'objects', 's3', ['s3-bucket', 's3-endpoint', 's3-region', 's3-prefix', 's3-path-style', 's3-access-key-id']);
  const backend = await src.answer(q.objects());
  if (backend === 'fs') {
    const path = await src.answer(q.objectsDir(under));
    return { backend, ...(path !== undefined ? { path } : {}) };
  }
  const endpoint = await src.answer(q.s3Endpoint());
  const region = await src.answer(q.s3Region());
  const bucket = await src.answer(q.s3Bucket());
  const prefix = await src.answer(q.s3Prefix());
  const forcePathStyle = await src.answer(q.s3PathStyle(endpoint !== undefined));
  let credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  if (flags.writeSecrets) {
    const accessKeyId = await src.answer(q.s3AccessKeyId());
    const secretAccessKey = await src.secret(q.s3SecretAccessKey());
    credentials = { accessKeyId, secretAccessKey };
  } else if (flags.settings['s3-access-key-id'] !== undefined) {
    throw new InitUsageError('--s3-access-key-id goes with --write-secrets; without it, set AFPGW_OBJECTS__ACCESS_KEY_ID in the environment');
  }
  return { backend, ...(endpoint !== undefined ? { endpoint } : {}), region, bucket, prefix, forcePathStyle, ...(credentials ? { credentials } : {}) };
}
