/**
 * `afp-gateway migrate --config NEW.yaml [--from DIR|OLD.yaml] [--force]`: copies a stopped
 * gateway's metadata from the embedded store into the Redis that NEW.yaml names, checks the
 * copy, and says what it moved. The objects in the bucket stay where they are: NEW.yaml
 * keeps the same `objects` section. The source is opened read-only, so going back to it
 * stays possible whatever happens.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import type { GatewayConfig, RedisMetadataConfig } from '../config/schema.js';
import { CONFIG_FILE_ENV } from '../config/load.js';
import { censusTotal, type VolumeCensus } from '../meta/dump.js';
import { EmbeddedMetaStore } from '../meta/embedded-store.js';
import { redisOptionsFromConfig } from '../meta/from-config.js';
import { migrateToRedis, MigrationIncompleteError, MigrationMismatchError, MigrationRefusedError, type MigrationListener, type MigrationSummary } from '../meta/migrate.js';
import { RedisMetaStore } from '../meta/redis-store.js';
import { volumeKey } from '../volume/volume-set.js';
import type { CliOptions } from './options.js';
import { formatCount, Progress } from './progress.js';
import { configSource } from './serve.js';

const USAGE = 'usage: afp-gateway migrate --config NEW.yaml [--from DIR|OLD.yaml] [--force]';

/** The file LMDB keeps its data in, inside the store's directory. */
const LMDB_FILE = 'data.mdb';

export async function migrate(opts: CliOptions): Promise<number> {
  const file = opts.config ?? process.env[CONFIG_FILE_ENV];
  if (opts.positionals.length > 0 || file === undefined) {
    process.stderr.write(`${USAGE}\n${file === undefined ? 'migrate needs the config of the Redis setup to copy into (--config)\n' : ''}`);
    return 2;
  }
  const config = await loadConfig(configSource(opts));
  if (config.metadata.backend !== 'redis') {
    throw new ConfigError([{ source: file, path: 'metadata.backend', message: 'must be "redis": migrate copies into the Redis this config names (the embedded store to copy from is --from)' }]);
  }
  const target = config.metadata;
  const from = await findSource(opts.from, config);

  const started = Date.now();
  process.stderr.write(`migrating the embedded store ${from} to Redis ${describeRedis(target)}\n`);
  const source = await EmbeddedMetaStore.open(from, { readOnly: true });
  try {
    const redis = await RedisMetaStore.connect(redisOptionsFromConfig(target));
    try {
      const summary = await migrateToRedis(source, redis, { force: opts.force, listener: progressOnStderr() });
      process.stdout.write(report(summary, (Date.now() - started) / 1000, config));
      return 0;
    } finally {
      await redis.close();
    }
  } catch (err) {
    if (err instanceof MigrationRefusedError) {
      process.stderr.write(`afp-gateway migrate: refused: ${err.message}\nnothing was written\n`);
      return 1;
    }
    if (err instanceof MigrationMismatchError || err instanceof MigrationIncompleteError) {
      process.stderr.write(`afp-gateway migrate: FAILED: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await source.close();
  }
}

/**
 * The embedded store's directory: --from names it, or the data directory holding it (as
 * `meta/`), or the config file of the embedded setup; without --from, where an embedded
 * store of this config would be (dataDir/meta).
 */
async function findSource(from: string | undefined, config: GatewayConfig): Promise<string> {
  if (from === undefined) {
    const dir = join(config.dataDir, 'meta');
    if (await isStore(dir)) return dir;
    throw new Error(`no embedded store at ${dir} (the default, dataDir/meta of this config): name it with --from DIR, or --from OLD.yaml for the config the gateway ran with`);
  }
  const path = resolve(from);
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--from ${from}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  });
  if (info.isDirectory()) {
    if (await isStore(path)) return path;
    if (await isStore(join(path, 'meta'))) return join(path, 'meta');
    throw new Error(`--from ${from}: no embedded store there (no ${LMDB_FILE} in it, nor in ${join(path, 'meta')})`);
  }
  // A config file, read as written: the AFPGW_* variables of this shell are meant for NEW.yaml.
  const old = await loadConfig({ file: path, env: {} });
  if (old.metadata.backend !== 'embedded') throw new Error(`--from ${from}: its metadata.backend is ${old.metadata.backend}, not embedded`);
  if (!(await isStore(old.metadata.path))) throw new Error(`--from ${from}: no embedded store at ${old.metadata.path}, where that config keeps it`);
  return old.metadata.path;
}

async function isStore(dir: string): Promise<boolean> {
  return stat(join(dir, LMDB_FILE)).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** A bar per step on a terminal; one line per step otherwise. */
function progressOnStderr(): MigrationListener {
  let bar: Progress | undefined;
  return {
    begin: (step, key, records) => {
      bar = new Progress(`${step} volume ${key}`, records, process.stderr, Date.now, (n) => formatCount(n));
    },
    advance: (records) => bar?.add(records),
    end: () => {
      bar?.finish();
      bar = undefined;
    },
  };
}

function report(s: MigrationSummary, seconds: number, config: GatewayConfig): string {
  const lines = [`migrated ${formatCount(s.records)} in ${seconds.toFixed(1)} s, and read every one back from Redis unchanged`];
  lines.push(`  server identity  ${s.identity ? 'copied: Macs and Time Machine will know the server' : 'none yet (no gateway ever started on the store): a new one is made at the first start'}`);
  lines.push(`  users            ${s.users}`);
  for (const v of s.volumes) lines.push(`  volume ${JSON.stringify(v.key)}  ${describeCensus(v.copied)}`);
  if (s.volumes.length === 0) lines.push('  volumes          none (the store held no namespace)');
  if (s.replaced > 0) lines.push(`  replaced         ${formatCount(s.replaced, 'key')} the target held before (--force)`);
  if (s.transient > 0) lines.push(`  left behind      ${formatCount(s.transient, 'key')} of transient state (sessions, open forks, locks, leases)`);
  if (s.orphans > 0) lines.push(`  left behind      ${formatCount(s.orphans)} that belong to no node (xattrs or blocks of removed files)`);
  // Volumes are matched by key: a name or key that changed on the way would leave data behind.
  const configured = new Map(config.volumes.map((v) => [volumeKey(v), v.name]));
  for (const v of s.volumes) {
    if (!configured.has(v.key)) lines.push(`note: volume ${JSON.stringify(v.key)} was copied but the config lists no volume with that key: add it (volumes[].key: ${v.key}) or it stays hidden`);
  }
  const copied = new Set(s.volumes.map((v) => v.key));
  for (const [key, name] of configured) {
    if (!copied.has(key)) lines.push(`note: the config's volume ${JSON.stringify(name)} (key ${key}) had no data in the embedded store: it starts empty`);
  }
  lines.push('next: start the gateway with this config; keep the embedded store until backups run (docs/ha.md, "Moving from the embedded store to Redis")');
  return lines.join('\n') + '\n';
}

function describeCensus(c: VolumeCensus): string {
  const parts = [
    formatCount(c.nodes, 'file or folder', 'files and folders'),
    formatCount(c.xattrs, 'xattr'),
    formatCount(c.blocks, 'block'),
    formatCount(c.kv, 'desktop record'),
    formatCount(c.gc, 'pending deletion'),
  ];
  return `${parts.join(', ')} (${formatCount(censusTotal(c))})`;
}

function describeRedis(cfg: RedisMetadataConfig): string {
  const where = cfg.sentinels ? `master ${cfg.sentinelName} via sentinels ${cfg.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')}` : redactedUrl(cfg.url ?? '');
  return `${where} (key prefix ${cfg.keyPrefix})`;
}

function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return '(url)';
  }
}
