/**
 * The DNS-SD records a Mac needs to find the gateway (AFP-FACTS 9.2): `_afpovertcp._tcp` for
 * the Finder's sidebar and Connect to Server, `_adisk._tcp` so Time Machine lists the shares
 * as backup disks, `_device-info._tcp` for the icon, and the host's A/AAAA records that the
 * SRV records point at. Pure functions: the advertiser decides where and when to send them.
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Answer } from 'dns-packet';

export const AFP_SERVICE = '_afpovertcp._tcp.local';
export const ADISK_SERVICE = '_adisk._tcp.local';
export const DEVICE_INFO_SERVICE = '_device-info._tcp.local';
export const SERVICES_ENUMERATION = '_services._dns-sd._udp.local';

/** `_adisk._tcp` and `_device-info._tcp` carry no connectable service; netatalk uses 9 (discard) and 0. */
export const ADISK_PORT = 9;
export const DEVICE_INFO_PORT = 0;

/** adVF bits (TMNIS): 0x01 AFP, 0x80 Time Machine destination. */
export const ADVF_AFP_TIME_MACHINE = '0x81';
/** The `sys` entry copied verbatim from Apple devices by netatalk and Samba. */
export const ADISK_SYS_ENTRY = 'sys=waMa=0,adVF=0x100';

export const DEFAULT_MODEL = 'TimeCapsule8,119';

/** RFC 6762 §10: 120 s for records naming the host (SRV, A, AAAA), 75 min for the rest. */
export const DEFAULT_HOST_TTL = 120;
export const DEFAULT_OTHER_TTL = 4500;

const MAX_LABEL = 63;

export interface TimeMachineVolume {
  name: string;
  /** Persistent UUID, so the Mac can tell volumes apart after a rename (adVU). */
  uuid?: string;
}

export interface ServiceRecordInput {
  /** The service instance name shared by all three services (the server name). */
  instance: string;
  /** e.g. `office.local`. */
  hostName: string;
  /** The AFP port the server actually listens on. */
  port: number;
  /** Addresses the host name resolves to on this interface (IPv4 and IPv6). */
  addresses: readonly string[];
  timeMachineVolumes: readonly TimeMachineVolume[];
  model: string;
  hostTtl?: number;
  otherTtl?: number;
}

export interface ServiceRecords {
  /** PTR records of `_services._dns-sd._udp.local` (shared). */
  enumeration: Answer[];
  /** PTR records from service type to instance (shared). */
  pointers: Answer[];
  /** SRV and TXT records of the instances (unique). */
  instances: Answer[];
  /** A and AAAA records of the host name (unique). */
  host: Answer[];
}

/**
 * Cuts `s` to at most `max` bytes of UTF-8 without splitting a character (a cut surrogate
 * pair or a dangling combining mark must not reach the wire).
 */
export function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = '';
  let bytes = 0;
  for (const seg of graphemes(s)) {
    const n = Buffer.byteLength(seg, 'utf8');
    if (bytes + n > max) break;
    out += seg;
    bytes += n;
  }
  return out;
}

function graphemes(s: string): string[] {
  const Seg = (Intl as unknown as { Segmenter?: new (l?: string, o?: { granularity: string }) => { segment(s: string): Iterable<{ segment: string }> } }).Segmenter;
  if (Seg) return [...new Seg(undefined, { granularity: 'grapheme' }).segment(s)].map((x) => x.segment);
  return [...s];
}

/**
 * The DNS label for a service instance: the server name, NFC, at most 63 bytes. dns-packet
 * cannot carry a '.' inside a label (it splits names at every dot), so dots become '-'.
 * `suffix` is the " (2)" a name conflict adds; the name is cut so that the suffix still fits.
 */
export function instanceLabel(serverName: string, suffix = ''): string {
  const base = serverName.normalize('NFC').replace(/\./g, '-').replace(/[\u0000-\u001f\u007f]/g, '');
  const cut = truncateUtf8(base, MAX_LABEL - Buffer.byteLength(suffix, 'utf8')).trimEnd();
  return `${cut.length > 0 ? cut : 'afp-gateway'}${suffix}`;
}

/** The instance name after the nth conflict: "Name (2)", "Name (3)", ... */
export function renamedInstance(serverName: string, attempt: number): string {
  return attempt <= 1 ? instanceLabel(serverName) : instanceLabel(serverName, ` (${attempt})`);
}

/** A host label usable in `<label>.local`: letters, digits and '-', at most 63 bytes. */
export function hostLabel(name: string): string {
  const label = name
    .split('.')[0]!
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_LABEL)
    .replace(/-+$/, '');
  return label.length > 0 ? label : 'afp-gateway';
}

/** `office-2.local` after a host-name conflict. */
export function renamedHost(hostName: string, attempt: number): string {
  if (attempt <= 1) return hostName;
  const [label, ...rest] = hostName.split('.');
  const suffix = `-${attempt}`;
  return [`${label!.slice(0, MAX_LABEL - suffix.length)}${suffix}`, ...rest].join('.');
}

/**
 * A value inside an `_adisk` `dkN` entry. The entry is a comma-separated list of key=value
 * pairs, so a ',' in a volume name is written `\,` and a backslash `\\` (TMNIS). '=' needs no
 * escape (each pair is split at its first '='); non-ASCII stays as UTF-8 bytes.
 */
export function escapeAdiskValue(value: string): string {
  return value.normalize('NFC').replace(/[\\,]/g, (c) => `\\${c}`);
}

/** The TXT strings of `_adisk._tcp`: the `sys` entry, then `dk0`, `dk1`, ... per volume. */
export function adiskTxt(volumes: readonly TimeMachineVolume[]): string[] {
  const out = [ADISK_SYS_ENTRY];
  volumes.forEach((v, i) => {
    let entry = `dk${i}=adVN=${escapeAdiskValue(v.name)},adVF=${ADVF_AFP_TIME_MACHINE}`;
    if (v.uuid) entry += `,adVU=${v.uuid}`;
    // A TXT string is at most 255 bytes; 27-character volume names cannot get near it.
    if (Buffer.byteLength(entry, 'utf8') > 255) throw new Error(`adisk TXT entry for volume ${v.name} exceeds 255 bytes`);
    out.push(entry);
  });
  return out;
}

export function deviceInfoTxt(model: string): string[] {
  return [`model=${model}`];
}

/**
 * A stable UUID for a volume's adVU: derived from the server signature (shared by every node
 * of a pair, kept in the metadata store) and the volume's key, so it survives restarts and
 * renames that keep the key.
 */
export function volumeUuid(signature: Buffer, volumeKey: string): string {
  const h = createHash('sha256').update(signature).update('\0adVU\0').update(volumeKey, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5 layout (name-based)
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString('hex').toUpperCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const txtData = (strings: readonly string[]): Buffer[] => strings.map((s) => Buffer.from(s, 'utf8'));

/** Every record for one interface. Time Machine volumes empty: no `_adisk._tcp` at all. */
export function buildServiceRecords(input: ServiceRecordInput): ServiceRecords {
  const hostTtl = input.hostTtl ?? DEFAULT_HOST_TTL;
  const otherTtl = input.otherTtl ?? DEFAULT_OTHER_TTL;
  const services: { type: string; port: number; txt: string[] }[] = [
    { type: AFP_SERVICE, port: input.port, txt: [] },
  ];
  if (input.timeMachineVolumes.length > 0) services.push({ type: ADISK_SERVICE, port: ADISK_PORT, txt: adiskTxt(input.timeMachineVolumes) });
  services.push({ type: DEVICE_INFO_SERVICE, port: DEVICE_INFO_PORT, txt: deviceInfoTxt(input.model) });

  const enumeration: Answer[] = [];
  const pointers: Answer[] = [];
  const instances: Answer[] = [];
  for (const s of services) {
    const full = `${input.instance}.${s.type}`;
    enumeration.push({ name: SERVICES_ENUMERATION, type: 'PTR', class: 'IN', ttl: otherTtl, data: s.type });
    pointers.push({ name: s.type, type: 'PTR', class: 'IN', ttl: otherTtl, data: full });
    instances.push({ name: full, type: 'SRV', class: 'IN', ttl: hostTtl, flush: true, data: { priority: 0, weight: 0, port: s.port, target: input.hostName } });
    // An empty TXT record is a single empty string (RFC 6763 §6.1).
    instances.push({ name: full, type: 'TXT', class: 'IN', ttl: otherTtl, flush: true, data: txtData(s.txt.length > 0 ? s.txt : ['']) });
  }
  const host: Answer[] = [];
  for (const a of input.addresses) {
    if (isIPv4(a)) host.push({ name: input.hostName, type: 'A', class: 'IN', ttl: hostTtl, flush: true, data: a });
    else if (isIPv6(a)) host.push({ name: input.hostName, type: 'AAAA', class: 'IN', ttl: hostTtl, flush: true, data: a.split('%')[0]! });
  }
  return { enumeration, pointers, instances, host };
}

/** The instance names of the records (what probing must claim). */
export function instanceNames(records: ServiceRecords): string[] {
  return [...new Set(records.instances.map((r) => r.name))];
}

export function allRecords(records: ServiceRecords): Answer[] {
  return [...records.enumeration, ...records.pointers, ...records.instances, ...records.host];
}
