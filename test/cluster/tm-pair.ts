/**
 * Gateway processes (`afp-gateway serve`) of a pair for the Time Machine cluster tests
 * (tm-failover, tm-sentinel-failover): one Time Machine volume, loopback, each node with its
 * own cache directory over the metadata and objects the test gives, and the process's log.
 * A test process never leaves one behind: whatever is still running when it exits (or is
 * interrupted) gets SIGKILL, as redis-server.ts does for its servers.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { S3ObjectsConfig } from '../../src/config/schema.js';
import { startServe } from '../helpers/cli.js';
import { TEST_SCRYPT } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { reapOnExit } from '../helpers/reap.js';
import { TM_VOLUME } from '../data/time-machine.js';

export interface PairNode {
  name: string;
  host: string;
  port: number;
  child: ChildProcess;
  /** The node's config file, for the CLI (`user add --config`). */
  file: string;
  /** Everything the process wrote so far (pino JSON lines). */
  output: () => string;
}

export interface PairNodeOptions {
  work: string;
  name: string;
  metadata: Record<string, unknown>;
  objects: S3ObjectsConfig;
  /** Every process started, so the test's `after` can SIGKILL what is left. */
  children: Set<ChildProcess>;
}

/** Writes a node's config file (`<work>/<name>.yaml`); `port` 0 when the file is only for the CLI. */
export async function writePairConfig(o: Omit<PairNodeOptions, 'children'>, port: number): Promise<string> {
  const cfg = {
    serverName: 'Pair',
    dataDir: join(o.work, o.name),
    listen: { host: '127.0.0.1', port, fallbackPort: null },
    metadata: o.metadata,
    objects: o.objects,
    // Each node its own cache: a node started late has an empty one and reads only what reached S3 and the metadata store.
    cache: { dir: join(o.work, o.name, 'cache'), size: '1GiB', dirtyLimit: '256MiB' },
    // 256 KiB blocks: a 1 MiB band spans four, so writes straddle blocks as 8 MiB bands do with 4 MiB blocks.
    volumes: [{ name: TM_VOLUME, timeMachine: true, blockSize: '256KiB' }],
    auth: { scrypt: TEST_SCRYPT },
    log: { level: 'info' },
  };
  const file = join(o.work, `${o.name}.yaml`);
  await writeFile(file, stringify(cfg));
  return file;
}

export async function startPairNode(o: PairNodeOptions): Promise<PairNode> {
  const port = await freePort();
  const file = await writePairConfig(o, port);
  const { child, output } = await startServe(['--config', file], testKnobsUnset());
  reapOnExit(child);
  o.children.add(child);
  child.once('exit', () => o.children.delete(child));
  return { name: o.name, host: '127.0.0.1', port, child, file, output };
}

/**
 * The tests' own AFPGW_TEST_* variables, unset for a gateway process: it reads every AFPGW_*
 * variable as a configuration override and refuses unknown keys.
 */
export function testKnobsUnset(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('AFPGW_TEST_')).map((k) => [k, undefined]));
}

/**
 * The warn/error/fatal lines of a gateway's pino log, one short line each: seconds since `since`
 * (epoch ms; default the first line's time), level, message, the AFP command, the error.
 */
export function logProblems(log: string, o: { max?: number; since?: number } = {}): string[] {
  const out: string[] = [];
  for (const line of log.split('\n')) {
    if (!/"level":(40|50|60)\b/.test(line)) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      out.push(line.slice(0, 300));
      continue;
    }
    const time = typeof rec.time === 'number' ? rec.time : 0;
    const since = o.since ?? time;
    const err = rec.err as { type?: unknown; message?: unknown } | undefined;
    const level = rec.level === 40 ? 'WARN' : rec.level === 50 ? 'ERROR' : 'FATAL';
    out.push(
      `${((time - since) / 1000).toFixed(3).padStart(8)} s ${level} ${String(rec.msg)}` +
        (rec.cmd !== undefined ? ` [${String(rec.cmd)}]` : '') +
        (err ? `: ${String(err.type)}: ${String(err.message)}` : ''),
    );
  }
  const max = o.max ?? 40;
  return out.length > max ? [...out.slice(0, max), `… ${out.length - max} more`] : out;
}

/** Copies the nodes' whole logs out of the work directory (which the test removes) and says where. */
export async function keepLogs(tag: string, nodes: PairNode[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `afpgw-${tag}-logs-`));
  for (const n of nodes) await writeFile(join(dir, `${n.name}.log`), n.output());
  return dir;
}
