import type { FlushEvent } from '../ops/control-server.js';
import { controlRequest, controlSocketPath, replyError } from './control-client.js';
import type { CliOptions } from './options.js';
import { Progress } from './progress.js';

/**
 * `afp-gateway cache flush [--timeout S]`: has the running gateway upload and commit every
 * dirty block now, as FPSyncFork would for every open file, with a progress bar. For planned
 * maintenance: after it, what the Macs wrote is in the bucket and the cache may go.
 */
export async function cache(opts: CliOptions): Promise<number> {
  const [sub] = opts.positionals;
  if (sub !== 'flush') {
    process.stderr.write('usage: afp-gateway cache flush [--timeout SECONDS] [--config FILE | --socket PATH]\n');
    return 2;
  }
  const socket = await controlSocketPath(opts);
  const seen: { bar: Progress | null; last: FlushEvent | null; done: number } = { bar: null, last: null, done: 0 };
  const r = await controlRequest(socket, 'POST', `/cache/flush?timeout=${opts.timeout ?? 0}`, (line) => {
    const ev = JSON.parse(line) as FlushEvent;
    seen.last = ev;
    if (ev.type === 'error') return;
    seen.bar ??= new Progress('flushing', ev.totalBytes);
    seen.bar.add(ev.doneBytes - seen.done);
    seen.done = ev.doneBytes;
  });
  if (r.status !== 200) {
    process.stderr.write(`afp-gateway cache flush: ${replyError(r)}\n`);
    return 1;
  }
  const final = seen.last;
  if (final?.type === 'done') {
    seen.bar?.finish();
    const left = final.dirtyBytes > 0 ? `; ${final.dirtyBytes} bytes written since the flush began are not uploaded yet` : '';
    process.stdout.write(`cache flushed: ${final.doneBytes} bytes uploaded and committed in ${final.seconds.toFixed(1)} s${left}\n`);
    return 0;
  }
  seen.bar?.abort();
  process.stderr.write(`afp-gateway cache flush: ${final?.type === 'error' ? final.message : 'the gateway ended the answer early'}\n`);
  return 1;
}
