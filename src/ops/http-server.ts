/**
 * The gateway's operations endpoint: the status page (and its JSON), Prometheus metrics, and
 * the health and readiness checks that keepalived and orchestrators poll. Plain node:http, GET only, no body parsing: nothing
 * a request sends can make it do work beyond rendering these answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.js';
import { renderStatusPage, type StatusReport } from './status-page.js';

export interface CheckResult {
  ok: boolean;
  /** Named checks and what each found ("ok" or why not). */
  checks: Record<string, string>;
}

export interface OpsEndpoints {
  metrics(): string;
  /** The facts of the status page. */
  status(): Promise<StatusReport>;
  /** The process serves AFP (liveness: restart it when this fails). */
  health(): Promise<CheckResult>;
  /** The node can serve a Mac now: its stores answer and it is not stopping (keepalived, load balancers). */
  ready(): Promise<CheckResult>;
}

export interface OpsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startOpsServer(host: string, port: number, endpoints: OpsEndpoints, log: Logger): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    handle(req, res, endpoints).catch((err: unknown) => {
      log.warn({ err, url: req.url }, 'ops endpoint failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  // Slow or idle clients must not hold sockets open.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, e: OpsEndpoints): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    res.end('method not allowed\n');
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/metrics') {
    const body = e.metrics();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  if (path === '/' || path === '/status') {
    const body = renderStatusPage(await e.status());
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  if (path === '/status.json') {
    const body = JSON.stringify(await e.status());
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body + '\n');
    return;
  }
  if (path === '/healthz' || path === '/readyz') {
    const r = await (path === '/healthz' ? e.health() : e.ready());
    res.writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(r) + '\n');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found: /status, /status.json, /metrics, /healthz and /readyz are served here\n');
}
