/**
 * Gateway processes (`afp-gateway serve`) of a pair for the Time Machine cluster tests
 * (tm-failover, tm-sentinel-failover): one Time Machine volume, loopback, each node with its
 * own cache directory over the metadata and objects the test gives, and the process's log.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { S3ObjectsConfig } from '../../src/config/schema.js';
import { startServe } from '../helpers/cli.js';
import { TEST_SCRYPT } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
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

export async function startPairNode(o: PairNodeOptions): Promise<PairNode> {
  const port = await freePort();
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
  const { child, output } = await startServe(['--config', file], testKnobsUnset());
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

/** The last warn/error/fatal lines of a gateway's pino log. */
export function logProblems(log: string, max = 40): string {
  const lines = log.split('\n').filter((l) => /"level":(40|50|60)\b/.test(l));
  return lines.slice(-max).join('\n') || '(none)';
}
