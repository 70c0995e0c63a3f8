/**
 * The configuration schema. Every object is strict so a misspelt key is an error rather than
 * a silently ignored setting (a typo in `dirtyLimit` must not leave a box with the default).
 *
 * Paths are left relative here: only the loader knows the config file's directory, so it turns
 * the parsed value into a GatewayConfig with absolute paths (see load.ts).
 */
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import * as z from 'zod';
import { DEFAULT_MODEL, hostLabel } from '../discovery/records.js';
import { GiB, KiB, MiB, formatSize, parseSize } from './size.js';

export const UAMS = ['DHX2', 'DHCAST128', 'Cleartxt Passwrd', 'No User Authent'] as const;
export type Uam = (typeof UAMS)[number];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const CHECKSUM_MODES = ['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as const;
export type ChecksumMode = (typeof CHECKSUM_MODES)[number];

/** The machine's short host name, cut to the 31 characters a server name may have. */
export function defaultServerName(): string {
  const short = [...(hostname().split('.')[0] ?? '')].slice(0, 31).join('');
  return short.length > 0 ? short : 'afp-gateway';
}

// ---- building blocks -------------------------------------------------------------------

// Not `n & (n - 1)`: bitwise operators truncate to 32 bits and would pass e.g. 2^32 + 2^16.
const isPowerOfTwo = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;

const charCount = (s: string): number => [...s].length;
const CONTROL = /[\u0000-\u001f\u007f]/;

function int(min: number, max: number, why?: string) {
  const msg = `must be an integer between ${min} and ${max}${why ? ` (${why})` : ''}`;
  return z.number().int(msg).min(min, msg).max(max, msg);
}

function atLeast(min: number) {
  const msg = `must be an integer of at least ${min}`;
  return z.number().int(msg).min(min, msg);
}

/** 0 means "any free port", which tests rely on. */
const port = int(0, 65535);

const nonEmpty = z.string().min(1, 'must not be empty');

/** Names the Mac shows; counted in characters, not UTF-16 units, because that is what Finder shows. */
function displayName(max: number) {
  return z.string().superRefine((s, ctx) => {
    const n = charCount(s);
    if (n < 1 || n > max) ctx.addIssue({ code: 'custom', message: `must be 1 to ${max} characters (got ${n})` });
    else if (CONTROL.test(s)) ctx.addIssue({ code: 'custom', message: 'must not contain control characters' });
  });
}

function urlWithProtocol(protocols: readonly string[]) {
  const msg = `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`;
  return z.string().refine((s) => {
    try {
      return protocols.includes(new URL(s).protocol);
    } catch {
      return false;
    }
  }, msg);
}

/** A byte count, or a string such as "4MiB"; always bytes after parsing. */
export const sizeSchema = z
  .union([z.number(), z.string()], { error: 'must be a byte count or a size such as "4MiB"' })
  .transform((v, ctx) => {
    try {
      return parseSize(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const positiveSize = sizeSchema.refine((n) => n > 0, 'must be greater than 0');

const MIN_BLOCK = 64 * KiB;
const MAX_BLOCK = 64 * MiB;
const MIN_QUANTUM = 32000; // the DSI floor; Macs assume at least this much per request

// ---- sections --------------------------------------------------------------------------

const listenSchema = z
  .strictObject({
    host: nonEmpty.default('0.0.0.0'),
    port: port.default(548),
    // A non-root try-out cannot bind 548; it falls back here instead of failing to start.
    fallbackPort: port.nullable().default(10548),
  })
  .prefault({});

export const volumeSchema = z.strictObject({
  // 27 characters is the AFP volume name limit; ':' is the classic Mac path separator.
  name: displayName(27).refine((s) => !s.includes(':'), 'must not contain ":"'),
  timeMachine: z.boolean().default(true),
  sizeLimit: sizeSchema
    .refine((n) => n > 0, 'must be greater than 0 (leave it out or use null for no limit)')
    .nullable()
    .default(null),
  users: z.array(nonEmpty).default(() => []),
  blockSize: sizeSchema
    .refine(
      (n) => isPowerOfTwo(n) && n >= MIN_BLOCK && n <= MAX_BLOCK,
      `must be a power of two between ${formatSize(MIN_BLOCK)} and ${formatSize(MAX_BLOCK)}`,
    )
    .default(4 * MiB),
  // The AFP volume password field is 8 bytes on the wire; a longer one could never match.
  password: z
    .string()
    .refine((s) => {
      const n = Buffer.byteLength(s, 'utf8');
      return n >= 1 && n <= 8;
    }, 'must be 1 to 8 bytes (AFP volume passwords are 8 bytes)')
    .optional(),
  allowGuest: z.boolean().default(false),
  // HFS+ semantics (case-insensitive, case-preserving) unless set; Macs expect that.
  caseSensitive: z.boolean().default(false),
  // The identity of the volume's data in the metadata store. Defaults to the name; set it
  // before renaming a volume, to the old name, so the data stays with it.
  key: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 letters, digits, ".", "_" or "-"')
    .optional(),
});

const volumesSchema = z
  .array(volumeSchema)
  .min(1, 'must list at least one volume')
  .superRefine((vols, ctx) => {
    // The Mac compares volume names case-insensitively, so two names that differ only in
    // case would be indistinguishable in the Finder.
    const seen = new Map<string, number>();
    vols.forEach((v, i) => {
      const key = v.name.normalize('NFC').toLowerCase();
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `duplicates the name of volumes[${first}] (names are compared ignoring case)`,
        });
    });
  })
  .prefault(() => [{ name: 'TimeMachine', timeMachine: true }]);

export const embeddedMetadataSchema = z.strictObject({
  backend: z.literal('embedded'),
  path: nonEmpty.optional(),
  // periodic: commits do not wait for the disk; a sync every syncIntervalMs and at every
  // FPSyncDir/FPSyncFork. commit: every commit waits for the disk (slower, ~1,400 changes/s).
  sync: z.enum(['periodic', 'commit']).default('periodic'),
  syncIntervalMs: int(10, 60_000).default(1000),
});

export const redisMetadataSchema = z
  .strictObject({
    backend: z.literal('redis'),
    url: urlWithProtocol(['redis:', 'rediss:']).optional(),
    sentinels: z
      .array(z.strictObject({ host: nonEmpty, port: int(1, 65535).default(26379) }))
      .min(1, 'must list at least one sentinel')
      .optional(),
    sentinelName: nonEmpty.default('mymaster'),
    password: z.string().optional(),
    // Braces would start a hash tag and break the one-slot-per-volume key layout.
    keyPrefix: nonEmpty.refine((s) => !/[{}]/.test(s), 'must not contain "{" or "}"').default('afpgw'),
    waitReplicas: int(0, 64).default(0),
    // WAIT with a timeout of 0 blocks forever, which would hang FPSyncFork.
    waitTimeoutMs: int(1, 600_000, '0 would make WAIT block forever').default(1000),
    // A resent script's reply is kept 120 s (src/meta/redis-scripts.ts); a call must give up before.
    failoverWaitSeconds: int(1, 90).default(30),
  })
  .superRefine((v, ctx) => {
    if ((v.url === undefined) === (v.sentinels === undefined))
      ctx.addIssue({ code: 'custom', message: 'exactly one of url or sentinels must be given' });
  });

const metadataSchema = z
  .discriminatedUnion('backend', [embeddedMetadataSchema, redisMetadataSchema])
  .prefault(() => ({ backend: 'embedded' as const }));

// Replaced block objects wait this long before deletion, so a reader on the other node that
// looked a block up just before it was replaced still finds its object.
const gcGraceSeconds = atLeast(0).default(900);
const gcIntervalSeconds = int(1, 86_400).default(60);

export const fsObjectsSchema = z.strictObject({
  backend: z.literal('fs'),
  path: nonEmpty.optional(),
  gcGraceSeconds,
  gcIntervalSeconds,
});

const checksumMode = z.enum(CHECKSUM_MODES).default('WHEN_SUPPORTED');

export const s3ObjectsSchema = z
  .strictObject({
    backend: z.literal('s3'),
    endpoint: urlWithProtocol(['http:', 'https:']).optional(),
    region: nonEmpty.default('us-east-1'),
    bucket: nonEmpty.refine((s) => !s.includes('/'), 'must not contain "/"'),
    // A leading slash would give every key an empty first segment.
    prefix: z.string().refine((s) => !s.startsWith('/'), 'must not start with "/"').default(''),
    forcePathStyle: z.boolean().default(false),
    requestChecksumCalculation: checksumMode,
    responseChecksumValidation: checksumMode,
    accessKeyId: nonEmpty.optional(),
    secretAccessKey: nonEmpty.optional(),
    maxAttempts: int(1, 100).default(5),
    timeoutMs: atLeast(1).default(30_000),
    gcGraceSeconds,
    gcIntervalSeconds,
  })
  .superRefine((v, ctx) => {
    // One without the other would silently fall back to the SDK's credential chain.
    if ((v.accessKeyId === undefined) !== (v.secretAccessKey === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [v.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey'],
        message: 'accessKeyId and secretAccessKey must be given together',
      });
  });

const objectsSchema = z
  .discriminatedUnion('backend', [fsObjectsSchema, s3ObjectsSchema])
  .prefault(() => ({ backend: 'fs' as const }));

const DEFAULT_DIRTY_LIMIT = 2 * GiB;

const cacheSchema = z
  .strictObject({
    dir: nonEmpty.optional(),
    size: positiveSize.default(10 * GiB),
    // Left out, it is 2 GiB or the whole cache when the cache is smaller, so shrinking
    // `size` alone does not turn into an error about a key the user never wrote.
    dirtyLimit: positiveSize.optional(),
    uploadConcurrency: int(1, 64).default(8),
    // A block not written to its end is uploaded this long after its last write (blocks
    // written to the end go at once), so small rewrites of one block cost one upload.
    uploadDelayMs: int(0, 600_000).default(2000),
    // FPSyncFork/FPSyncDir answer an error when the stores cannot take the bytes this fast.
    syncTimeoutSeconds: int(1, 3600).default(60),
    // SIGTERM uploads what the cache holds for at most this long before the process exits;
    // the rest waits in the journal for the next start. Keep systemd's TimeoutStopSec above it.
    shutdownDrainSeconds: int(0, 3600).default(30),
  })
  .superRefine((c, ctx) => {
    if (c.dirtyLimit !== undefined && c.dirtyLimit > c.size)
      ctx.addIssue({
        code: 'custom',
        path: ['dirtyLimit'],
        message: `must not exceed size (${formatSize(c.dirtyLimit)} > ${formatSize(c.size)})`,
      });
  })
  .transform((c) => ({ ...c, dirtyLimit: c.dirtyLimit ?? Math.min(DEFAULT_DIRTY_LIMIT, c.size) }))
  .prefault({});

const authSchema = z
  .strictObject({
    uams: z
      .array(z.enum(UAMS))
      .min(1, 'must list at least one UAM')
      .superRefine((list, ctx) => {
        list.forEach((u, i) => {
          if (list.indexOf(u) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `lists "${u}" twice` });
        });
      })
      .default((): Uam[] => ['DHX2', 'DHCAST128']),
    loginThrottle: z
      .strictObject({
        freeFailures: atLeast(0).default(3),
        maxDelayMs: atLeast(0).default(10_000),
      })
      .prefault({}),
    scrypt: z
      .strictObject({
        // Bounded so a typo cannot make every login take minutes or gigabytes.
        N: z
          .number()
          .refine((n) => isPowerOfTwo(n) && n >= 1024 && n <= 2 ** 20, `must be a power of two between 1024 and ${2 ** 20}`)
          .default(32768),
        r: int(1, 32).default(8),
        p: int(1, 16).default(1),
      })
      .prefault({}),
  })
  .prefault({});

const dsiSchema = z
  .strictObject({
    requestQuantum: sizeSchema
      .refine(
        (n) => n >= MIN_QUANTUM && n <= 16 * MiB,
        `must be between ${MIN_QUANTUM} bytes and ${formatSize(16 * MiB)}`,
      )
      .default(MiB),
    replayCacheSize: int(32, 65535).default(128),
    tickleSeconds: int(1, 3600).default(30),
    idleTimeoutSeconds: atLeast(1).default(120),
    maxSessions: atLeast(1).default(256),
    maxConnectionsPerAddress: atLeast(1).default(32),
    disconnectedSessionSeconds: atLeast(0).default(86_400),
    // A sleeping Mac (FPZzzzz) sends nothing; its session is kept this long (netatalk: 10 h).
    sleepHours: atLeast(0).default(10),
  })
  .superRefine((d, ctx) => {
    // The Mac tickles every tickleSeconds; an idle timeout at or below that drops live sessions.
    if (d.idleTimeoutSeconds <= d.tickleSeconds)
      ctx.addIssue({
        code: 'custom',
        path: ['idleTimeoutSeconds'],
        message: `must be greater than tickleSeconds (${d.tickleSeconds})`,
      });
  })
  .prefault({});

const opsSchema = z
  .strictObject({
    // Loopback by default: metrics reveal user and volume names.
    metricsListen: z
      .strictObject({ host: nonEmpty.default('127.0.0.1'), port: port.default(9548) })
      .nullable()
      .prefault({}),
    // The control socket of `afp-gateway sessions`, `cache flush` and `gc`: a Unix socket, so
    // only who may open the file (the service user, root) can end sessions. Default:
    // <dataDir>/control.sock; null disables.
    controlSocket: nonEmpty.nullable().optional(),
  })
  .prefault({});

/** `<short host name>.local`, made DNS-safe (letters, digits, '-'). */
export function defaultBonjourHostName(): string {
  return `${hostLabel(hostname())}.local`;
}

const bonjourSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    // Addresses of the interfaces to advertise on; null = every non-internal interface.
    interfaces: z
      .array(z.string().refine((s) => isIP(s.split('%')[0] ?? '') !== 0, 'must be an IP address of this machine'))
      .min(1, 'must list at least one address (or be null for all interfaces)')
      .nullable()
      .default(null),
    // _device-info model: only picks the Finder icon.
    model: z
      .string()
      .refine((s) => {
        const n = Buffer.byteLength(s, 'utf8');
        return n >= 1 && n <= 200 && !CONTROL.test(s);
      }, 'must be 1 to 200 bytes without control characters')
      .default(DEFAULT_MODEL),
    hostName: z
      .string()
      .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.local$/, 'must be a host name such as office.local (letters, digits, "-", ending in .local)')
      .default(defaultBonjourHostName),
  })
  .prefault({});

const logSchema = z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({});

export const configSchema = z
  .strictObject({
    serverName: displayName(31).default(defaultServerName),
    dataDir: nonEmpty.default('./afp-data'),
    listen: listenSchema,
    volumes: volumesSchema,
    metadata: metadataSchema,
    objects: objectsSchema,
    cache: cacheSchema,
    auth: authSchema,
    dsi: dsiSchema,
    ops: opsSchema,
    bonjour: bonjourSchema,
    log: logSchema,
  })
  .superRefine((c, ctx) => {
    // A block is made dirty whole; with a dirty limit below one block, writes would wait forever.
    const largest = Math.max(...c.volumes.map((v) => v.blockSize));
    if (c.cache.dirtyLimit < largest)
      ctx.addIssue({
        code: 'custom',
        path: ['cache', 'dirtyLimit'],
        message: `must be at least the largest volume blockSize (${formatSize(c.cache.dirtyLimit)} < ${formatSize(largest)})`,
      });
  });

// ---- types -----------------------------------------------------------------------------

/** What a config file (or the merged file + env + CLI) may contain. */
export type ConfigInput = z.input<typeof configSchema>;
/** The schema's output: defaults applied, sizes in bytes, paths still as written. */
export type ParsedConfig = z.output<typeof configSchema>;

export type ListenConfig = ParsedConfig['listen'];
export type VolumeConfig = z.output<typeof volumeSchema>;
export type EmbeddedMetadataConfig = Omit<z.output<typeof embeddedMetadataSchema>, 'path'> & { path: string };
export type RedisMetadataConfig = z.output<typeof redisMetadataSchema>;
export type MetadataConfig = EmbeddedMetadataConfig | RedisMetadataConfig;
export type FsObjectsConfig = Omit<z.output<typeof fsObjectsSchema>, 'path'> & { path: string };
export type S3ObjectsConfig = z.output<typeof s3ObjectsSchema>;
export type ObjectsConfig = FsObjectsConfig | S3ObjectsConfig;
export type CacheConfig = Omit<ParsedConfig['cache'], 'dir'> & { dir: string };
export type AuthConfig = ParsedConfig['auth'];
export type DsiConfig = ParsedConfig['dsi'];
export type OpsConfig = ParsedConfig['ops'];
export type LogConfig = ParsedConfig['log'];
export type BonjourConfig = ParsedConfig['bonjour'];

/** The resolved configuration: every default filled in, sizes in bytes, every path absolute. */
export interface GatewayConfig extends Omit<ParsedConfig, 'metadata' | 'objects' | 'cache' | 'ops'> {
  ops: Omit<OpsConfig, 'controlSocket'> & { controlSocket: string | null };
  metadata: MetadataConfig;
  objects: ObjectsConfig;
  cache: CacheConfig;
}
