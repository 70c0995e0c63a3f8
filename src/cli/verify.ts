/**
 * `afp-gateway verify VOLUME [--repair] [--json]`: checks that a volume's metadata agrees
 * with itself and with the objects in the bucket (src/blocks/verify.ts), prints a summary
 * per check and then each problem, and with --repair fixes what is safe to fix.
 *
 * A check alone is safe while gateways run. A repair is not: a running node holds block
 * maps of open forks in memory (and, on the embedded store, learns of nobody else's
 * changes), so --repair refuses while any node holds a lease on the metadata store.
 *
 * Exit status: 0 clean (or everything found was repaired), 1 problems remain, 2 usage.
 */
import { verifyVolume, type CheckSummary, type Problem, type VerifyReport } from '../blocks/verify.js';
import { loadConfig } from '../config/load.js';
import { openMetaStoreFromConfig } from '../meta/from-config.js';
import { openObjectStore } from '../objects/open.js';
import { VolumeCatalog } from '../volume/catalog.js';
import { folder } from '../volume/names.js';
import { volumeKey } from '../volume/volume-set.js';
import type { CliOptions } from './options.js';
import { formatBytes, Ticker } from './progress.js';
import { configSource } from './serve.js';

const USAGE = 'usage: afp-gateway verify VOLUME [--config FILE] [--repair] [--json]';

/**
 * With gateways running, an unreferenced object younger than this may be an upload whose
 * commit has not landed yet; it is not called orphaned. A repair runs with every gateway
 * stopped, when only objects.gcGraceSeconds applies.
 */
const LIVE_MIN_AGE_MS = 10 * 60_000;

export async function verify(opts: CliOptions): Promise<number> {
  const [name, extra] = opts.positionals;
  if (!name || extra !== undefined) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  const config = await loadConfig(configSource(opts));
  const def = new VolumeCatalog(config.volumes).find(name);
  if (!def) {
    process.stderr.write(`afp-gateway verify: no volume named ${JSON.stringify(name)} in the configuration (volumes: ${config.volumes.map((v) => v.name).join(', ')})\n`);
    return 2;
  }
  const meta = await openMetaStoreFromConfig(config.metadata);
  try {
    const live = await meta.listNodes();
    if (opts.repair && live.length > 0) {
      const nodes = live.map((n) => `${n.id} (${n.host}:${n.port})`).join(', ');
      process.stderr.write(
        `afp-gateway verify: --repair needs every gateway on this metadata store stopped; running: ${nodes}.\n` +
          'Stop them (systemctl stop afp-gateway) and run it again, or run verify without --repair to only check.\n' +
          '(A node that was killed holds its lease for up to 15 s more.)\n',
      );
      return 1;
    }
    const objects = await openObjectStore(config.objects);
    const ticker = new Ticker(`verify ${def.name}`);
    let report: VerifyReport;
    try {
      const key = volumeKey(def);
      const fold = folder(def.caseSensitive);
      const graceMs = config.objects.gcGraceSeconds * 1000;
      report = await verifyVolume({
        volumeKey: key,
        audit: meta.audit(key, { fold }),
        ns: meta.namespace(key, { fold }),
        objects,
        repair: opts.repair,
        live: live.length > 0,
        stillStopped: async () => (await meta.listNodes()).length === 0,
        orphanMinAgeMs: live.length > 0 ? Math.max(graceMs, LIVE_MIN_AGE_MS) : graceMs,
        progress: (phase, n) => ticker.update(phase, n),
      });
    } finally {
      ticker.clear();
      await objects.close();
    }
    if (opts.json) process.stdout.write(JSON.stringify({ volume: def.name, ...report, liveNodes: live.map((n) => n.id) }, null, 2) + '\n');
    else process.stdout.write(render(def.name, report, live.length));
    return report.remaining === 0 ? 0 : 1;
  } finally {
    await meta.close();
  }
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function summaryLine(c: CheckSummary): string {
  const n = c.counts;
  const what: Record<CheckSummary['check'], () => string> = {
    namespace: () => `${plural(n.nodes ?? 0, 'node')} (${plural(n.files ?? 0, 'file')}, ${plural(n.directories ?? 0, 'directory', 'directories')}), ${plural(n.entries ?? 0, 'entry', 'entries')}`,
    'block maps': () => `${plural(n.maps ?? 0, 'map')}, ${plural(n.blocks ?? 0, 'block')}`,
    objects: () => `${plural(n.objects ?? 0, 'object')}, ${formatBytes(n.bytes ?? 0)}`,
    'gc queue': () => plural(n.entries ?? 0, 'entry', 'entries'),
    counters: () => `CNID ${n.lastId ?? 0}, generation ${n.gen ?? 0}`,
  };
  const verdict = c.problems === 0 ? 'ok' : plural(c.problems, 'problem');
  return `  ${c.check.padEnd(11)} ${what[c.check]()}: ${verdict}${c.note ? `\n${' '.repeat(14)}(${c.note})` : ''}`;
}

function problemLines(p: Problem, repaired: boolean): string {
  const action = !repaired ? `repair: ${p.repair}` : p.fixed ? `repaired: ${p.repair}` : p.repairable ? `NOT repaired (it changed meanwhile, or the repair failed): ${p.repair}` : `not repairable: ${p.repair}`;
  return `  ${p.path}\n      ${p.what}\n      ${action}\n`;
}

function render(name: string, r: VerifyReport, live: number): string {
  const lines = [`verify ${name} (key ${r.volumeKey})${live > 0 ? `, alongside ${plural(live, 'running gateway')}` : ''}`, ...r.checks.map(summaryLine)];
  let out = lines.join('\n') + '\n';
  if (r.problems.length === 0) return out + 'no problems found\n';
  out += '\nproblems:\n' + r.problems.map((p) => problemLines(p, r.repaired)).join('');
  const total = r.problems.length;
  if (r.repaired) {
    out += `\n${plural(total, 'problem')} found, ${total - r.remaining} repaired, ${r.remaining} remaining\n`;
  } else {
    const fixable = r.problems.filter((p) => p.repairable).length;
    out += `\n${plural(total, 'problem')} found; ${fixable} can be repaired${fixable > 0 ? ' (stop the gateways and run verify --repair)' : ''}\n`;
  }
  return out;
}
