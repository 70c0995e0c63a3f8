/**
 * The questions `afp-gateway init` asks, and the three places answers come from: flags (for
 * scripts: nothing is asked), a terminal (asked, and asked again after a bad answer), or the
 * lines of a stdin that is not a terminal (one answer per line; a bad one ends the run).
 *
 * Each answer is checked by the real schema, on a config holding just that answer, so the
 * message is the loader's own and names the key it is about.
 */
import { ConfigError } from '../config/errors.js';
import { parseConfig } from '../config/load.js';
import type { SentinelAddress } from '../config/starter.js';
import { urlHoldsSecret } from '../config/starter.js';
import { ask, promptHidden, StdinLines } from './prompt.js';

/** An answer the schema refuses; the message starts with the key it is about. */
export class AnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnswerError';
  }
}

/** The run cannot go on: a bad flag, a bad piped answer, a required answer missing. Exit 2. */
export class InitUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InitUsageError';
  }
}

export interface Question<T> {
  /** The flag that answers it in scripts, without the dashes. */
  flag: string;
  /** The config key it sets, for "is required" messages. */
  key: string;
  prompt: string;
  /** Taken for an empty answer; undefined: an answer is required. */
  default?: string;
  /** How the default is shown, when the raw text would say little (e.g. "" for "none"). */
  shown?: string;
  /** Turns the text into the value; throws AnswerError. */
  parse(text: string): T;
}

export interface AnswerSource {
  /** 'flags': nothing is asked, so flows that depend on a choice read the flags directly. */
  readonly kind: 'flags' | 'ask';
  answer<T>(q: Question<T>): Promise<T>;
  /** Like answer, but never echoed and never from a flag (argv is visible in `ps`). */
  secret<T>(q: Question<T>): Promise<T>;
  close(): void;
}

// ---- sources ---------------------------------------------------------------------------

export class FlagAnswers implements AnswerSource {
  readonly kind = 'flags';
  private secrets: AnswerSource | undefined;

  constructor(private readonly values: Readonly<Record<string, string | undefined>>) {}

  has(flag: string): boolean {
    return this.values[flag] !== undefined;
  }

  async answer<T>(q: Question<T>): Promise<T> {
    const given = this.values[q.flag];
    const text = given ?? q.default;
    if (text === undefined) throw new InitUsageError(`--${q.flag} is required here (${q.key}: ${q.prompt})`);
    try {
      return q.parse(text.trim());
    } catch (err) {
      // A URL may carry a password (redis://:pw@host): it is not echoed back.
      const shown = given !== undefined && /:\/\/[^/]*@/.test(given) ? '(a URL with credentials)' : JSON.stringify(given);
      if (err instanceof AnswerError) throw new InitUsageError(given !== undefined ? `--${q.flag} ${shown}: ${err.message}` : err.message);
      throw err;
    }
  }

  secret<T>(q: Question<T>): Promise<T> {
    this.secrets ??= process.stdin.isTTY ? new TerminalAnswers() : new LineAnswers();
    return this.secrets.secret(q);
  }

  close(): void {
    this.secrets?.close();
  }
}

function promptText(q: Question<unknown>): string {
  const shown = q.shown ?? q.default;
  return shown === undefined || shown === '' ? `${q.prompt}: ` : `${q.prompt} [${shown}]: `;
}

export class TerminalAnswers implements AnswerSource {
  readonly kind = 'ask';

  async answer<T>(q: Question<T>): Promise<T> {
    for (;;) {
      const text = (await ask(promptText(q))).trim();
      const r = this.take(q, text);
      if (r.ok) return r.value;
      process.stderr.write(`  ${r.error}\n`);
    }
  }

  async secret<T>(q: Question<T>): Promise<T> {
    for (;;) {
      const r = this.take(q, await promptHidden(promptText(q)));
      if (r.ok) return r.value;
      process.stderr.write(`  ${r.error}\n`);
    }
  }

  private take<T>(q: Question<T>, text: string): { ok: true; value: T } | { ok: false; error: string } {
    const t = text === '' ? q.default : text;
    if (t === undefined) return { ok: false, error: `${q.key}: an answer is needed` };
    try {
      return { ok: true, value: q.parse(t) };
    } catch (err) {
      if (err instanceof AnswerError) return { ok: false, error: err.message };
      throw err;
    }
  }

  close(): void {}
}

export class LineAnswers implements AnswerSource {
  readonly kind = 'ask';
  private lines: StdinLines | undefined;
  private count = 0;

  async answer<T>(q: Question<T>): Promise<T> {
    this.lines ??= new StdinLines();
    const line = await this.lines.next();
    this.count++;
    const text = line?.trim() ?? '';
    const t = text === '' ? q.default : text;
    if (t === undefined)
      throw new InitUsageError(`${q.key}: an answer is needed (${q.prompt}), but ${line === undefined ? 'stdin ended' : `line ${this.count} of stdin is empty`}`);
    try {
      return q.parse(t);
    } catch (err) {
      if (err instanceof AnswerError) throw new InitUsageError(`line ${this.count} of stdin: ${err.message}`);
      throw err;
    }
  }

  secret<T>(q: Question<T>): Promise<T> {
    return this.answer(q);
  }

  close(): void {
    this.lines?.close();
  }
}

// ---- checking an answer against the schema ---------------------------------------------

/** Validates a config holding just this answer; `key` is what the admin was asked about. */
function validIn(key: string, fragment: Record<string, unknown>): void {
  try {
    parseConfig(fragment);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const why = err.problems.map((p) => (p.path === undefined || p.path === key ? p.message : `${p.path} ${p.message}`));
    throw new AnswerError(`${key}: ${why.join('; ')}`);
  }
}

function oneOf<T extends string>(key: string, choices: readonly T[]): (text: string) => T {
  return (text) => {
    const t = text.toLowerCase();
    const hit = choices.find((c) => c === t);
    if (hit === undefined) throw new AnswerError(`${key}: must be ${choices.join(' or ')} (got ${JSON.stringify(text)})`);
    return hit;
  };
}

function yesNo(key: string): (text: string) => boolean {
  return (text) => {
    const t = text.toLowerCase();
    if (['y', 'yes', 'true', 'on'].includes(t)) return true;
    if (['n', 'no', 'false', 'off'].includes(t)) return false;
    throw new AnswerError(`${key}: answer yes or no (got ${JSON.stringify(text)})`);
  };
}

/** `host[:port]` or `[v6]:port`, separated by commas or spaces. */
export function parseSentinels(text: string): SentinelAddress[] {
  const items = text.split(/[\s,]+/).filter((s) => s !== '');
  if (items.length === 0) throw new AnswerError('metadata.sentinels: list at least one sentinel as host:port');
  return items.map((item, i) => {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(.*))?$/.exec(item);
    if (!m) throw new AnswerError(`metadata.sentinels[${i}]: ${JSON.stringify(item)} is not host:port`);
    const host = m[1] ?? m[2] ?? '';
    const port = m[3] === undefined ? 26379 : Number(m[3]);
    if (m[3] !== undefined && !/^\d+$/.test(m[3])) throw new AnswerError(`metadata.sentinels[${i}].port: ${JSON.stringify(m[3])} is not a port number`);
    return { host, port };
  });
}

const SECRET_HINT = 'give --write-secrets to write it into the file anyway';

// ---- the questions ---------------------------------------------------------------------

export const q = {
  serverName: (def: string): Question<string> => ({
    flag: 'server-name',
    key: 'serverName',
    prompt: 'Server name, as Macs show it',
    default: def,
    parse: (t) => (validIn('serverName', { serverName: t }), t),
  }),
  dataDir: (def: string): Question<string> => ({
    flag: 'data-dir',
    key: 'dataDir',
    prompt: 'Data directory (the cache, and the embedded store if chosen)',
    default: def,
    parse: (t) => (validIn('dataDir', { dataDir: t }), t),
  }),
  cacheDir: (under: string): Question<string | undefined> => ({
    flag: 'cache-dir',
    key: 'cache.dir',
    prompt: 'Cache directory (blocks not yet uploaded live here)',
    default: '',
    shown: under,
    parse: (t) => (t === '' ? undefined : (validIn('cache.dir', { cache: { dir: t } }), t)),
  }),
  cacheSize: (): Question<string> => ({
    flag: 'cache-size',
    key: 'cache.size',
    prompt: 'Cache size (disk space for cached blocks, e.g. 50GiB)',
    default: '10GiB',
    parse: (t) => (validIn('cache.size', { cache: { size: t } }), t),
  }),
  metadata: (): Question<'embedded' | 'redis'> => ({
    flag: 'metadata',
    key: 'metadata.backend',
    prompt: 'Metadata store: embedded (on this box) or redis',
    default: 'embedded',
    parse: oneOf('metadata.backend', ['embedded', 'redis'] as const),
  }),
  redisUrl: (allowSecret: boolean): Question<string> => ({
    flag: 'redis-url',
    key: 'metadata.url',
    prompt: 'Redis URL (redis://host:6379/0)',
    parse: (t) => checkRedisUrl(t, allowSecret),
  }),
  redisSentinels: (): Question<SentinelAddress[]> => ({
    flag: 'redis-sentinels',
    key: 'metadata.sentinels',
    prompt: 'Redis Sentinels (host:26379,host:26379)',
    parse: (t) => {
      const sentinels = parseSentinels(t);
      validIn('metadata.sentinels', { metadata: { backend: 'redis', sentinels } });
      return sentinels;
    },
  }),
  /** Asked instead of redisUrl/redisSentinels: one answer, told apart by its scheme. */
  redisTarget: (allowSecret: boolean): Question<{ url: string } | { sentinels: SentinelAddress[] }> => ({
    flag: 'redis-url',
    key: 'metadata.url',
    prompt: 'Redis URL (redis://host:6379/0), or Sentinels (host:26379,host:26379)',
    parse: (t) => (t.includes('://') ? { url: checkRedisUrl(t, allowSecret) } : { sentinels: q.redisSentinels().parse(t) }),
  }),
  redisMaster: (): Question<string> => ({
    flag: 'redis-master',
    key: 'metadata.sentinelName',
    prompt: 'Name of the master the Sentinels watch',
    default: 'mymaster',
    parse: (t) => (validIn('metadata.sentinelName', { metadata: { backend: 'redis', sentinels: [{ host: 'h' }], sentinelName: t } }), t),
  }),
  redisPassword: (): Question<string | undefined> => ({
    flag: 'redis-password',
    key: 'metadata.password',
    prompt: 'Redis password (empty: none)',
    default: '',
    parse: (t) => (t === '' ? undefined : t),
  }),
  objects: (): Question<'fs' | 's3'> => ({
    flag: 'objects',
    key: 'objects.backend',
    prompt: 'Object store: fs (a local directory) or s3 (AWS S3, MinIO, ...)',
    default: 'fs',
    parse: oneOf('objects.backend', ['fs', 's3'] as const),
  }),
  objectsDir: (under: string): Question<string | undefined> => ({
    flag: 'objects-dir',
    key: 'objects.path',
    prompt: 'Object directory',
    default: '',
    shown: under,
    parse: (t) => (t === '' ? undefined : (validIn('objects.path', { objects: { backend: 'fs', path: t } }), t)),
  }),
  s3Endpoint: (): Question<string | undefined> => ({
    flag: 's3-endpoint',
    key: 'objects.endpoint',
    prompt: 'S3 endpoint URL (empty for AWS; e.g. http://minio.lan:9000)',
    default: '',
    parse: (t) => (t === '' ? undefined : (validIn('objects.endpoint', { objects: { backend: 's3', bucket: 'b', endpoint: t } }), t)),
  }),
  s3Region: (): Question<string> => ({
    flag: 's3-region',
    key: 'objects.region',
    prompt: 'S3 region',
    default: 'us-east-1',
    parse: (t) => (validIn('objects.region', { objects: { backend: 's3', bucket: 'b', region: t } }), t),
  }),
  s3Bucket: (): Question<string> => ({
    flag: 's3-bucket',
    key: 'objects.bucket',
    prompt: 'S3 bucket (it must exist)',
    parse: (t) => (validIn('objects.bucket', { objects: { backend: 's3', bucket: t } }), t),
  }),
  s3Prefix: (): Question<string> => ({
    flag: 's3-prefix',
    key: 'objects.prefix',
    prompt: 'Key prefix in the bucket (empty: none)',
    default: '',
    parse: (t) => (validIn('objects.prefix', { objects: { backend: 's3', bucket: 'b', prefix: t } }), t),
  }),
  s3PathStyle: (def: boolean): Question<boolean> => ({
    flag: 's3-path-style',
    key: 'objects.forcePathStyle',
    prompt: 'Bucket name in the URL path, as MinIO wants (yes/no)',
    default: def ? 'yes' : 'no',
    parse: yesNo('objects.forcePathStyle'),
  }),
  s3AccessKeyId: (): Question<string> => ({
    flag: 's3-access-key-id',
    key: 'objects.accessKeyId',
    prompt: 'S3 access key ID',
    parse: (t) => t,
  }),
  s3SecretAccessKey: (): Question<string> => ({
    flag: 's3-secret-access-key',
    key: 'objects.secretAccessKey',
    prompt: 'S3 secret access key',
    parse: (t) => t,
  }),
  volumeName: (): Question<string> => ({
    flag: 'volume',
    key: 'volumes[0].name',
    prompt: 'Name of the first volume',
    default: 'TimeMachine',
    parse: (t) => (validIn('volumes[0].name', { volumes: [{ name: t }] }), t),
  }),
  sizeLimit: (): Question<string | null> => ({
    flag: 'size-limit',
    key: 'volumes[0].sizeLimit',
    prompt: 'Its size limit, the disk size the Mac sees (e.g. 2TB, or none)',
    default: 'none',
    parse: (t) => (/^(none|null|no|unlimited)$/i.test(t) ? null : (validIn('volumes[0].sizeLimit', { volumes: [{ name: 'V', sizeLimit: t }] }), t)),
  }),
  timeMachine: (): Question<boolean> => ({
    flag: 'time-machine',
    key: 'volumes[0].timeMachine',
    prompt: 'Offer it to Time Machine (yes/no)',
    default: 'yes',
    parse: yesNo('volumes[0].timeMachine'),
  }),
  bonjour: (): Question<boolean> => ({
    flag: 'bonjour',
    key: 'bonjour.enabled',
    prompt: 'Advertise it with Bonjour, so Macs find it (yes/no)',
    default: 'yes',
    parse: yesNo('bonjour.enabled'),
  }),
};

function checkRedisUrl(t: string, allowSecret: boolean): string {
  validIn('metadata.url', { metadata: { backend: 'redis', url: t } });
  if (!allowSecret && urlHoldsSecret(t))
    throw new AnswerError(`metadata.url: holds a password; leave it out and set AFPGW_METADATA__PASSWORD in the environment, or ${SECRET_HINT}`);
  return t;
}
