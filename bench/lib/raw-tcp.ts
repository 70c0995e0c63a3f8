import { createServer, connect, type AddressInfo } from 'node:net';

/**
 * Raw loopback TCP ping-pong with fixed request and reply sizes, one request outstanding:
 * the ceiling any request/reply protocol on this machine can reach.
 */
export async function rawPingPong(reqBytes: number, replyBytes: number, seconds: number): Promise<number> {
  const reply = Buffer.alloc(replyBytes, 1);
  const server = createServer((s) => {
    s.setNoDelay(true);
    let pending = 0;
    s.on('data', (d: Buffer) => {
      pending += d.length;
      while (pending >= reqBytes) {
        pending -= reqBytes;
        s.write(reply);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const sock = connect({ host: '127.0.0.1', port });
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const req = Buffer.alloc(reqBytes, 2);
  let got = 0;
  let count = 0;
  const end = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      got += d.length;
      while (got >= replyBytes) {
        got -= replyBytes;
        count++;
        if (Date.now() >= end) return resolve();
        sock.write(req);
      }
    });
    sock.write(req);
  });
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  sock.destroy();
  server.close();
  return count / secs;
}
