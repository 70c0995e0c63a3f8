import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { DsiFramer } from '../../src/dsi/framer.js';
import { DSI_HEADER_SIZE, DSI_REPLY, DSI_REQUEST, DsiCommand, writeHeader } from '../../src/dsi/header.js';

export interface RawStreamOptions {
  /**
   * 'down': small requests, `pieceBytes` replies (FPReadExt's shape).
   * 'up': requests carrying `pieceBytes`, small replies (FPWriteExt through DSIWrite).
   */
  direction: 'down' | 'up';
  /** Bytes to move in all. */
  totalBytes: number;
  /** Data bytes per request or reply (the last one may be shorter). */
  pieceBytes: number;
  /** Requests outstanding at once. */
  inFlight: number;
  /** The bytes of piece `i` (at least `pieceBytes` long); served from memory. */
  source: (i: number) => Buffer;
}

export interface RawStreamResult {
  bytes: number;
  seconds: number;
}

/** FPReadExt / FPWriteExt header after the DSI header: cmd, flag, refnum, offset(8), count(8). */
const AFP_HEAD = 20;
/** FPWriteExt's reply: the offset past the write. */
const WRITE_REPLY = 8;

/**
 * Request/reply streaming over loopback TCP in DSI's shape, with nothing behind it: the client
 * keeps `inFlight` requests outstanding, the server answers each as soon as it is whole. Both
 * ends cut frames out of the stream with the DsiFramer the gateway and the AFP client use (so
 * each 1 MiB piece ends up as one contiguous Buffer, as it does for FPReadExt and FPWriteExt)
 * and write a frame as header + body under cork, as DsiConnection and DsiClient do. What is
 * left between this and an AFP read or write is the gateway's work per request.
 */
export async function rawRequestStream(o: RawStreamOptions): Promise<RawStreamResult> {
  const pieces = Math.ceil(o.totalBytes / o.pieceBytes);
  const size = (i: number) => Math.min(o.pieceBytes, o.totalBytes - i * o.pieceBytes);
  const head = Buffer.alloc(AFP_HEAD);
  const frame = (s: Socket, flags: number, command: number, id: number, offset: number, body: Buffer[]) => {
    let length = 0;
    for (const b of body) length += b.length;
    s.cork();
    s.write(writeHeader({ flags, command, requestId: id & 0xffff, codeOrOffset: offset, length, reserved: 0 }));
    for (const b of body) s.write(b);
    s.uncork();
  };

  const server = createServer((s: Socket) => {
    s.setNoDelay(true);
    let served = 0;
    const framer = new DsiFramer(() => DSI_HEADER_SIZE + AFP_HEAD + o.pieceBytes);
    const writeReply = Buffer.alloc(WRITE_REPLY);
    s.on('data', (chunk: Buffer) => {
      for (const f of framer.push(chunk)) {
        const i = served++;
        if (o.direction === 'down') frame(s, DSI_REPLY, DsiCommand.Command, f.requestId, 0, [o.source(i).subarray(0, size(i))]);
        else frame(s, DSI_REPLY, DsiCommand.Write, f.requestId, 0, [writeReply]);
      }
      if (framer.error) s.destroy();
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const sock = connect({ host: '127.0.0.1', port });
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const framer = new DsiFramer(() => o.pieceBytes + AFP_HEAD);
  let sent = 0;
  let received = 0;
  let bytes = 0;
  const send = () => {
    const i = sent++;
    if (o.direction === 'down') frame(sock, DSI_REQUEST, DsiCommand.Command, i, 0, [head]);
    else frame(sock, DSI_REQUEST, DsiCommand.Write, i, AFP_HEAD, [head, o.source(i).subarray(0, size(i))]);
  };
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (chunk: Buffer) => {
      for (const f of framer.push(chunk)) {
        bytes += o.direction === 'down' ? f.payload.length : size(received);
        received++;
        if (received === pieces) return resolve();
        if (sent < pieces) send();
      }
      if (framer.error) reject(framer.error);
    });
    while (sent < Math.min(o.inFlight, pieces)) send();
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  sock.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return { bytes, seconds };
}
