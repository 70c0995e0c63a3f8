/**
 * Checks and the binary reply encoding shared by the two SessionStore backends
 * (embedded-sessions.ts, redis-sessions.ts), so both accept and return exactly the same.
 */
import { checkString, checkVolumeKey } from './namespace-records.js';
import type { ReplayEntry, SessionRecord } from './sessions.js';

/** The replay-cache depth the protocol allows (DSI's option is a u32, request IDs are u16). */
const MAX_WINDOW = 0xffff;

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Ids and tokens name keys and travel in logs; control characters in them are caller bugs. */
function checkKeyString(s: string, what: string, allowEmpty: boolean): void {
  checkString(s, what);
  if (!allowEmpty && s === '') throw new RangeError(`${what} must not be empty`);
  if (CONTROL.test(s)) throw new RangeError(`${what} must not contain control characters: ${JSON.stringify(s)}`);
}

export function checkSessionId(id: string): void {
  checkKeyString(id, 'session id', false);
}

/** For lookups: an id that could never have been stored is simply not there. */
export function isSessionId(id: string): boolean {
  return passes(() => checkSessionId(id));
}

export function isToken(token: string): boolean {
  return passes(() => checkKeyString(token, 'token', true));
}

/** User keys come from login names, which may hold any character; only well-formedness matters. */
export function isUser(user: string): boolean {
  return typeof user === 'string' && user !== '' && passes(() => checkString(user, 'user'));
}

function passes(check: () => void): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}

function checkInt(v: number, what: string, min: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${String(v)}`);
}

export function checkSessionRecord(rec: SessionRecord): void {
  checkSessionId(rec.id);
  checkKeyString(rec.node, 'node', false);
  if (!isUser(rec.user)) throw new RangeError(`user must be a non-empty, well-formed string: ${JSON.stringify(rec.user)}`);
  checkInt(rec.uid, 'uid', 0, 0xffffffff);
  checkKeyString(rec.token, 'token', true);
  checkKeyString(rec.clientId, 'clientId', true);
  if (rec.timestamp !== null) checkInt(rec.timestamp, 'timestamp', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  for (const list of ['volumes', 'tmVolumes', 'forkVolumes'] as const) {
    if (!Array.isArray(rec[list])) throw new RangeError(`${list} must be an array`);
    for (const v of rec[list]) checkVolumeKey(v);
  }
  checkInt(rec.createdAt, 'createdAt', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
}

/** Only the declared fields are stored, so what comes back equals what went in. */
export function copySessionRecord(rec: SessionRecord): SessionRecord {
  return {
    id: rec.id,
    node: rec.node,
    user: rec.user,
    uid: rec.uid,
    token: rec.token,
    clientId: rec.clientId,
    timestamp: rec.timestamp,
    volumes: [...rec.volumes],
    tmVolumes: [...rec.tmVolumes],
    forkVolumes: [...rec.forkVolumes],
    createdAt: rec.createdAt,
  };
}

export function checkWindow(window: number): void {
  checkInt(window, 'window', 1, MAX_WINDOW);
}

export function checkReplayEntry(entry: ReplayEntry): void {
  checkInt(entry.requestId, 'requestId', 0, 0xffff);
  checkInt(entry.command, 'command', 0, 0xff);
  checkInt(entry.seq, 'seq', 0, Number.MAX_SAFE_INTEGER);
  checkInt(entry.code, 'code', -0x80000000, 0x7fffffff);
  if (!Buffer.isBuffer(entry.payload)) throw new RangeError('payload must be a Buffer');
}

/** requestId u16, command u8, seq u64, code i32 (all big-endian), then the payload. */
const HEADER = 15;

export function encodeReplay(entry: ReplayEntry): Buffer {
  const b = Buffer.allocUnsafe(HEADER + entry.payload.length);
  b.writeUInt16BE(entry.requestId, 0);
  b.writeUInt8(entry.command, 2);
  b.writeBigUInt64BE(BigInt(entry.seq), 3);
  b.writeInt32BE(entry.code, 11);
  entry.payload.copy(b, HEADER);
  return b;
}

/** undefined for bytes no encodeReplay made. The payload is a copy: the caller may keep it. */
export function decodeReplay(bytes: Uint8Array): ReplayEntry | undefined {
  if (bytes.length < HEADER) return undefined;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const seq = b.readBigUInt64BE(3);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { requestId: b.readUInt16BE(0), command: b.readUInt8(2), seq: Number(seq), code: b.readInt32BE(11), payload: Buffer.from(b.subarray(HEADER)) };
}

/**
 * The entries of the last `window` requests, newest first. A slot that was not overwritten
 * since a wrap of the request ids still holds an old entry; its seq gives it away.
 */
export function selectReplies(entries: readonly ReplayEntry[], window: number): ReplayEntry[] {
  let newest = -1;
  for (const x of entries) newest = Math.max(newest, x.seq);
  return entries.filter((x) => x.seq > newest - window).sort((a, b) => b.seq - a.seq);
}
