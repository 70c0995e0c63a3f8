/**
 * Lua scripts that are safe to send twice.
 *
 * ioredis sends a command again when the connection it went out on closes before the reply
 * came (autoResendUnfulfilledCommands), and that is exactly what a Sentinel failover does:
 * the old master may have run the script and replicated its effects to the replica that is
 * now master, and then the script runs a second time there. For most of our changes a second
 * run is not harmless: a create would answer "exists", a move "not found", a compare-and-set
 * "conflict", a byte-range lock would overlap itself.
 *
 * So every script that changes state runs under a guard: the call carries one more key, an
 * operation key unique to this call (ioredis resends the same arguments, so the resend
 * carries the same key), and the script stores its reply there in the same atomic step as
 * its effects. A second run finds the key and answers the stored reply without touching
 * anything. Effects and key replicate together (a script's writes reach replicas as one
 * MULTI/EXEC), so a new master has either both or neither.
 *
 * The key shares the hash tag of the script's first key, so Redis Cluster keeps it in the
 * same slot, and lives OP_TTL_MS: longer than a call can wait for Redis to come back
 * (a queued command is failed after `failoverWaitMs`, see redis-store.ts), so a resend
 * always finds it.
 *
 * A guarded script also learns who sent it: `afpgwOrigin`, one id per connection (see
 * originOf), which change notices carry so that a node can ignore its own.
 */
import type { Redis } from 'ioredis';
import { createHash, randomBytes } from 'node:crypto';

export interface LuaScript {
  numberOfKeys: number;
  lua: string;
  /** Running it twice leaves the same state and gives the same reply (reads): no guard. */
  idempotent?: boolean;
}

/** How long a guarded script's reply is kept for a resend; see the module comment. */
export const OP_TTL_MS = 120_000;

const origins = new WeakMap<Redis, string>();
let sequence = 0;

/**
 * The id of one connection's changes: operation keys start with it (so two gateways never
 * make the same one) and guarded scripts see it as `afpgwOrigin`.
 */
export function originOf(redis: Redis): string {
  let id = origins.get(redis);
  if (id === undefined) origins.set(redis, (id = randomBytes(6).toString('base64url')));
  return id;
}

type ScriptFn = (...args: unknown[]) => Promise<unknown>;

/** Script names by the SHA1 of the text sent (what EVALSHA names), for the latency metrics. */
const namesBySha = new Map<string, string>();

/** The name a script was defined under, from the SHA1 an EVALSHA carries. */
export function scriptName(sha: string): string | undefined {
  return namesBySha.get(sha);
}

function define(redis: Redis, name: string, numberOfKeys: number, lua: string): void {
  redis.defineCommand(name, { numberOfKeys, lua });
  namesBySha.set(createHash('sha1').update(lua).digest('hex'), name);
}

/**
 * Defines each script as an ioredis command (and its *Buffer variant). Guarded scripts take
 * their keys and arguments as before: the operation key is added here, after the keys.
 */
export function defineScripts(redis: Redis, scripts: Record<string, LuaScript>): void {
  const commands = redis as unknown as Record<string, ScriptFn>;
  for (const [name, def] of Object.entries(scripts)) {
    if (def.idempotent) {
      define(redis, name, def.numberOfKeys, def.lua);
      continue;
    }
    define(redis, name, def.numberOfKeys + 1, guard(def.lua));
    const n = def.numberOfKeys;
    const origin = originOf(redis);
    for (const variant of [name, `${name}Buffer`]) {
      const send = commands[variant]!;
      commands[variant] = (...args: unknown[]) => send.apply(redis, [...args.slice(0, n), opKey(args[0], origin), ...args.slice(n), origin]);
    }
  }
}

function opKey(firstKey: unknown, origin: string): string {
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${String(firstKey)}:op:${origin}${sequence.toString(36)}`;
}

/**
 * The script body runs as a function, so its `return` hands the reply to the guard, which
 * stores it (msgpack keeps strings binary and integers exact) and returns it. KEYS and ARGV
 * lose the operation key and the origin before the body runs, so bodies that count or walk
 * them see what they did. A body that raises an error stores nothing: the error reaches the
 * caller, as before.
 */
function guard(lua: string): string {
  return `
local afpgwOpKey = table.remove(KEYS)
local afpgwOrigin = table.remove(ARGV)
local afpgwDone = redis.call('GET', afpgwOpKey)
if afpgwDone then return cmsgpack.unpack(afpgwDone) end
local afpgwReply = (function()
${lua}
end)()
redis.call('SET', afpgwOpKey, cmsgpack.pack(afpgwReply), 'PX', ${OP_TTL_MS})
return afpgwReply`;
}

/** Single-key scripts that share a prelude (the helpers each store's scripts use). */
export function scriptsWith(prelude: string, bodies: Record<string, string>, reads: ReadonlySet<string>): Record<string, LuaScript> {
  const out: Record<string, LuaScript> = {};
  for (const [name, body] of Object.entries(bodies)) out[name] = { numberOfKeys: 1, lua: prelude + body, idempotent: reads.has(name) };
  return out;
}
