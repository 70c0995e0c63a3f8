/**
 * Request/reply round trips through the whole DSI + AFP stack, against a raw loopback TCP
 * ping-pong that moves the same bytes in the same pattern, measured in the same run.
 * Also the cost of one login per UAM. Run: npm run bench -- roundtrip
 */
import { AfpClient } from '../src/client/afp-client.js';
import { AfpCommand } from '../src/afp/commands.js';
import { DSI_HEADER_SIZE } from '../src/dsi/header.js';
import { Writer } from '../src/wire/writer.js';
import { startTestGateway } from '../test/helpers/gateway.js';
import { rawPingPong } from './lib/raw-tcp.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

async function afpRoundTrips(c: AfpClient): Promise<number> {
  const req = new Writer(8).u8(AfpCommand.FPGetUserInfo).u8(1).u32(0).u16(3).finish();
  let count = 0;
  const end = Date.now() + SECONDS * 1000;
  const started = process.hrtime.bigint();
  while (Date.now() < end) {
    await c.call(req);
    count++;
  }
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function loginsPerSecond(host: string, port: number, uam: 'DHX2' | 'DHCAST128' | 'Cleartxt Passwrd', n: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const c = await AfpClient.connect(host, port);
    await c.login({ uam, user: 'bench', password: 'benchpw' });
    await c.close();
  }
  return n / (Number(process.hrtime.bigint() - started) / 1e9);
}

const g = await startTestGateway({
  users: [{ name: 'bench', password: 'benchpw' }],
  config: { auth: { uams: ['DHX2', 'DHCAST128', 'Cleartxt Passwrd'], scrypt: { N: 1024, r: 8, p: 1 } } },
});
try {
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: 'bench', password: 'benchpw' });
  await afpRoundTrips(c); // warm-up
  const afp = await afpRoundTrips(c);
  // Same sizes on the wire: the 8-byte FPGetUserInfo request and its 10-byte reply, each behind a DSI header.
  const raw = await rawPingPong(DSI_HEADER_SIZE + 8, DSI_HEADER_SIZE + 10, SECONDS);
  await c.close();
  console.log(`round trips (one client, one outstanding request, ${SECONDS}s each):`);
  console.log(`  raw loopback TCP ping-pong   ${raw.toFixed(0).padStart(8)} /s`);
  console.log(`  AFP FPGetUserInfo            ${afp.toFixed(0).padStart(8)} /s   ratio ${(afp / raw).toFixed(2)}x raw TCP`);
  for (const uam of ['DHX2', 'DHCAST128', 'Cleartxt Passwrd'] as const) {
    const n = await loginsPerSecond(g.host, g.port, uam, 40);
    console.log(`  login ${uam.padEnd(17)} (scrypt N=1024)  ${n.toFixed(1).padStart(7)} /s`);
  }
} finally {
  await g.stop();
}
