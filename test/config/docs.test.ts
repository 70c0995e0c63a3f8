import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { exampleConfigYaml } from '../../src/config/example.js';

test('docs/configuration.md carries the current example config verbatim', async () => {
  const doc = await readFile(fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url)), 'utf8');
  assert.ok(doc.includes('```yaml\n' + exampleConfigYaml), 'regenerate the example block in docs/configuration.md from src/config/example.ts');
});
