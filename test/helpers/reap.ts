/**
 * Child processes a test process must never leave behind (servers, gateways): whatever is
 * still running when the test process exits, or is ended by a signal, gets SIGKILL.
 */
import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';

const running = new Set<ChildProcess>();

function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

process.on('exit', killAll);

// 'exit' does not run when a signal ends the process, so also catch the usual ones while a
// child is up, then let the signal do what it would have done.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
function onSignal(signal: NodeJS.Signals): void {
  killAll();
  unwatchSignals();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
function watchSignals(): void {
  for (const s of SIGNALS) if (!process.listeners(s).includes(onSignal)) process.on(s, onSignal);
}
function unwatchSignals(): void {
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Kills `child` if the test process ends first; forgets it once it has exited. */
export function reapOnExit(child: ChildProcess): void {
  running.add(child);
  watchSignals();
  const forget = (): void => {
    running.delete(child);
    if (running.size === 0) unwatchSignals();
  };
  if (child.exitCode !== null || child.signalCode !== null) forget();
  else child.once('exit', forget);
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`; resolves once it has exited. */
export async function terminate(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A server child a test started, with what it printed and how to end it. */
export interface Supervised {
  /** The tail of what the child wrote to stdout and stderr. */
  output(): string;
  /** Ends the child (SIGTERM, then SIGKILL) and removes its scratch directory; once. */
  stop(): Promise<void>;
  /**
   * Polls `ready` every 50 ms until it answers true. When the child exits first (or could
   * not be spawned), or `timeoutMs` passes, stops it and throws with its output.
   */
  waitReady(what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void>;
}

/**
 * Watches a spawned server: reaped if the test process ends, its output kept (reading it also
 * keeps the pipes from filling up and blocking it), and unref'd, so that a test forgetting
 * stop() does not keep the test process alive (the exit handler kills it).
 */
export function supervise(child: ChildProcess, scratchDir: string, tailChars = 4000): Supervised {
  reapOnExit(child);
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-tailChars);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  child.unref();
  for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(child);
      await rm(scratchDir, { recursive: true, force: true });
    })();
    return stopping;
  };
  const shown = (): string => output.trim().slice(-4000);
  return {
    output: () => output,
    stop,
    async waitReady(what, ready, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (spawnError || child.exitCode !== null || child.signalCode !== null) {
          await stop();
          const why = spawnError?.message ?? `exited with ${child.exitCode ?? child.signalCode}`;
          throw new Error(`${what} ${why}: ${shown()}`);
        }
        if (await ready()) return;
        if (Date.now() > deadline) {
          await stop();
          throw new Error(`${what} did not answer PING within ${timeoutMs} ms: ${shown()}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
