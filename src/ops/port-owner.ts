/**
 * Which process listens on a TCP port, read from Linux's /proc: the listening socket's inode
 * in /proc/net/tcp{,6}, then the process holding a descriptor to it. Best effort: another
 * user's processes are only visible to root, and other systems have no /proc; the answer is
 * then undefined and the caller says what usually holds the port instead.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface PortOwner {
  pid: number;
  /** The command line, shortened. */
  command: string;
}

const TCP_LISTEN = '0A';
const MAX_COMMAND = 120;

export async function findPortOwner(port: number): Promise<PortOwner | undefined> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (local === undefined || f[3] !== TCP_LISTEN || f[9] === undefined || f[9] === '0') continue;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return { pid: Number(pid), command: await commandOf(pid) };
    }
  }
  return undefined;
}

async function commandOf(pid: string): Promise<string> {
  try {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((s) => s !== '').join(' ');
    if (cmd !== '') return cmd.length > MAX_COMMAND ? `${cmd.slice(0, MAX_COMMAND - 1)}…` : cmd;
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return '?';
  }
}
