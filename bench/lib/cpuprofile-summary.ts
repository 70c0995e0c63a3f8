/**
 * Sums a V8 .cpuprofile (node --cpu-prof, or the inspector's Profiler.stop) by function and by
 * file: self time (samples whose top frame is the function) and total time (samples with the
 * function anywhere on the stack, counted once per sample).
 *
 * Run: node dist/bench/lib/cpuprofile-summary.js <file.cpuprofile> [top=25] [--callers=name,name]
 * --callers: for each named function (self-time frames whose name matches exactly), its self
 * time split by the nearest project (src/) frame up the stack, to tell e.g. a writeSync of the
 * journal from a FileHandle.write of a block.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  share: number;
}

export interface Summary {
  totalMs: number;
  selfByFunction: Row[];
  selfByFile: Row[];
  totalByFunction: Row[];
}

/** Shortens a script URL to something readable: the path from src/, bench/, node_modules/ or node:. */
function shortFile(url: string): string {
  if (url === '') return '(native/vm)';
  const u = url.replace(/^file:\/\//, '');
  for (const marker of ['/node_modules/', '/dist/src/', '/dist/bench/', '/dist/test/']) {
    const at = u.lastIndexOf(marker);
    if (at >= 0) {
      const rest = u.slice(at + marker.length);
      if (marker === '/node_modules/') {
        const parts = rest.split('/');
        const pkg = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
        return `node_modules/${pkg}`;
      }
      return marker.slice(6) + rest; // src/..., bench/..., test/...
    }
  }
  return u;
}

function functionKey(cf: CallFrame): string {
  const fn = cf.functionName || '(anonymous)';
  if (cf.url === '') return fn;
  return `${fn}  ${shortFile(cf.url)}:${cf.lineNumber + 1}`;
}

export function summarize(p: CpuProfile): Summary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfFn = new Map<string, number>();
  const selfFile = new Map<string, number>();
  const totalFn = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0; // a sample's time is the gap to the next
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    totalUs += dt;
    const cf = node.callFrame;
    selfFn.set(functionKey(cf), (selfFn.get(functionKey(cf)) ?? 0) + dt);
    const file = cf.url === '' ? cf.functionName || '(native)' : shortFile(cf.url);
    selfFile.set(file, (selfFile.get(file) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const k = functionKey(byId.get(id)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      totalFn.set(k, (totalFn.get(k) ?? 0) + dt);
    }
  }
  const rows = (m: Map<string, number>): Row[] =>
    [...m.entries()].map(([name, us]) => ({ name, ms: us / 1000, share: totalUs > 0 ? us / totalUs : 0 })).sort((a, b) => b.ms - a.ms);
  return { totalMs: totalUs / 1000, selfByFunction: rows(selfFn), selfByFile: rows(selfFile), totalByFunction: rows(totalFn) };
}

/** Self time of frames named `name`, split by the nearest caller in src/ (or the direct caller). */
export function callers(p: CpuProfile, name: string): Row[] {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0;
    const node = byId.get(p.samples[i]!);
    if (!node || node.callFrame.functionName !== name) continue;
    total += dt;
    let key = '(no caller)';
    const direct = parent.get(node.id);
    if (direct !== undefined) key = functionKey(byId.get(direct)!.callFrame);
    for (let id = parent.get(node.id); id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id)!.callFrame;
      if (cf.url.includes('/dist/src/')) {
        key = functionKey(cf);
        break;
      }
    }
    out.set(key, (out.get(key) ?? 0) + dt);
  }
  return [...out.entries()].map(([k, us]) => ({ name: k, ms: us / 1000, share: total > 0 ? us / total : 0 })).sort((a, b) => b.ms - a.ms);
}

export function printSummary(s: Summary, top = 25): void {
  const line = (r: Row) => `  ${r.ms.toFixed(0).padStart(8)} ms ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.name}`;
  console.log(`profiled ${s.totalMs.toFixed(0)} ms of samples`);
  console.log(`self time by file/category (top ${top}):`);
  for (const r of s.selfByFile.slice(0, top)) console.log(line(r));
  console.log(`self time by function (top ${top}):`);
  for (const r of s.selfByFunction.slice(0, top)) console.log(line(r));
  console.log(`total (inclusive) time by function, project code and fs/net only (top ${top}):`);
  const interesting = s.totalByFunction.filter((r) => /src\/|bench\/|node:fs|node:net|node:internal\/fs|node:internal\/stream|(garbage collector)/.test(r.name) || r.name.startsWith('('));
  for (const r of interesting.slice(0, top)) console.log(line(r));
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist/bench/lib/cpuprofile-summary.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  const args = process.argv.slice(3);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const top = Number(args.find((a) => /^\d+$/.test(a)) ?? 25);
  printSummary(summarize(profile), top);
  const names = args.find((a) => a.startsWith('--callers='))?.slice('--callers='.length).split(',') ?? [];
  for (const n of names) {
    console.log(`self time of ${n}, by nearest src/ caller:`);
    for (const r of callers(profile, n).slice(0, 10)) console.log(`  ${r.ms.toFixed(0).padStart(8)} ms ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.name}`);
  }
}
