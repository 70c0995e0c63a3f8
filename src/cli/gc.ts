import { controlRequest, controlSocketPath, replyError } from './control-client.js';
import type { CliOptions } from './options.js';

/** `afp-gateway gc`: has the running gateway delete the replaced objects that are due now. */
export async function gc(opts: CliOptions): Promise<number> {
  const socket = await controlSocketPath(opts);
  const r = await controlRequest(socket, 'POST', '/gc');
  if (r.status !== 200) {
    process.stderr.write(`afp-gateway gc: ${replyError(r)}\n`);
    return 1;
  }
  const { volumes } = JSON.parse(r.body) as { volumes: { volume: string; deleted: number }[] };
  if (opts.json) {
    process.stdout.write(JSON.stringify(volumes, null, 2) + '\n');
    return 0;
  }
  for (const v of volumes) process.stdout.write(`${v.volume}: ${v.deleted} object(s) deleted\n`);
  process.stdout.write('objects replaced less than objects.gcGraceSeconds ago stay until their grace period is over\n');
  return 0;
}
