/**
 * The gateway's control socket: what `afp-gateway sessions`, `cache flush` and `gc` ask a
 * running gateway to do. It is a Unix socket with mode 0600, not a TCP port: ending a
 * session or forcing uploads is for whoever may open that file (the service user, root),
 * which no address binding or token would say as simply. The metrics port stays read-only.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from './log.js';

/** One AFP session of the node, as `afp-gateway sessions` lists it. */
export interface SessionSummary {
  id: string;
  user: string;
  address: string;
  /** ms since the epoch */
  since: number;
  /** connected, or waiting for its Mac to reconnect after the connection dropped */
  state: 'connected' | 'disconnected';
  volumes: string[];
  openForks: number;
}

/** A `cache flush` progress report, one NDJSON line each. */
export type FlushEvent =
  | { type: 'progress'; totalBytes: number; doneBytes: number; dirtyBytes: number }
  | { type: 'done'; totalBytes: number; doneBytes: number; dirtyBytes: number; seconds: number }
  | { type: 'error'; message: string; doneBytes: number; dirtyBytes: number };

export interface ControlEndpoints {
  sessions(): Promise<SessionSummary[]>;
  /** Ends the session for good (no reconnect); false when this node has no such session. */
  endSession(id: string): Promise<boolean>;
  /** Uploads and commits everything dirty now, reporting as it goes; resolves with the last event. */
  flushCache(timeoutMs: number, progress: (e: FlushEvent) => void, abandoned: AbortSignal): Promise<FlushEvent>;
  collectGarbage(): Promise<{ volume: string; deleted: number }[]>;
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

const FLUSH_REPORT_MS = 250;
/** setTimeout's ceiling (about 24.8 days): "no timeout" is this long. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const SESSION_ID = /^[0-9a-f]{16}$/;

export async function startControlServer(path: string, endpoints: ControlEndpoints, log: Logger): Promise<ControlServer> {
  await removeStaleSocket(path);
  const server: Server = createServer((req, res) => {
    handle(req, res, endpoints).catch((err: unknown) => {
      log.warn({ err, url: req.url }, 'control request failed');
      if (!res.headersSent) json(res, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.end();
    });
  });
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        // Node removes the socket file when a listening Unix server closes.
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A socket file left by a process that died is removed; one that answers belongs to a
 * running gateway, which this one must not take the file from.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const answered = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (answered) throw new Error(`another process serves the control socket ${path} (is a second gateway running with the same dataDir?)`);
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st === null) return;
  // Only a dead socket is ours to remove: a mistyped path must not delete someone's file.
  if (!st.isSocket()) throw new Error(`ops.controlSocket ${path} exists and is not a socket; point the key elsewhere`);
  await unlink(path);
}

async function handle(req: IncomingMessage, res: ServerResponse, e: ControlEndpoints): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://control');
  const route = `${req.method ?? 'GET'} ${url.pathname}`;
  if (route === 'GET /sessions') return json(res, 200, await e.sessions());
  const end = /^POST \/sessions\/([^/]+)\/end$/.exec(route);
  if (end) {
    const id = decodeURIComponent(end[1] ?? '');
    if (!SESSION_ID.test(id)) return json(res, 400, { error: `not a session id: ${JSON.stringify(id)} (16 hex digits, as afp-gateway sessions lists them)` });
    return (await e.endSession(id)) ? json(res, 200, { ended: id }) : json(res, 404, { error: `no session ${id} on this node` });
  }
  if (route === 'POST /cache/flush') {
    const raw = url.searchParams.get('timeout');
    const seconds = raw === null ? 0 : Number(raw);
    if (!Number.isFinite(seconds) || seconds < 0) return json(res, 400, { error: `timeout must be a number of seconds (0: none), not ${JSON.stringify(raw)}` });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    // A flush whose client went (Ctrl-C) stops retrying at once instead of at its deadline.
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    // Progress goes at most every FLUSH_REPORT_MS; the last event always goes.
    let last = 0;
    const final = await e.flushCache(seconds === 0 ? MAX_TIMEOUT_MS : Math.min(seconds * 1000, MAX_TIMEOUT_MS), (ev) => {
      const now = Date.now();
      if (now - last < FLUSH_REPORT_MS || res.destroyed) return;
      last = now;
      res.write(JSON.stringify(ev) + '\n');
    }, gone.signal);
    res.end(JSON.stringify(final) + '\n');
    return;
  }
  if (route === 'POST /gc') return json(res, 200, { volumes: await e.collectGarbage() });
  json(res, 404, { error: `unknown request ${route}: GET /sessions, POST /sessions/ID/end, POST /cache/flush, POST /gc are served here` });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
}
