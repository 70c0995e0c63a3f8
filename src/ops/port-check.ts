/**
 * Can the gateway bind its TCP ports? Binds and releases each one, the way the gateway will
 * bind it, and turns the error into what to change.
 */
import { createServer } from 'node:net';
import { fail, ok, warn, type CheckResult } from './check-result.js';
import { findPortOwner, type PortOwner } from './port-owner.js';

/** Binds host:port and closes it again; resolves with the error code, or undefined when it bound. */
export function tryBind(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port }, () => server.close(() => resolve(undefined)));
  });
}

export interface ListenPort {
  host: string;
  port: number;
  fallbackPort: number | null;
}

/** The AFP port (listen.*): a failure here means `serve` cannot start. */
export async function checkAfpPort(listen: ListenPort): Promise<CheckResult> {
  const where = `${listen.host}:${listen.port}`;
  const code = await tryBind(listen.host, listen.port);
  if (code === undefined) return ok('listen', listen.port === 0 ? `${listen.host}: any free port (listen.port 0)` : `${where} can be bound`);
  if (code === 'EACCES' || code === 'EPERM') {
    const needs = `port ${listen.port} needs root or CAP_NET_BIND_SERVICE`;
    const grant = 'run it under the systemd unit in infra/systemd (it grants CAP_NET_BIND_SERVICE), or as root';
    const { fallbackPort } = listen;
    if (fallbackPort === null || fallbackPort === listen.port)
      return fail('listen', `${where}: ${needs}, and listen.fallbackPort is null`, { key: 'listen.port', fix: `${grant}; or set listen.fallbackPort (e.g. 10548)`, transient: false });
    const fallback = await tryBind(listen.host, fallbackPort);
    if (fallback === undefined)
      return warn('listen', `${where}: ${needs}; serve will listen on listen.fallbackPort ${fallbackPort} instead`, {
        key: 'listen.port',
        fix: `${grant}. On ${fallbackPort}, Macs still find the server by Bonjour, but "Connect to Server" needs afp://host:${fallbackPort}`,
      });
    return bindFailure('listen', 'listen', { ...listen, port: fallbackPort }, fallback, `(${needs}, so serve falls back to listen.fallbackPort) `, 'listen.fallbackPort');
  }
  return bindFailure('listen', 'listen', listen, code, '', 'listen.port');
}

/**
 * The ops endpoint (ops.metricsListen). The gateway serves AFP without it when its port is
 * taken, so problems here are warnings.
 */
export async function checkOpsPort(where: { host: string; port: number }): Promise<CheckResult> {
  const code = await tryBind(where.host, where.port);
  if (code === undefined) return ok('ops', `${where.host}:${where.port} (metrics, /status, health checks) can be bound`);
  const r = await bindFailure('ops', 'ops.metricsListen', where, code, '', 'ops.metricsListen.port');
  return warn('ops', `${r.message}; the gateway would serve AFP without metrics, status page and health checks`, { ...(r.fix !== undefined ? { fix: r.fix } : {}), ...(r.key !== undefined ? { key: r.key } : {}) });
}

async function bindFailure(check: string, section: string, at: { host: string; port: number }, code: string, context: string, portKey: string): Promise<CheckResult> {
  const where = `${at.host}:${at.port}`;
  switch (code) {
    case 'EADDRINUSE': {
      const owner = await findPortOwner(at.port);
      const held = owner ? ` by process ${owner.pid} (${owner.command})` : '';
      return fail(check, `${where} ${context}is in use${held}`, { key: portKey, fix: whatToDoWithTheHolder(owner, portKey), transient: true });
    }
    case 'EADDRNOTAVAIL':
      return fail(check, `${where}: no interface of this machine has the address ${at.host}`, {
        key: `${section}.host`,
        fix: `set ${section}.host to one of this machine's addresses (\`ip -brief address\`), or 0.0.0.0 for all`,
        transient: false,
      });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return fail(check, `${where}: the host name ${at.host} does not resolve`, { key: `${section}.host`, fix: `set ${section}.host to an IP address of this machine`, transient: code === 'EAI_AGAIN' });
    default:
      return fail(check, `${where} ${context}cannot be bound: ${code}`, { key: portKey, transient: false });
  }
}

function whatToDoWithTheHolder(owner: PortOwner | undefined, portKey: string): string {
  const other = `or set ${portKey} to a free port`;
  if (owner === undefined)
    return `find what holds it (\`ss -ltnp\`): often netatalk's afpd, or an afp-gateway that is already running; stop it, ${other}`;
  if (/afp-gateway/.test(owner.command)) return `an afp-gateway is already running: stop it first (systemctl stop afp-gateway), ${other}`;
  if (/\b(afpd|netatalk)\b/.test(owner.command))
    return `netatalk serves AFP on this port: stop and disable it (systemctl disable --now netatalk), ${other}`;
  return `stop process ${owner.pid}, ${other}`;
}
