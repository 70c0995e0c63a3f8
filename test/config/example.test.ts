import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import * as z from 'zod';
import { exampleConfigYaml } from '../../src/config/example.js';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { scratch } from './fixture.js';

test('the example config parses, validates, and states exactly the defaults', async () => {
  const s = await scratch();
  try {
    const file = await s.write('config.yaml', exampleConfigYaml);
    const fromExample = await loadConfig({ file, env: {} });
    const defaults = await loadConfig({ env: {}, cwd: s.dir });
    assert.deepEqual(fromExample, defaults);
  } finally {
    await s.done();
  }
});

test('the example config is valid YAML with no unknown keys even without the loader', () => {
  const result = configSchema.safeParse(parse(exampleConfigYaml, { uniqueKeys: true }));
  assert.ok(result.success, JSON.stringify(!result.success && result.error.issues));
});

/** Every key name anywhere in the schema, including both backends of each union. */
function schemaKeys(s: z.core.$ZodType, out = new Set<string>()): Set<string> {
  if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable)
    return schemaKeys(s.unwrap(), out);
  if (s instanceof z.ZodPipe) return schemaKeys(s.in, out);
  if (s instanceof z.ZodUnion) for (const o of s.options) schemaKeys(o, out);
  if (s instanceof z.ZodArray) schemaKeys(s.element, out);
  if (s instanceof z.ZodObject)
    for (const [k, v] of Object.entries(s.shape)) {
      out.add(k);
      schemaKeys(v, out);
    }
  return out;
}

test('the example config mentions every key of the schema', () => {
  const keys = schemaKeys(configSchema);
  assert.ok(keys.size > 50, `only ${keys.size} keys found; is the walk broken?`);
  const missing = [...keys].filter((k) => !new RegExp(`^[ \\t#-]*${k}:`, 'm').test(exampleConfigYaml));
  assert.deepEqual(missing, []);
});
