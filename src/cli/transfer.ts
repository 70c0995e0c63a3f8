/**
 * `afp-gateway put` and `get`: copy one file to or from a volume over AFP, the way a Mac
 * would (FPCreateFile, FPOpenFork, FPWriteExt/FPReadExt, FPSyncFork). Operators use them to
 * check a gateway end to end, and to measure it: requests are quantum-sized and several are
 * kept in flight, so the numbers show the server, not the round trip.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AfpError } from '../afp/errors.js';
import { resultName } from '../afp/result-codes.js';
import { AfpClient, type UamChoice } from '../client/afp-client.js';
import { DEFAULT_PIPELINE, ForkMode, pipelined } from '../client/afp-fork.js';
import { ROOT, type AfpVolume } from '../client/afp-volume.js';
import type { CliOptions } from './options.js';
import { parseHostPort } from './probe.js';
import { Progress } from './progress.js';
import { readPassword } from './prompt.js';

const PUT_USAGE = 'usage: afp-gateway put HOST[:PORT] LOCAL-FILE VOLUME[/PATH] [--user NAME] [--uam UAM]';
const GET_USAGE = 'usage: afp-gateway get HOST[:PORT] VOLUME/PATH LOCAL-FILE [--user NAME] [--uam UAM]';
/** FPGetForkParms/FPOpenFork bit: the 64-bit data fork length. */
const EXT_DATA_FORK_LEN = 0x0800;

/** `VOLUME/dir/name`: the volume, the path in it, and whether it ended in '/' (a directory). */
interface RemotePath {
  volume: string;
  path: string[];
  isDir: boolean;
}

function parseRemote(s: string): RemotePath | null {
  const [volume, ...path] = s.split('/').filter((p) => p.length > 0);
  if (!volume) return null;
  return { volume, path, isDir: path.length === 0 || s.endsWith('/') };
}

class UsageError extends Error {}

/** Logs in, opens the volume, runs `work`, and leaves the server as a Mac would: close, log out. */
async function withVolume(opts: CliOptions, target: string, volume: string, work: (v: AfpVolume) => Promise<void>): Promise<void> {
  const { host, port } = parseHostPort(target);
  const uam = (opts.uam ?? (opts.user ? 'DHX2' : 'No User Authent')) as UamChoice;
  const password = uam === 'No User Authent' ? '' : await readPassword(`Password for ${opts.user ?? ''}@${host}: `, false);
  const client = await AfpClient.connect(host, port);
  try {
    await client.login({ uam, user: opts.user ?? '', password });
    const v = await client.openVolume(volume);
    await work(v);
    await v.close();
    await client.logout();
  } finally {
    await client.close();
  }
}

/** Runs a transfer command: usage errors exit 2, AFP errors 1 with the result code's name. */
async function command(name: string, usage: string, what: () => string, run: () => Promise<void>): Promise<number> {
  try {
    await run();
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message ? e.message + '\n' : ''}${usage}\n`);
      return 2;
    }
    if (e instanceof AfpError) {
      process.stderr.write(`afp-gateway ${name}: ${what()}: ${resultName(e.code)}\n`);
      return 1;
    }
    throw e;
  }
}

/**
 * Copies a local file to a volume. The remote file is hard-created (an existing one is
 * emptied, as the Finder replaces a file), written in quantum-sized pieces with
 * DEFAULT_PIPELINE writes in flight, then synced: when `put` says done, the bytes are in
 * the object store and committed.
 */
export async function put(opts: CliOptions): Promise<number> {
  const [target, local, where] = opts.positionals;
  const remote = where ? parseRemote(where) : null;
  let shown = where ?? '';
  return command('put', PUT_USAGE, () => shown, async () => {
    if (!target || !local || !remote || opts.positionals.length > 3) throw new UsageError('');
    const st = await stat(local);
    if (!st.isFile()) throw new UsageError(`${local} is not a regular file`);
    const path = remote.isDir ? [...remote.path, basename(local)] : remote.path;
    shown = [remote.volume, ...path].join('/');
    await withVolume(opts, target, remote.volume, async (v) => {
      await v.createFile(ROOT, path, true);
      // DenyWrite: nobody else writes into the file while it is being replaced.
      const fork = await v.openFork(ROOT, path, { mode: ForkMode.Write | ForkMode.DenyWrite, bitmap: 0 });
      const progress = new Progress(`put ${shown}`, st.size);
      const fh = await open(local, 'r');
      try {
        const q = fork.quantum;
        await pipelined(Math.ceil(st.size / q), DEFAULT_PIPELINE, async (i) => {
          const at = i * q;
          const len = Math.min(q, st.size - at);
          const buf = Buffer.allocUnsafe(len);
          const { bytesRead } = await fh.read(buf, 0, len, at);
          if (bytesRead !== len) throw new Error(`${local} changed while it was being sent`);
          const end = await fork.writeExt(at, buf);
          if (end !== at + len) throw new Error(`the server wrote ${end - at} of ${len} bytes at ${at}`);
          progress.add(len);
        });
        await fork.sync();
      } catch (e) {
        progress.abort();
        throw e;
      } finally {
        await fh.close();
      }
      await fork.close();
      progress.finish();
    });
  });
}

/**
 * Copies a file from a volume. Bytes go to a hidden temporary file next to the target,
 * which is synced and renamed into place only when complete: a failed `get` never leaves a
 * truncated file under the real name. A local directory as target keeps the remote name.
 */
export async function get(opts: CliOptions): Promise<number> {
  const [target, where, local] = opts.positionals;
  const remote = where ? parseRemote(where) : null;
  return command('get', GET_USAGE, () => where ?? '', async () => {
    if (!target || !local || !remote || remote.path.length === 0 || opts.positionals.length > 3) throw new UsageError('');
    const localIsDir = (await stat(local).catch(() => null))?.isDirectory() ?? false;
    const dest = localIsDir ? join(local, remote.path[remote.path.length - 1]!) : local;
    await withVolume(opts, target, remote.volume, async (v) => {
      const fork = await v.openFork(ROOT, remote.path, { mode: ForkMode.Read, bitmap: EXT_DATA_FORK_LEN });
      const size = fork.params.dataLength ?? 0;
      const tmp = join(dirname(dest), `.${basename(dest)}.afp-part-${randomBytes(4).toString('hex')}`);
      const progress = new Progress(`get ${where}`, size);
      const fh = await open(tmp, 'wx');
      let fileOpen = true;
      try {
        const q = fork.quantum;
        await pipelined(Math.ceil(size / q), DEFAULT_PIPELINE, async (i) => {
          const at = i * q;
          const len = Math.min(q, size - at);
          const r = await fork.readExt(at, len);
          if (r.data.length !== len) throw new Error(`${where} shrank while it was being read`);
          await fh.write(r.data, 0, len, at);
          progress.add(len);
        });
        await fh.sync();
        await fh.close();
        fileOpen = false;
        await rename(tmp, dest);
      } catch (e) {
        progress.abort();
        if (fileOpen) await fh.close().catch(() => undefined);
        await rm(tmp, { force: true });
        throw e;
      }
      await fork.close();
      progress.finish();
    });
  });
}
