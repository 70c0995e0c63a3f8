/**
 * The starter config `afp-gateway init` writes: the few settings an admin answered, each under
 * a one-line comment saying what it is for, and the main optional keys commented out with the
 * value in effect, so the file doubles as a map of what can be changed. Pure: the command
 * (src/cli/init.ts) asks the questions and writes the file.
 *
 * The full reference with every key is example.ts / docs/configuration.md.
 */
import { stringify } from 'yaml';
import type { GatewayConfig } from './schema.js';
import { formatSize } from './size.js';

export interface SentinelAddress {
  host: string;
  port: number;
}

export type StarterMetadata =
  | { backend: 'embedded' }
  | { backend: 'redis'; url: string; password?: string }
  | { backend: 'redis'; sentinels: SentinelAddress[]; sentinelName: string; password?: string };

export type StarterObjects =
  | { backend: 'fs'; path?: string }
  | {
      backend: 's3';
      endpoint?: string;
      region: string;
      bucket: string;
      prefix: string;
      forcePathStyle: boolean;
      credentials?: { accessKeyId: string; secretAccessKey: string };
    };

/** What init asked. Sizes stay as the admin typed them ("2TB" reads better than 2000000000000). */
export interface StarterAnswers {
  serverName: string;
  dataDir: string;
  cacheDir?: string;
  cacheSize: string;
  metadata: StarterMetadata;
  objects: StarterObjects;
  volume: { name: string; sizeLimit: string | null; timeMachine: boolean };
  bonjour: boolean;
}

/** The settings init writes, as the loader will read them. */
export function starterConfig(a: StarterAnswers): Record<string, unknown> {
  const m = a.metadata;
  const o = a.objects;
  return {
    serverName: a.serverName,
    dataDir: a.dataDir,
    volumes: [{ name: a.volume.name, timeMachine: a.volume.timeMachine, sizeLimit: a.volume.sizeLimit }],
    metadata:
      m.backend === 'embedded'
        ? { backend: 'embedded' }
        : {
            backend: 'redis',
            ...('url' in m ? { url: m.url } : { sentinels: m.sentinels, sentinelName: m.sentinelName }),
            ...(m.password !== undefined ? { password: m.password } : {}),
          },
    objects:
      o.backend === 'fs'
        ? { backend: 'fs', ...(o.path !== undefined ? { path: o.path } : {}) }
        : {
            backend: 's3',
            ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
            region: o.region,
            bucket: o.bucket,
            prefix: o.prefix,
            forcePathStyle: o.forcePathStyle,
            ...(o.credentials ?? {}),
          },
    cache: { ...(a.cacheDir !== undefined ? { dir: a.cacheDir } : {}), size: a.cacheSize },
    bonjour: { enabled: a.bonjour },
  };
}

/** The file would hold a password or secret key (and so must be readable by its owner only). */
export function starterHoldsSecret(a: StarterAnswers): boolean {
  return (a.metadata.backend === 'redis' && (a.metadata.password !== undefined || ('url' in a.metadata && urlHoldsSecret(a.metadata.url)))) || (a.objects.backend === 's3' && a.objects.credentials !== undefined);
}

/** redis://user:pass@host, or redis://secret@host, which some clients take as a password. */
export function urlHoldsSecret(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== '' || u.username !== '';
  } catch {
    return false;
  }
}

/** YAML text of one scalar, quoted only where YAML needs it; never folded. */
function scalar(v: string | number | boolean | null): string {
  return stringify(v, { lineWidth: 0 }).trimEnd();
}

/** A size in bytes the way a person writes it in this file: 2GiB, 4MiB. */
function size(bytes: number): string {
  return formatSize(bytes).replace(' ', '');
}

/**
 * Lines of the file: `set` writes a live key under its comment, `off` a commented-out one.
 * Between `openOff` and `closeOff` a whole section is commented out with `# ` at the start of
 * each line, so removing that prefix from its lines yields valid, indented YAML.
 */
class Text {
  readonly lines: string[] = [];
  private offSection = false;

  blank(): void {
    this.lines.push('');
  }

  note(indent: number, text: string): void {
    this.push(indent, text === '' ? '#' : `# ${text}`);
  }

  set(indent: number, why: string, key: string, value?: string): void {
    this.note(indent, why);
    this.push(indent, pair(key, value));
  }

  off(indent: number, key: string, value?: string, why?: string): void {
    if (why !== undefined) this.note(indent, why);
    this.push(indent, this.offSection ? pair(key, value) : `# ${pair(key, value)}`);
  }

  /** A section left at its defaults: `why`, then the section commented out whole. */
  openOff(why: string, key: string): void {
    this.note(0, why);
    this.lines.push(`# ${key}:`);
    this.offSection = true;
  }

  closeOff(): void {
    this.offSection = false;
  }

  private push(indent: number, text: string): void {
    this.lines.push(this.offSection ? `# ${' '.repeat(indent)}${text}` : `${' '.repeat(indent)}${text}`);
  }
}

function pair(key: string, value: string | undefined): string {
  return `${key}:${value === undefined ? '' : ` ${value}`}`;
}

/**
 * The file's text. `effective` is the answers as the loader resolves them (defaults filled,
 * paths absolute): the commented-out keys show those values, so uncommenting one changes
 * nothing until it is edited.
 */
export function renderStarterConfig(a: StarterAnswers, effective: GatewayConfig, writtenBy: string): string {
  const t = new Text();
  t.note(0, `afp-gateway configuration, written by ${writtenBy}.`);
  t.note(0, '');
  t.note(0, 'docs/configuration.md describes every key. Keys commented out show the value in effect;');
  t.note(0, 'uncomment one to change it. Sizes: a byte count or a number with KiB, MiB, GiB, TiB');
  t.note(0, '(powers of 1024) or KB, MB, GB, TB (powers of 1000). Any key can be overridden from the');
  t.note(0, 'environment, e.g. AFPGW_LISTEN__PORT=10548: the place for passwords and keys.');
  if (starterHoldsSecret(a)) t.note(0, 'This file holds secrets: keep it readable by the service user only (mode 0600).');
  t.blank();

  t.set(0, 'Name shown in the Finder sidebar and in Time Machine (1 to 31 characters).', 'serverName', scalar(a.serverName));
  t.blank();
  t.set(0, 'Where the cache, the embedded metadata store and the local object store live unless set below.', 'dataDir', scalar(a.dataDir));
  t.blank();

  t.openOff('The AFP listener. Port 548 needs root or CAP_NET_BIND_SERVICE (the systemd unit grants it).', 'listen');
  t.off(2, 'host', scalar(effective.listen.host));
  t.off(2, 'port', String(effective.listen.port));
  t.off(2, 'fallbackPort', scalar(effective.listen.fallbackPort), 'Taken when port cannot be bound; null makes that an error instead.');
  t.closeOff();
  t.blank();

  const vol = effective.volumes[0]!;
  t.set(0, 'Shares offered to Macs; add more entries of the same form.', 'volumes');
  t.set(2, 'Name shown on the Mac (1 to 27 characters, no ":"); the data is kept under this name.', '- name', scalar(a.volume.name));
  t.set(4, 'Advertise it as a Time Machine destination (the _adisk Bonjour record).', 'timeMachine', String(a.volume.timeMachine));
  t.set(4, 'Disk size the Mac sees; Time Machine deletes old backups to stay below it. null: no limit.', 'sizeLimit', a.volume.sizeLimit === null ? 'null' : scalar(a.volume.sizeLimit));
  t.off(4, 'users', '[]', 'Users allowed on it (afp-gateway user add NAME); an empty list allows every user.');
  t.off(4, 'blockSize', size(vol.blockSize), 'Size of the objects file data is stored in; fixed once data is written.');
  t.blank();

  renderMetadata(t, a.metadata, effective);
  t.blank();
  renderObjects(t, a.objects, effective);
  t.blank();

  t.set(0, 'The local write-back cache: writes land here and go to the object store in the background.', 'cache');
  if (a.cacheDir !== undefined) t.set(2, 'Blocks not yet uploaded live here: keep it on a local disk that survives a reboot.', 'dir', scalar(a.cacheDir));
  else t.off(2, 'dir', scalar(effective.cache.dir), 'Blocks not yet uploaded live here: keep it on a local disk that survives a reboot.');
  t.set(2, 'Disk space for cached blocks, uploaded or not.', 'size', scalar(a.cacheSize));
  t.off(2, 'dirtyLimit', size(effective.cache.dirtyLimit), 'Writes wait while this much awaits upload (at most size; docs/operations.md, "Sizing the cache").');
  t.off(2, 'uploadConcurrency', String(effective.cache.uploadConcurrency), 'Uploads to the object store at once.');
  t.off(2, 'syncTimeoutSeconds', String(effective.cache.syncTimeoutSeconds), 'A sync the Mac asks for fails rather than wait longer than this for the stores.');
  t.blank();

  t.openOff('Login methods offered; Time Machine logs in with DHX2.', 'auth');
  t.off(2, 'uams', `[${effective.auth.uams.map((u) => scalar(u)).join(', ')}]`);
  t.closeOff();
  t.blank();

  t.openOff('Status page, Prometheus metrics and health checks over HTTP, on loopback; null turns them off.', 'ops');
  t.off(2, 'metricsListen');
  const ml = effective.ops.metricsListen;
  t.off(4, 'host', scalar(ml?.host ?? '127.0.0.1'));
  t.off(4, 'port', String(ml?.port ?? 9548));
  t.closeOff();
  t.blank();

  t.set(0, 'Bonjour (mDNS): how Macs find the gateway in the Finder and in Time Machine.', 'bonjour');
  t.set(2, 'Advertise the server and its Time Machine volumes on the local network.', 'enabled', String(a.bonjour));
  const ifs = effective.bonjour.interfaces;
  t.off(2, 'interfaces', ifs === null ? 'null' : `[${ifs.map((i) => scalar(i)).join(', ')}]`, 'Addresses of the interfaces to advertise on, e.g. [192.168.1.10]; null: every IPv4 interface.');
  t.off(2, 'hostName', scalar(effective.bonjour.hostName), 'Host name the records point at.');
  t.blank();

  t.openOff('Log level (trace, debug, info, warn, error, fatal); logs are JSON lines on stdout.', 'log');
  t.off(2, 'level', effective.log.level);
  t.closeOff();
  return t.lines.join('\n') + '\n';
}

function renderMetadata(t: Text, m: StarterMetadata, effective: GatewayConfig): void {
  t.set(0, 'Where names, CNIDs, block maps, locks and sessions are kept.', 'metadata');
  const e = effective.metadata;
  if (m.backend === 'embedded' || e.backend === 'embedded') {
    t.set(2, 'Either embedded (an LMDB store on this box, for one gateway) or redis (a Redis server, for a pair).', 'backend', 'embedded');
    if (e.backend === 'embedded') {
      t.off(2, 'path', scalar(e.path), 'The LMDB files.');
      t.off(2, 'sync', e.sync, 'Either periodic (to disk every syncIntervalMs and at each sync a Mac asks for) or commit (at every change).');
      t.off(2, 'syncIntervalMs', String(e.syncIntervalMs));
    }
    return;
  }
  t.set(2, 'A Redis server (back it up: docs/operations.md); embedded would be an LMDB store on this box.', 'backend', 'redis');
  if ('url' in m) {
    t.set(2, 'The Redis server.', 'url', scalar(m.url));
  } else {
    t.set(2, 'The Sentinels that watch the Redis master; the gateway follows their failovers.', 'sentinels', `[${m.sentinels.map((s) => `{ host: ${scalar(s.host)}, port: ${s.port} }`).join(', ')}]`);
    t.set(2, 'The master\'s name in the sentinels\' "sentinel monitor" line.', 'sentinelName', scalar(m.sentinelName));
  }
  if (m.password !== undefined) t.set(2, 'The Redis password (AFPGW_METADATA__PASSWORD would keep it out of this file).', 'password', scalar(m.password));
  else t.note(2, 'The Redis password: set AFPGW_METADATA__PASSWORD in the environment (the systemd unit reads /etc/afp-gateway/env).');
  t.off(2, 'keyPrefix', scalar(e.keyPrefix), 'Prefix of every key, so several installations can share one Redis.');
  t.off(2, 'waitReplicas', String(e.waitReplicas), 'Replicas that must confirm each sync (Redis WAIT) before the Mac is told it is done.');
  t.off(2, 'failoverWaitSeconds', String(e.failoverWaitSeconds), 'How long a request waits for Redis to come back (a restart, a failover) before it fails.');
}

function renderObjects(t: Text, o: StarterObjects, effective: GatewayConfig): void {
  t.set(0, 'Where file data goes, as block objects (4 MiB by default).', 'objects');
  const e = effective.objects;
  if (o.backend === 'fs' || e.backend === 'fs') {
    t.set(2, 'Either fs (a local directory) or s3 (AWS S3, MinIO or another S3-compatible store).', 'backend', 'fs');
    if (o.backend === 'fs' && o.path !== undefined) t.set(2, 'Directory of the objects.', 'path', scalar(o.path));
    else if (e.backend === 'fs') t.off(2, 'path', scalar(e.path), 'Directory of the objects.');
  } else {
    t.set(2, 'Either s3 (AWS S3, MinIO or another S3-compatible store) or fs (a local directory).', 'backend', 's3');
    if (o.endpoint !== undefined) t.set(2, 'The S3 API endpoint (left out for AWS).', 'endpoint', scalar(o.endpoint));
    else t.off(2, 'endpoint', 'https://minio.example:9000', 'The S3 API endpoint: left out for AWS, set for MinIO and other stores.');
    t.set(2, 'The bucket\'s region.', 'region', scalar(o.region));
    t.set(2, 'The bucket; it must exist (afp-gateway doctor writes, reads and deletes a test object).', 'bucket', scalar(o.bucket));
    t.set(2, 'Prefix of every object key in the bucket ("" for none).', 'prefix', scalar(o.prefix));
    t.set(2, 'Whether the bucket goes in the URL path (MinIO, most non-AWS stores) rather than the host name (AWS).', 'forcePathStyle', String(o.forcePathStyle));
    if (o.credentials !== undefined) {
      t.set(2, 'Access key (AFPGW_OBJECTS__ACCESS_KEY_ID would keep it out of this file).', 'accessKeyId', scalar(o.credentials.accessKeyId));
      t.set(2, 'Its secret (AFPGW_OBJECTS__SECRET_ACCESS_KEY would keep it out of this file).', 'secretAccessKey', scalar(o.credentials.secretAccessKey));
    } else {
      t.note(2, 'Credentials: AFPGW_OBJECTS__ACCESS_KEY_ID and AFPGW_OBJECTS__SECRET_ACCESS_KEY in the environment');
      t.note(2, '(the systemd unit reads /etc/afp-gateway/env), or else the AWS SDK\'s default chain (e.g. an instance role).');
    }
    t.off(2, 'requestChecksumCalculation', e.requestChecksumCalculation, 'WHEN_REQUIRED for stores that reject the SDK\'s newer default checksums (both keys).');
    t.off(2, 'responseChecksumValidation', e.responseChecksumValidation);
    t.off(2, 'maxAttempts', String(e.maxAttempts), 'Tries per S3 request, each of at most timeoutMs; a block upload that still fails is queued again.');
    t.off(2, 'timeoutMs', String(e.timeoutMs));
  }
  t.off(2, 'gcGraceSeconds', String(e.gcGraceSeconds), 'Replaced objects are deleted this long after nothing refers to them.');
}
