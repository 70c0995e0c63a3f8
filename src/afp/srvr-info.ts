import { isIPv4, isIPv6 } from 'node:net';
import { Reader } from '../wire/reader.js';
import { utf8Truncated } from '../wire/utf8.js';
import { Writer } from '../wire/writer.js';
import { decodeMacRoman, encodeMacRomanLossy } from './mac-roman.js';

/** FPGetSrvrInfo flag bits. */
export const SrvrFlag = {
  CopyFile: 0x0001,
  ChangePassword: 0x0002,
  NoSavePassword: 0x0004,
  ServerMessages: 0x0008,
  ServerSignature: 0x0010,
  TCP: 0x0020,
  ServerNotifications: 0x0040,
  Reconnect: 0x0080,
  DirectoryServices: 0x0100,
  UTF8ServerName: 0x0200,
  UUIDs: 0x0400,
  ExtendedSleep: 0x0800,
  SuperClient: 0x8000,
} as const;

/**
 * The four trailing offset slots are always written and their flags always set: clients
 * read the slots conditionally on the flags, in order, so anything else desynchronises.
 */
export const ALWAYS_FLAGS = SrvrFlag.ServerSignature | SrvrFlag.TCP | SrvrFlag.DirectoryServices | SrvrFlag.UTF8ServerName;

export type NetAddress =
  | { kind: 'ipv4'; address: string; port?: number }
  | { kind: 'ipv6'; address: string; port?: number }
  | { kind: 'dns'; name: string };

export interface ServerInfo {
  serverName: string;
  machineType: string;
  afpVersions: string[];
  uams: string[];
  flags: number;
  signature: Buffer;
  addresses: NetAddress[];
  directoryNames: string[];
  utf8ServerName: string;
}

/** Netatalk's status buffer is 1400 bytes; staying under it keeps every client's parser happy. */
export const SRVR_INFO_MAX = 1400;

export function encodeServerInfo(info: ServerInfo): Buffer {
  const w = new Writer(512);
  w.u16(0).u16(0).u16(0).u16(0); // machine type, versions, UAMs, icon (0 = none)
  w.u16(info.flags | ALWAYS_FLAGS);
  w.pstring(encodeMacRomanLossy(info.serverName).subarray(0, 31));
  w.alignEven();
  const slots = w.length;
  w.u16(0).u16(0).u16(0).u16(0); // signature, addresses, directory names, UTF-8 name

  w.patchU16(0, w.length);
  w.pstring(Buffer.from(info.machineType, 'latin1').subarray(0, 16));
  w.patchU16(2, w.length);
  w.u8(info.afpVersions.length);
  for (const v of info.afpVersions) w.pstring(Buffer.from(v, 'latin1'));
  w.patchU16(4, w.length);
  w.u8(info.uams.length);
  for (const u of info.uams) w.pstring(Buffer.from(u, 'latin1'));

  w.patchU16(slots, w.length);
  w.bytes(info.signature.subarray(0, 16));
  w.patchU16(slots + 2, w.length);
  w.u8(info.addresses.length);
  for (const a of info.addresses) encodeAddress(w, a);
  w.patchU16(slots + 4, w.length);
  w.u8(info.directoryNames.length);
  for (const d of info.directoryNames) w.pstring(Buffer.from(d, 'utf8'));
  w.patchU16(slots + 6, w.length);
  const utf8 = utf8Truncated(info.utf8ServerName.normalize('NFD'), 255);
  w.u16(utf8.length).bytes(utf8);
  const out = w.finish();
  if (out.length > SRVR_INFO_MAX) throw new RangeError(`server info block is ${out.length} bytes; limit ${SRVR_INFO_MAX}`);
  return out;
}

function encodeAddress(w: Writer, a: NetAddress): void {
  switch (a.kind) {
    case 'ipv4': {
      const octets = a.address.split('.').map(Number);
      const withPort = a.port !== undefined && a.port !== 548;
      w.u8(withPort ? 8 : 6).u8(withPort ? 2 : 1);
      for (const o of octets) w.u8(o);
      if (withPort) w.u16(a.port!);
      return;
    }
    case 'ipv6': {
      const withPort = a.port !== undefined && a.port !== 548;
      w.u8(withPort ? 20 : 18).u8(withPort ? 7 : 6).bytes(ipv6Bytes(a.address));
      if (withPort) w.u16(a.port!);
      return;
    }
    case 'dns': {
      const name = Buffer.from(a.name, 'utf8').subarray(0, 253);
      w.u8(name.length + 2).u8(4).bytes(name);
    }
  }
}

export function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const parse = (s: string | undefined): number[] => (s ? s.split(':').flatMap((g) => (g.includes('.') ? v4Groups(g) : [parseInt(g, 16)])) : []);
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g & 0xffff, i * 2));
  return b;
}

function utf8At(r: Reader): string {
  return r.bytes(r.u16()).toString('utf8');
}

function v4Groups(s: string): number[] {
  const o = s.split('.').map(Number);
  return [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
}

export function addressFor(host: string, port: number): NetAddress | undefined {
  const v4mapped = host.startsWith('::ffff:') && isIPv4(host.slice(7)) ? host.slice(7) : host;
  if (isIPv4(v4mapped)) return v4mapped === '0.0.0.0' ? undefined : { kind: 'ipv4', address: v4mapped, port };
  if (isIPv6(host)) return host === '::' ? undefined : { kind: 'ipv6', address: host, port };
  return host ? { kind: 'dns', name: host } : undefined;
}

/** Parses a status block the way Wireshark's dissector does (trailing slots by flag). */
export function decodeServerInfo(block: Buffer): ServerInfo {
  const r = new Reader(block);
  const machineOff = r.u16();
  const versionsOff = r.u16();
  const uamsOff = r.u16();
  r.u16(); // icon
  const flags = r.u16();
  const serverName = decodeMacRoman(r.pstring());
  r.alignEven();
  const sigOff = flags & SrvrFlag.ServerSignature ? r.u16() : 0;
  const addrOff = flags & SrvrFlag.TCP ? r.u16() : 0;
  const dirOff = flags & SrvrFlag.DirectoryServices ? r.u16() : 0;
  const utf8Off = flags & SrvrFlag.UTF8ServerName ? r.u16() : 0;
  const at = (off: number): Reader => new Reader(block, off);
  const list = (off: number): string[] => {
    const lr = at(off);
    const n = lr.u8();
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(lr.pstring().toString('latin1'));
    return out;
  };
  const addresses: NetAddress[] = [];
  if (addrOff) {
    const ar = at(addrOff);
    const n = ar.u8();
    for (let i = 0; i < n; i++) {
      const len = ar.u8();
      const body = new Reader(ar.bytes(len - 1));
      const type = body.u8();
      if (type === 1 || type === 2) {
        const address = [body.u8(), body.u8(), body.u8(), body.u8()].join('.');
        addresses.push(type === 2 ? { kind: 'ipv4', address, port: body.u16() } : { kind: 'ipv4', address });
      } else if (type === 6 || type === 7) {
        const raw = body.bytes(16);
        const groups: string[] = [];
        for (let g = 0; g < 8; g++) groups.push(raw.readUInt16BE(g * 2).toString(16));
        const address = groups.join(':');
        addresses.push(type === 7 ? { kind: 'ipv6', address, port: body.u16() } : { kind: 'ipv6', address });
      } else if (type === 4) {
        addresses.push({ kind: 'dns', name: body.rest().toString('utf8') });
      }
    }
  }
  return {
    serverName,
    machineType: at(machineOff).pstring().toString('latin1'),
    afpVersions: list(versionsOff),
    uams: list(uamsOff),
    flags,
    signature: sigOff ? Buffer.from(at(sigOff).bytes(16)) : Buffer.alloc(0),
    addresses,
    directoryNames: dirOff ? list(dirOff) : [],
    utf8ServerName: utf8Off ? utf8At(at(utf8Off)) : serverName,
  };
}
