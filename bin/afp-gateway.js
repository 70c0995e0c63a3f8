#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled tree so `npm ci --omit=dev` installs stay runnable.
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : String(err)); process.exitCode = 1; },
);
