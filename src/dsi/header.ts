/** DSI framing constants and the 16-byte header (AFP over TCP, Apple's "AFPOverTCP" chapter). */

export const DSI_HEADER_SIZE = 16;

export const DsiCommand = {
  CloseSession: 1,
  Command: 2,
  GetStatus: 3,
  OpenSession: 4,
  Tickle: 5,
  Write: 6,
  Attention: 8,
} as const;
export type DsiCommandCode = (typeof DsiCommand)[keyof typeof DsiCommand];

const known = new Set<number>(Object.values(DsiCommand));
export function isDsiCommand(code: number): code is DsiCommandCode {
  return known.has(code);
}

export const DSI_REQUEST = 0x00;
export const DSI_REPLY = 0x01;

/** OpenSession option types. */
export const DsiOption = {
  ServerRequestQuantum: 0x00,
  AttentionQuantum: 0x01,
  ServerReplayCacheSize: 0x02,
} as const;

/** Attention user-bytes masks (server → client notices). */
export const DsiAttention = {
  Shutdown: 0x8000,
  AllowReconnect: 0x4000,
  ServerMessage: 0x2000,
  NoReconnect: 0x1000,
  MinutesMask: 0x0fff,
} as const;

export interface DsiHeader {
  flags: number;
  command: number;
  requestId: number;
  /** Result code in replies; enclosed-data offset in DSIWrite requests. */
  codeOrOffset: number;
  length: number;
  reserved: number;
}

export function readHeader(b: Buffer, at = 0): DsiHeader {
  return {
    flags: b[at]!,
    command: b[at + 1]!,
    requestId: b.readUInt16BE(at + 2),
    codeOrOffset: b.readInt32BE(at + 4),
    length: b.readUInt32BE(at + 8),
    reserved: b.readUInt32BE(at + 12),
  };
}

export function writeHeader(h: DsiHeader, b: Buffer = Buffer.allocUnsafe(DSI_HEADER_SIZE), at = 0): Buffer {
  b[at] = h.flags;
  b[at + 1] = h.command;
  b.writeUInt16BE(h.requestId & 0xffff, at + 2);
  b.writeInt32BE(h.codeOrOffset | 0, at + 4);
  b.writeUInt32BE(h.length >>> 0, at + 8);
  b.writeUInt32BE(h.reserved >>> 0, at + 12);
  return b;
}
