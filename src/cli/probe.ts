import { AfpClient, type UamChoice } from '../client/afp-client.js';
import { resultName } from '../afp/result-codes.js';
import { SrvrFlag, type NetAddress } from '../afp/srvr-info.js';
import { AfpError } from '../afp/errors.js';
import type { CliOptions } from './options.js';
import { readPassword } from './prompt.js';

const UAM_CHOICES: readonly UamChoice[] = ['DHX2', 'DHCAST128', 'Cleartxt Passwrd', 'No User Authent'];

export function parseHostPort(s: string): { host: string; port: number } {
  const v6 = /^\[(.+)\](?::(\d+))?$/.exec(s);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : 548 };
  const i = s.lastIndexOf(':');
  if (i > 0 && s.indexOf(':') === i) return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
  return { host: s, port: 548 };
}

function flagNames(flags: number): string {
  return Object.entries(SrvrFlag).filter(([, m]) => flags & m).map(([n]) => n).join(', ');
}

function addr(a: NetAddress): string {
  if (a.kind === 'dns') return a.name;
  const host = a.kind === 'ipv6' ? `[${a.address}]` : a.address;
  return a.port !== undefined ? `${host}:${a.port}` : host;
}

/** Like afpgetstatus: what a server says about itself; with --user, logs in and lists volumes. */
export async function probe(opts: CliOptions): Promise<number> {
  const target = opts.positionals[0];
  if (!target) {
    process.stderr.write('usage: afp-gateway probe HOST[:PORT] [--user NAME] [--uam DHX2|DHCAST128|"Cleartxt Passwrd"|"No User Authent"]\n');
    return 2;
  }
  const { host, port } = parseHostPort(target);
  const info = await AfpClient.serverInfo(host, port);
  if (opts.json && !opts.user) {
    process.stdout.write(JSON.stringify({ ...info, signature: info.signature.toString('hex') }, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `Server name:    ${info.utf8ServerName}`,
    `Machine type:   ${info.machineType}`,
    `AFP versions:   ${info.afpVersions.join(', ')}`,
    `UAMs:           ${info.uams.join(', ')}`,
    `Flags:          0x${info.flags.toString(16).padStart(4, '0')} (${flagNames(info.flags)})`,
    `Signature:      ${info.signature.toString('hex')}`,
    `Addresses:      ${info.addresses.map(addr).join(', ') || '(none)'}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (opts.user === undefined && opts.uam === undefined) return 0;

  const uam = (opts.uam ?? (opts.user ? 'DHX2' : 'No User Authent')) as UamChoice;
  if (!UAM_CHOICES.includes(uam)) throw new Error(`--uam must be one of ${UAM_CHOICES.join(', ')}`);
  const password = uam === 'No User Authent' ? '' : await readPassword(`Password for ${opts.user ?? ''}@${host}: `, false);
  const client = await AfpClient.connect(host, port);
  try {
    await client.login({ uam, user: opts.user ?? '', password });
    const me = await client.getUserInfo();
    const parms = await client.getSrvrParms();
    process.stdout.write(`Logged in:      ${opts.user ?? 'guest'} with ${uam} (uid ${me.uid}, gid ${me.gid})\n`);
    process.stdout.write(`Volumes:        ${parms.volumes.map((v) => v.name + (v.hasPassword ? ' (password)' : '')).join(', ') || '(none)'}\n`);
    await client.logout();
    return 0;
  } catch (e) {
    if (e instanceof AfpError) {
      process.stderr.write(`login failed: ${resultName(e.code)}\n`);
      return 1;
    }
    throw e;
  } finally {
    await client.close();
  }
}
