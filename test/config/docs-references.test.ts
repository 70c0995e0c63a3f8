import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { configSchema } from '../../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The admin-facing pages whose metric names and keys must match the code. */
const PAGES = ['docs/operations.md', 'docs/troubleshooting.md', 'README.md'];

async function sourceText(dir: string): Promise<string> {
  let out = '';
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out += await sourceText(p);
    else if (e.name.endsWith('.ts')) out += await readFile(p, 'utf8');
  }
  return out;
}

/** The schemas a dotted key path may land on (both backends of a union), or none. */
function resolveKey(path: readonly string[]): boolean {
  let nodes: z.core.$ZodType[] = [configSchema];
  for (const key of path) {
    const next: z.core.$ZodType[] = [];
    const unwrap = (s: z.core.$ZodType): void => {
      if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) unwrap(s.unwrap());
      else if (s instanceof z.ZodPipe) unwrap(s.in);
      else if (s instanceof z.ZodUnion) s.options.forEach(unwrap);
      else if (s instanceof z.ZodArray) unwrap(s.element);
      else if (s instanceof z.ZodObject && key in s.shape) next.push(s.shape[key]!);
    };
    nodes.forEach(unwrap);
    if (next.length === 0) return false;
    nodes = next;
  }
  return true;
}

const SECTIONS = ['listen', 'volumes', 'metadata', 'objects', 'cache', 'auth', 'dsi', 'ops', 'bonjour', 'log'];

test('the admin docs name only metrics the gateway exports and configuration keys the schema has', async () => {
  const src = await sourceText(join(ROOT, 'src'));
  let metrics = 0;
  let keys = 0;
  for (const page of PAGES) {
    const text = await readFile(join(ROOT, page), 'utf8');
    for (const [name] of text.matchAll(/\bafpgw_[a-z_]+[a-z]\b/g)) {
      metrics++;
      assert.ok(src.includes(`'${name}'`), `${page} names the metric ${name}, which src/ does not register`);
    }
    // `cache.dirtyLimit`, `metadata.waitReplicas`, `auth.loginThrottle.freeFailures`; list
    // indices (volumes[0].name) are skipped over.
    for (const [, dotted] of text.matchAll(/`([a-z]+(?:\[\d+\])?(?:\.[A-Za-z]+)+)`/g)) {
      const path = dotted!.replace(/\[\d+\]/g, '').split('.');
      if (!SECTIONS.includes(path[0]!)) continue;
      keys++;
      assert.ok(resolveKey(path), `${page} names the key ${dotted}, which the schema does not have`);
    }
  }
  // The pages do name some, so the checks above ran on something.
  assert.ok(metrics >= 10, `only ${metrics} metric names found`);
  assert.ok(keys >= 10, `only ${keys} keys found`);
});
