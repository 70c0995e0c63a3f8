/**
 * Objects as files under a directory: the embedded default, and what most unit tests use.
 *
 * A put writes a temporary file, fsyncs it, renames it into place and fsyncs the directories
 * whose entries changed, so after a crash a key holds either nothing or the whole object,
 * never a torn one. See fs-layout.ts for how keys map to paths.
 */
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { bucketOf, keyInBounds, pathParts, subtreeMayMatch, unescapeName, type Bounds } from './fs-layout.js';
import { InvalidObjectKeyError, ObjectNotFoundError, ObjectStoreError, ObjectStoreUnavailableError } from './errors.js';
import { checkKey, checkLimit, checkPrefix, checkRange, compareKeys } from './keys.js';
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore } from './object-store.js';

/** Temporary files live here, on the same file system, so rename is atomic. */
const TMP_DIR = '.tmp';
/** A temporary file this old at open is a leftover of a crash; younger ones may be in use. */
const STALE_TMP_MS = 60 * 60 * 1000;
/** A concurrent delete may remove a directory between our mkdir and rename; try again. */
const RENAME_ATTEMPTS = 5;
/** Bound on the memory of directories known to be on disk; past it we fsync a few again. */
const DURABLE_DIRS_CAP = 100_000;

// Conditions that may clear up (space freed, descriptors closed, a disk replaced): retry later.
const TRANSIENT_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY']);

export class FsObjectStore implements ObjectStore {
  private closed = false;
  /**
   * Directories whose own entry, and every ancestor's, is known to be on disk. A put into one
   * of them needs to fsync only the directory itself. A directory is forgotten before it is
   * removed, so a put never trusts the entry of a directory that was removed and made again.
   */
  private readonly durableDirs = new Set<string>();

  private constructor(readonly root: string) {}

  static async open(dir: string): Promise<FsObjectStore> {
    // Absolute and normalised: walks up from an object's directory stop when they reach it.
    const root = resolve(dir);
    const store = new FsObjectStore(root);
    try {
      await mkdir(join(root, TMP_DIR), { recursive: true });
      await fsyncDir(root);
      await fsyncDir(dirname(root));
      await store.sweepTemporaries();
    } catch (err) {
      throw fsError(`cannot open the object directory ${root}`, err);
    }
    store.durableDirs.add(root);
    return store;
  }

  async put(key: string, body: Buffer): Promise<void> {
    this.checkOpen();
    checkKey(key);
    const target = this.pathOf(key);
    const dir = dirname(target);
    const tmp = join(this.root, TMP_DIR, `${randomBytes(12).toString('hex')}.tmp`);
    try {
      await writeDurably(tmp, body);
      await this.renameInto(tmp, dir, target);
      await this.makeDurable(dir);
    } catch (err) {
      await unlink(tmp).catch(ignoreCode('ENOENT'));
      throw fsError(`put ${key}`, err, key);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.checkOpen();
    checkKey(key);
    if (range) checkRange(range);
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (codeOf(err) === 'ENOENT') throw new ObjectNotFoundError(key, { cause: err });
      throw fsError(`get ${key}`, err, key);
    }
    try {
      if (!range) return await fh.readFile();
      const { size } = await fh.stat();
      const start = Math.min(range.offset, size);
      const length = Math.min(range.length, size - start);
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, start + done);
        if (bytesRead === 0) break; // cannot happen for an immutable object; do not spin if it does
        done += bytesRead;
      }
      return done === length ? buf : buf.subarray(0, done);
    } catch (err) {
      throw fsError(`get ${key}`, err, key);
    } finally {
      await fh.close();
    }
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    this.checkOpen();
    checkKey(key);
    try {
      const st = await stat(this.pathOf(key));
      return st.isFile() ? { size: st.size } : undefined;
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return undefined;
      throw fsError(`head ${key}`, err, key);
    }
  }

  async delete(key: string): Promise<void> {
    this.checkOpen();
    checkKey(key);
    const target = this.pathOf(key);
    try {
      await unlink(target);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return;
      throw fsError(`delete ${key}`, err, key);
    }
    try {
      // The GC forgets a key once delete returns; a crash must not bring the object back.
      await fsyncDir(await this.pruneEmpty(dirname(target)));
    } catch (err) {
      // A concurrent delete in the same directory pruned it first (and synced its parent).
      if (codeOf(err) === 'ENOENT') return;
      throw fsError(`delete ${key}`, err, key);
    }
  }

  list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectInfo> {
    // Checked here rather than in the generator, so a bad argument throws at the call.
    this.checkOpen();
    checkPrefix(prefix);
    checkLimit(opts.limit);
    return this.listing({ prefix, after: opts.after }, opts.limit ?? Infinity);
  }

  private async *listing(bounds: Bounds, limit: number): AsyncGenerator<ObjectInfo> {
    if (limit === 0) return;
    let count = 0;
    for await (const info of this.walk(this.root, '', bounds)) {
      yield info;
      if (++count >= limit) return;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  // ---- internals ------------------------------------------------------------------------

  private pathOf(key: string): string {
    return join(this.root, ...pathParts(key));
  }

  private checkOpen(): void {
    if (this.closed) throw new ObjectStoreError('the object store is closed');
  }

  private async renameInto(tmp: string, dir: string, target: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await mkdir(dir, { recursive: true });
      try {
        await rename(tmp, target);
        return;
      } catch (err) {
        if (codeOf(err) !== 'ENOENT' || attempt >= RENAME_ATTEMPTS) throw err;
      }
    }
  }

  /** fsyncs dir and each ancestor not yet known to be on disk, bottom up. */
  private async makeDurable(dir: string): Promise<void> {
    // The new entry is in dir itself, so dir is always synced.
    await fsyncDir(dir);
    const chain: string[] = [];
    for (let d = dir; !this.durableDirs.has(d) && d !== this.root; d = dirname(d)) chain.push(d);
    for (const d of chain) await fsyncDir(dirname(d));
    if (this.durableDirs.size + chain.length > DURABLE_DIRS_CAP) {
      this.durableDirs.clear();
      this.durableDirs.add(this.root);
    }
    for (const d of chain) this.durableDirs.add(d);
  }

  /** Removes empty directories from dir up; returns the lowest directory left standing. */
  private async pruneEmpty(dir: string): Promise<string> {
    for (let d = dir; d !== this.root; d = dirname(d)) {
      // Forget first: a put that renames into a new directory of the same name after our
      // rmdir must not find it here and skip the fsync of its entry.
      this.durableDirs.delete(d);
      try {
        await rmdir(d);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') return d;
        throw err;
      }
    }
    return this.root;
  }

  private async *walk(dir: string, above: string, bounds: Bounds): AsyncGenerator<ObjectInfo> {
    const buckets = sortByKey(
      (await readdirIfExists(dir))
        .filter((d) => d.isDirectory())
        .map((d) => ({ dirent: d, decoded: unescapeName(d.name) }))
        .filter((b): b is { dirent: Dirent; decoded: string } => b.decoded !== undefined)
        // Only a name that is itself a bucket name; anything else is not ours.
        .filter((b) => bucketOf(b.decoded) === b.decoded)
        .map((b) => ({ name: b.dirent.name, full: above + b.decoded }))
        .filter((b) => subtreeMayMatch(b.full, bounds)),
    );
    for (const bucket of buckets) {
      const bucketDir = join(dir, bucket.name);
      const entries = sortByKey(
        (await readdirIfExists(bucketDir)).flatMap((d) => {
          const decoded = unescapeName(d.name);
          if (decoded === undefined || bucketOf(decoded) !== bucket.full.slice(above.length)) return [];
          const isLevel = decoded.endsWith('/');
          if (isLevel ? !d.isDirectory() : !d.isFile()) return [];
          const full = above + decoded;
          if (isLevel ? !subtreeMayMatch(full, bounds) : !keyInBounds(full, bounds)) return [];
          return [{ name: d.name, full, isLevel }];
        }),
      );
      for (const entry of entries) {
        const path = join(bucketDir, entry.name);
        if (entry.isLevel) {
          yield* this.walk(path, entry.full, bounds);
          continue;
        }
        let size: number;
        let lastModified: number;
        try {
          ({ size, mtimeMs: lastModified } = await stat(path));
        } catch (err) {
          // Deleted while we walked: a listing is not a snapshot, so leave it out.
          if (codeOf(err) === 'ENOENT') continue;
          throw fsError(`list ${relative(this.root, path).split(sep).join('/')}`, err);
        }
        yield { key: entry.full, size, lastModified: Math.floor(lastModified) };
      }
    }
  }

  private async sweepTemporaries(): Promise<void> {
    const dir = join(this.root, TMP_DIR);
    const now = Date.now();
    for (const name of await readdir(dir)) {
      const p = join(dir, name);
      const st = await stat(p).catch(ignoreCode('ENOENT'));
      if (st?.isFile() && now - st.mtimeMs > STALE_TMP_MS) await unlink(p).catch(ignoreCode('ENOENT'));
    }
  }
}

async function writeDurably(path: string, body: Buffer): Promise<void> {
  // 'wx': a random name that exists already is not ours to overwrite.
  const fh = await open(path, 'wx', 0o644);
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readdirIfExists(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    // A concurrent delete pruned it after its parent was read.
    if (codeOf(err) === 'ENOENT') return [];
    throw fsError(`list ${dir}`, err);
  }
}

function sortByKey<T extends { full: string }>(items: T[]): T[] {
  return items.sort((a, b) => compareKeys(a.full, b.full));
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function ignoreCode(code: string): (err: unknown) => undefined {
  return (err) => {
    if (codeOf(err) === code) return undefined;
    throw err;
  };
}

function fsError(what: string, err: unknown, key?: string): ObjectStoreError {
  if (err instanceof ObjectStoreError) return err;
  const code = codeOf(err);
  if (code === 'ENAMETOOLONG' && key !== undefined) return new InvalidObjectKeyError(key, 'too long for the file system');
  const message = `${what}: ${(err as Error)?.message ?? String(err)}`;
  if (code !== undefined && TRANSIENT_CODES.has(code)) return new ObjectStoreUnavailableError(message, { cause: err });
  return new ObjectStoreError(message, { cause: err });
}
