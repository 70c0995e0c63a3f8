import { ALL_UAMS } from '../auth/uams.js';
import { AfpCommand } from './commands.js';
import type { AfpServerContext } from './context.js';
import { addressFor, encodeServerInfo, SrvrFlag, type NetAddress } from './srvr-info.js';
import { AFP_VERSIONS } from './versions.js';

const ALWAYS = SrvrFlag.ServerSignature | SrvrFlag.TCP | SrvrFlag.DirectoryServices | SrvrFlag.UTF8ServerName | SrvrFlag.ExtendedSleep;

/** Flags that promise a command: set only when the dispatch table has it. */
const PROMISES: readonly [number, number][] = [
  [SrvrFlag.CopyFile, AfpCommand.FPCopyFile],
  [SrvrFlag.ServerMessages, AfpCommand.FPGetSrvrMsg],
  [SrvrFlag.Reconnect, AfpCommand.FPDisconnectOldSession],
];

export function serverFlags(implemented: (code: number) => boolean): number {
  let flags = ALWAYS;
  for (const [flag, cmd] of PROMISES) if (implemented(cmd)) flags |= flag;
  return flags;
}

/**
 * FPGetSrvrInfo / DSIGetStatus. The address is the one this connection arrived on: the
 * Mac reconnects to what we advertise, so it must be reachable, never 0.0.0.0.
 */
export function statusBlock(ctx: AfpServerContext, localAddress: string, localPort: number): Buffer {
  const addresses: NetAddress[] = [];
  const here = addressFor(localAddress, localPort);
  if (here) addresses.push(here);
  // Keep the advertised UAM order ours, whatever order the config listed them in.
  const uams = ALL_UAMS.filter((u) => ctx.uams.includes(u)).map((u) => u.name);
  return encodeServerInfo({
    serverName: ctx.serverName,
    machineType: ctx.machineType,
    afpVersions: [...AFP_VERSIONS],
    uams,
    flags: ctx.flags,
    signature: ctx.signature,
    addresses,
    directoryNames: [],
    utf8ServerName: ctx.serverName,
  });
}
