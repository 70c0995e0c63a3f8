/**
 * Child processes a test process must never leave behind (servers, gateways): whatever is
 * still running when the test process exits, or is ended by a signal, gets SIGKILL.
 */
import type { ChildProcess } from 'node:child_process';

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
