/**
 * Writing a file so that readers see the old one or the whole new one, never a part: the text
 * goes to a temporary file beside it (mode, owner and a check applied there first), which is
 * then renamed over the target, or linked to it when an existing file must not be replaced
 * (link fails on an existing name, so no check-then-write race can clobber one).
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** Permission bits of the new file. */
  mode: number;
  /** Owner to give it (only root may); left as the writer when absent. */
  owner?: { uid: number; gid: number };
  /** Replace an existing file; otherwise an existing file fails with FileExistsError. */
  overwrite: boolean;
  /** Runs on the finished temporary file before it takes the target's name; throw to abandon. */
  check?: (tmpPath: string) => Promise<void>;
}

export class FileExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} exists`);
    this.name = 'FileExistsError';
  }
}

export async function writeFileAtomic(path: string, text: string, o: AtomicWriteOptions): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // Created 0600 and widened only at the end, so a secret is never readable by others, not
  // even for the moment between open and chmod.
  const fh = await open(tmp, 'wx', 0o600);
  let published = false;
  try {
    try {
      await fh.writeFile(text, 'utf8');
      if (o.owner) await fh.chown(o.owner.uid, o.owner.gid);
      await fh.chmod(o.mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await o.check?.(tmp);
    if (o.overwrite) await rename(tmp, path);
    else await linkNoClobber(tmp, path);
    published = true;
    await syncDir(dir);
  } finally {
    if (!published || !o.overwrite) await unlink(tmp).catch(() => {});
  }
}

async function linkNoClobber(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new FileExistsError(path);
    throw err;
  }
}

/** The rename itself reaches the disk only once the directory is synced. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the file itself is synced already.
  } finally {
    await fh.close();
  }
}
