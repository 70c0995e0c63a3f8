/**
 * Directories the gateway writes (the cache, the embedded metadata store, the fs object store):
 * that each exists or can be made, takes a file that is written, synced and removed, and, for
 * the cache, that its filesystem has room for it. Leaves nothing behind: a directory made for
 * the check is removed again (serve makes it when it starts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, stat, statfs, unlink } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fail, ok, warn, type CheckResult } from './check-result.js';
import { formatBytes } from './status-page.js';

const PROBE_BYTES = 4096;

export async function checkWritableDir(check: string, key: string, dir: string): Promise<CheckResult> {
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true });
  } catch (err) {
    return fail(check, `${key} ${dir}: cannot create it: ${await whyNot(dir, err)}`, { key, fix: fixFor(err, key), transient: false });
  }
  const probe = join(dir, `.afpgw-doctor-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(probe, 'wx');
    try {
      await fh.write(randomBytes(PROBE_BYTES));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await unlink(probe);
  } catch (err) {
    await unlink(probe).catch(() => undefined);
    return fail(check, `${key} ${dir}: cannot write a file in it: ${codeText(err)}`, { key, fix: fixFor(err, key), transient: false });
  } finally {
    // Only what this check made, which holds nothing now.
    if (created !== undefined) await rm(created, { recursive: true, force: true }).catch(() => undefined);
  }
  const notYet = created !== undefined ? ' (it does not exist yet; serve creates it)' : '';
  return ok(check, `${key} ${dir} is writable by ${whoAmI()}${notYet}`);
}

/**
 * Room for the cache: its size must fit on its filesystem, counting what the cache already
 * holds there. Short of cache.size the disk fills before the cache evicts (a warning: the cache
 * copes by erroring writes late); short of the dirty limit, writes that cannot be uploaded yet
 * would find the disk full before the limit holds them back.
 */
export async function checkCacheSpace(dir: string, size: number, dirtyLimit: number): Promise<CheckResult> {
  const existing = await nearestExisting(dir);
  let free: number;
  try {
    const fs = await statfs(existing);
    free = fs.bavail * fs.bsize;
  } catch (err) {
    return warn('cache-space', `cannot tell the free space at ${existing}: ${codeText(err)}`, { key: 'cache.dir' });
  }
  const held = existing === dir ? await diskUsage(dir) : 0;
  const room = free + held;
  const where = `${formatBytes(free)} free${held > 0 ? ` + ${formatBytes(held)} already in the cache` : ''} on the filesystem of cache.dir`;
  if (room >= size) return ok('cache-space', `${where}; cache.size is ${formatBytes(size)}`);
  if (room >= dirtyLimit)
    return warn('cache-space', `${where}, less than cache.size ${formatBytes(size)}: the disk would fill before the cache reaches its size`, {
      key: 'cache.size',
      fix: `lower cache.size to at most ${formatBytes(room)} (leave some room for the rest of the system), or free space`,
    });
  return fail('cache-space', `${where}, less than cache.dirtyLimit ${formatBytes(dirtyLimit)}: writes not yet uploaded would fill the disk`, {
    key: 'cache.dirtyLimit',
    fix: `free space, or move cache.dir to a larger filesystem, or lower cache.dirtyLimit and cache.size below ${formatBytes(room)}`,
    transient: false,
  });
}

/** Bytes allocated to the files under dir (sparse files count what they use). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(dir, { recursive: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const s = await stat(join(dir, e)).catch(() => undefined);
    if (s?.isFile()) total += s.blocks * 512;
  }
  return total;
}

async function nearestExisting(path: string): Promise<string> {
  for (let p = path; ; p = dirname(p)) {
    if (await stat(p).then(() => true, () => false)) return p;
    if (dirname(p) === p) return p;
  }
}

/** ENOTDIR names which part of the path is a file. */
async function whyNot(dir: string, err: unknown): Promise<string> {
  if (code(err) === 'ENOTDIR' || code(err) === 'EEXIST') {
    for (let p = dir; dirname(p) !== p; p = dirname(p)) {
      const s = await stat(p).catch(() => undefined);
      if (s && !s.isDirectory()) return `${p} is a file, not a directory`;
    }
  }
  return codeText(err);
}

function fixFor(err: unknown, key: string): string {
  switch (code(err)) {
    case 'EACCES':
    case 'EPERM':
      return `make it writable by the user the gateway runs as (${whoAmI()} now; the systemd unit's is afp-gateway), or choose another ${key}`;
    case 'EROFS':
      return `it is on a read-only filesystem: choose another ${key} (under the systemd unit only /var/lib/afp-gateway is writable)`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `free space on its filesystem, or choose another ${key}`;
    default:
      return `point ${key} at a directory the gateway may create and write`;
  }
}

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function codeText(err: unknown): string {
  const c = code(err);
  const text: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only filesystem',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    ENOTDIR: 'a part of the path is not a directory',
  };
  return c !== undefined ? (text[c] ?? c) : err instanceof Error ? err.message : String(err);
}
