#!/usr/bin/env node
// Runs the compiled benchmarks in bench/ (all, or those whose file names contain an argument).
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const filters = process.argv.slice(2);
const files = readdirSync('dist/bench').filter((f) => f.endsWith('.js') && (filters.length === 0 || filters.some((x) => f.includes(x))));
let status = 0;
for (const f of files.sort()) {
  console.log(`== ${f}`);
  const r = spawnSync(process.execPath, [`dist/bench/${f}`], { stdio: 'inherit' });
  status ||= r.status ?? 1;
}
process.exit(status);
