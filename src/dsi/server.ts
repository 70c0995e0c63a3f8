import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../ops/log.js';
import { DsiConnection, type DsiCloseReason, type DsiConnectionOptions } from './connection.js';

export interface DsiServerOptions extends Omit<DsiConnectionOptions, 'log'> {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  log: Logger;
}

export interface ListenResult {
  host: string;
  port: number;
  /** True when the preferred port was refused and the fallback was used. */
  fellBack: boolean;
}

/**
 * Accepts TCP connections and gives each its own DsiConnection. Limits are enforced
 * here, before any bytes are read, so a flood from one address cannot starve others.
 */
export class DsiServer {
  private readonly server: Server;
  private readonly connections = new Set<DsiConnection>();
  private readonly perAddress = new Map<string, number>();
  private nextConnId = 1;
  private closed: Promise<void> | null = null;
  /** How connections have ended, by reason; refused counts connections over the limits. */
  readonly closeCounts: Record<DsiCloseReason | 'refused', number> = {
    'peer-closed': 0,
    'client-close': 0,
    timeout: 0,
    'protocol-error': 0,
    'server-close': 0,
    'handed-over': 0,
    refused: 0,
  };

  constructor(private readonly opts: DsiServerOptions) {
    // Half-open: a client's FIN must not discard the replies to what it already sent.
    this.server = createServer({ noDelay: true, allowHalfOpen: true }, (s) => this.accept(s));
    this.server.on('error', (err) => opts.log.error({ err }, 'listener error'));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  allConnections(): Iterable<DsiConnection> {
    return this.connections;
  }

  /**
   * Binds `port`; when that is refused for lack of privilege (port 548 as a normal user)
   * and a fallback is given, binds the fallback instead, so a try-out works without root.
   */
  async listen(host: string, port: number, fallbackPort: number | null = null): Promise<ListenResult> {
    try {
      return { ...(await this.bind(host, port)), fellBack: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (fallbackPort === null || fallbackPort === port || (code !== 'EACCES' && code !== 'EPERM')) throw err;
      this.opts.log.warn({ port, fallbackPort }, `port ${port} needs privileges; listening on ${fallbackPort} instead`);
      return { ...(await this.bind(host, fallbackPort)), fellBack: true };
    }
  }

  private bind(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        const addr = this.server.address();
        if (addr === null || typeof addr === 'string') return reject(new Error('listener has no TCP address'));
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /**
   * Stops accepting; existing connections carry on (graceful shutdown). The returned promise
   * settles only once every connection has ended, which is why it is awaited last.
   */
  stopAccepting(): Promise<void> {
    this.closed ??= new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    return this.closed;
  }

  async close(): Promise<void> {
    const closed = this.stopAccepting();
    for (const c of [...this.connections]) c.close('server-close');
    await closed;
  }

  private accept(socket: Socket): void {
    const addr = socket.remoteAddress ?? '?';
    const count = this.perAddress.get(addr) ?? 0;
    if (this.connections.size >= this.opts.maxConnections || count >= this.opts.maxConnectionsPerAddress) {
      this.opts.log.warn({ remote: addr, total: this.connections.size, fromAddress: count }, 'connection limit reached; refusing');
      this.closeCounts.refused++;
      socket.destroy();
      return;
    }
    this.perAddress.set(addr, count + 1);
    const connId = this.nextConnId++;
    const log = this.opts.log.child({ conn: connId, remote: `${addr}:${socket.remotePort ?? 0}` });
    const conn = new DsiConnection(socket, { ...this.opts, log, onClose: (reason) => this.closeCounts[reason]++ });
    this.connections.add(conn);
    socket.once('close', () => {
      this.connections.delete(conn);
      const left = (this.perAddress.get(addr) ?? 1) - 1;
      if (left <= 0) this.perAddress.delete(addr);
      else this.perAddress.set(addr, left);
    });
  }
}
