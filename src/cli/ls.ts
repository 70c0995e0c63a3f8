import { AfpClient, type UamChoice } from '../client/afp-client.js';
import { ROOT } from '../client/afp-volume.js';
import { AfpError } from '../afp/errors.js';
import { resultName } from '../afp/result-codes.js';
import type { CliOptions } from './options.js';
import { parseHostPort } from './probe.js';
import { readPassword } from './prompt.js';

const USAGE = 'usage: afp-gateway ls HOST[:PORT] VOLUME[/PATH] [--user NAME] [--uam UAM] [--json]';

function mode(m: number): string {
  const kind = (m & 0o170000) === 0o040000 ? 'd' : '-';
  const rwx = (b: number): string => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${b & 1 ? 'x' : '-'}`;
  return kind + rwx(m >> 6) + rwx(m >> 3) + rwx(m) + (m & 0o1000 ? 't' : '');
}

/** Lists a directory of a volume over AFP, like `ls -l`: helps operators see what a Mac sees. */
export async function ls(opts: CliOptions): Promise<number> {
  const [target, where] = opts.positionals;
  if (!target || !where) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  const { host, port } = parseHostPort(target);
  const [volume, ...path] = where.split('/').filter((p) => p.length > 0);
  const uam = (opts.uam ?? (opts.user ? 'DHX2' : 'No User Authent')) as UamChoice;
  const password = uam === 'No User Authent' ? '' : await readPassword(`Password for ${opts.user ?? ''}@${host}: `, false);
  const client = await AfpClient.connect(host, port);
  try {
    await client.login({ uam, user: opts.user ?? '', password });
    const vol = await client.openVolume(volume!);
    const entries = await vol.enumerateAll(ROOT, path);
    if (opts.json) {
      process.stdout.write(JSON.stringify(entries.map((e) => ({ name: e.params.utf8Name?.normalize('NFC'), dir: e.isDir, id: e.params.nodeId, size: e.params.dataLength ?? null, modified: e.params.modifiedAt }))) + '\n');
    } else {
      for (const e of entries) {
        const p = e.params;
        const size = e.isDir ? `${p.offspringCount} items` : String(p.dataLength);
        const when = new Date(p.modifiedAt ?? 0).toISOString().replace('T', ' ').slice(0, 19);
        process.stdout.write(`${mode(p.unixPrivs?.mode ?? 0)} ${String(p.nodeId).padStart(8)} ${size.padStart(12)} ${when} ${p.utf8Name?.normalize('NFC')}${e.isDir ? '/' : ''}\n`);
      }
      process.stdout.write(`${entries.length} entries\n`);
    }
    await vol.close();
    await client.logout();
    return 0;
  } catch (e) {
    if (e instanceof AfpError) {
      process.stderr.write(`afp-gateway ls: ${resultName(e.code)}\n`);
      return 1;
    }
    throw e;
  } finally {
    await client.close();
  }
}
