#!/usr/bin/env node
// Runs every compiled test file with node's own test runner.
// Pass file-name fragments to run a subset: `node scripts/run-tests.mjs dsi cast`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// A source path works too: test/infra/infra.test.ts matches dist/test/infra/infra.test.js.
const filters = process.argv.slice(2).map((f) => f.replace(/\.ts$/, '.js'));
const files = walk('dist/test').filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const res = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(res.status ?? 1);
