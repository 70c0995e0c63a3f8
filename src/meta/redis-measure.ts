/**
 * Times every command a Redis connection sends, for the metadata latency metrics: one hook
 * on the connection's `sendCommand`, through which ioredis sends plain commands, scripts and
 * each command of a pipeline alike, so no call site needs to name its operation.
 */
import type { Command, Redis } from 'ioredis';
import { errorName, secondsSince, type MetaCallObserver } from './call-observer.js';
import { scriptName } from './redis-scripts.js';

/**
 * ioredis passes a command through sendCommand again when it flushes its offline queue or
 * resends after a reconnect; it is timed once, from its first pass to its reply.
 */
const timed = new WeakSet<Command>();

export function measureCommands(redis: Redis, observer: MetaCallObserver): void {
  const send = redis.sendCommand;
  redis.sendCommand = function (this: Redis, command: Command, stream?: unknown): unknown {
    if (!timed.has(command)) {
      timed.add(command);
      // Read before sending: a script's first send on a connection rewrites it into EVAL with its text.
      const op = command.name === 'evalsha' ? (scriptName(String(command.args[0])) ?? command.name) : command.name;
      const started = performance.now();
      command.promise.then(
        () => observer.observe(op, 'ok', secondsSince(started)),
        (err: unknown) => observer.observe(op, errorName(err), secondsSince(started)),
      );
    }
    return (send as (command: Command, stream?: unknown) => unknown).call(this, command, stream);
  } as Redis['sendCommand'];
}
