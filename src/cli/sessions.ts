import type { SessionSummary } from '../ops/control-server.js';
import { formatDuration } from '../ops/status-page.js';
import { controlRequest, controlSocketPath, replyError } from './control-client.js';
import type { CliOptions } from './options.js';

/** `afp-gateway sessions [--kill ID]`: the node's AFP sessions, or end one of them. */
export async function sessions(opts: CliOptions): Promise<number> {
  const socket = await controlSocketPath(opts);
  if (opts.kill !== undefined) {
    const r = await controlRequest(socket, 'POST', `/sessions/${encodeURIComponent(opts.kill)}/end`);
    if (r.status !== 200) {
      process.stderr.write(`afp-gateway sessions: ${replyError(r)}\n`);
      return 1;
    }
    process.stdout.write(`session ${opts.kill} ended: its files are closed and its locks released; the Mac cannot resume it\n`);
    return 0;
  }
  const r = await controlRequest(socket, 'GET', '/sessions');
  if (r.status !== 200) {
    process.stderr.write(`afp-gateway sessions: ${replyError(r)}\n`);
    return 1;
  }
  const list = JSON.parse(r.body) as SessionSummary[];
  if (opts.json) {
    process.stdout.write(JSON.stringify(list, null, 2) + '\n');
    return 0;
  }
  if (list.length === 0) {
    process.stdout.write('no sessions\n');
    return 0;
  }
  const now = Date.now();
  const rows = [
    ['ID', 'USER', 'MAC', 'STATE', 'FOR', 'OPEN', 'VOLUMES'],
    ...list.map((s) => [s.id, s.user, s.address, s.state === 'connected' ? 'connected' : 'waiting', formatDuration(now - s.since), String(s.openForks), s.volumes.join(', ')]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  process.stdout.write(rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n');
  return 0;
}
