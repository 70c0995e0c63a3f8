/**
 * A TCP proxy that sits between a client and a server and misbehaves on demand, for outage
 * tests. Switch `mode` at any time:
 *
 * - pass:      bytes flow both ways untouched.
 * - latency:   every chunk, either way, arrives latencyMs late (order kept).
 * - refuse:    new connections are accepted and reset at once (the client sees ECONNRESET);
 *              live ones carry on.
 * - blackhole: new connections are accepted, and bytes on every connection, new or live,
 *              vanish both ways: a peer that went away without a word (the client times out).
 * - deaf:      requests reach the server, its replies vanish: the server ran what the client
 *              will never hear about (pair with dropAll() to make the client send it again).
 *
 * dropAll() resets every live connection. Loopback only; nothing here limits memory, so keep
 * transfers test-sized.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'latency' | 'refuse' | 'blackhole' | 'deaf';

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** http://host:port, for clients that take a URL. */
  readonly endpoint: string;
  mode: ProxyMode;
  latencyMs: number;
  /** Connections accepted and forwarded, since start. */
  readonly accepted: number;
  /** Connections reset on arrival in refuse mode, since start. */
  readonly refused: number;
  /** Connections open now. */
  readonly active: number;
  dropAll(): void;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  mode?: ProxyMode;
  latencyMs?: number;
}

export async function startFaultProxy(target: { host: string; port: number }, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let accepted = 0;
  let refused = 0;

  const server: Server = createServer((client) => {
    if (proxy.mode === 'refuse') {
      refused++;
      client.on('error', () => {}); // the reset we cause may echo back as an error
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    const teardown = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // Errors end the pair; the other side learns of it as a reset, as through a real middlebox.
    client.on('error', teardown).on('close', teardown);
    upstream.on('error', () => {
      pairs.delete(pair);
      if (!client.destroyed) client.resetAndDestroy();
      upstream.destroy();
    });
    upstream.on('close', teardown);
    relay(client, upstream, false);
    relay(upstream, client, true);
  });

  /** Forwards from → to, chunk by chunk, applying the mode each chunk meets on arrival. */
  function relay(from: Socket, to: Socket, toClient: boolean): void {
    let pending = 0;
    let lastDue = 0;
    const deliver = (send: () => void, delayMs: number) => {
      const now = Date.now();
      const due = Math.max(now + delayMs, lastDue);
      lastDue = due;
      if (due <= now && pending === 0) return send();
      // Timers fire in due order, and equal dues in the order they were set: order is kept.
      pending++;
      setTimeout(() => {
        pending--;
        send();
      }, due - now);
    };
    from.on('data', (chunk: Buffer) => {
      if (proxy.mode === 'blackhole' || (proxy.mode === 'deaf' && toClient)) return;
      deliver(() => {
        if (!to.destroyed) to.write(chunk);
      }, proxy.mode === 'latency' ? proxy.latencyMs : 0);
    });
    from.on('end', () =>
      deliver(() => {
        if (!to.destroyed) to.end();
      }, 0),
    );
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;

  const proxy: FaultProxy = {
    host: address,
    port,
    endpoint: `http://${address}:${port}`,
    mode: opts.mode ?? 'pass',
    latencyMs: opts.latencyMs ?? 100,
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    get active() {
      return pairs.size;
    },
    dropAll() {
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        if (!pair.client.destroyed) pair.client.resetAndDestroy();
        if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
      }
    },
    close() {
      proxy.dropAll();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
  return proxy;
}
