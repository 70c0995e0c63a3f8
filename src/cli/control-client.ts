/**
 * Talks to a running gateway's control socket (src/ops/control-server.ts) for `sessions`,
 * `cache flush` and `gc`. The socket is found from `--socket`, else from the same config
 * the gateway was started with (`--config`, AFPGW_CONFIG, or the embedded default).
 */
import { request } from 'node:http';
import { loadConfig } from '../config/load.js';
import type { CliOptions } from './options.js';
import { configSource } from './serve.js';

export class ControlUnreachable extends Error {}

export async function controlSocketPath(opts: CliOptions): Promise<string> {
  if (opts.socket !== undefined) return opts.socket;
  const config = await loadConfig(configSource(opts));
  if (config.ops.controlSocket === null) throw new ControlUnreachable('the control socket is disabled (ops.controlSocket: null) in this configuration');
  return config.ops.controlSocket;
}

export interface ControlReply {
  status: number;
  body: string;
}

/**
 * One request over the socket. `onLine` receives each complete line of the answer as it
 * arrives (the NDJSON progress of `cache flush`); the whole body is returned either way.
 */
export function controlRequest(socketPath: string, method: 'GET' | 'POST', path: string, onLine?: (line: string) => void): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { 'content-length': 0 } }, (res) => {
      let body = '';
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (!onLine) return;
        pending += chunk;
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.length === 0) continue;
          try {
            onLine(line);
          } catch (err) {
            req.destroy();
            reject(new ControlUnreachable(`the gateway answered a line this command cannot read (${err instanceof Error ? err.message : String(err)}); is it the same version?`));
            return;
          }
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? 'no gateway is running there'
        : err.code === 'EACCES'
          ? 'permission denied: run as the service user or root'
          : err.message;
      reject(new ControlUnreachable(`cannot reach the gateway's control socket ${socketPath}: ${why}`));
    });
    req.end();
  });
}

/** The error a control request answered with, from its JSON body. */
export function replyError(r: ControlReply): string {
  try {
    const parsed = JSON.parse(r.body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: show it as it came
  }
  return `answered ${r.status}: ${r.body.trim()}`;
}
