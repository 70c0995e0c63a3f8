import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { kFPNoErr, kFPUserNotAuth } from '../../src/afp/result-codes.js';
import { startTestGateway } from '../helpers/gateway.js';

const CLIENT = fileURLToPath(new URL('../../../test/fixtures/openssl-dhx2-client.mjs', import.meta.url));

/** Async on purpose: the server under test runs on this process's event loop. */
async function opensslClient(port: number, user: string, password: string): Promise<string> {
  const r = await promisify(execFile)(process.execPath, ['--openssl-legacy-provider', CLIENT, String(port), user, password], { encoding: 'utf8', timeout: 20_000 }).catch((e: { stdout?: string; stderr?: string }) => e);
  return (r.stdout ?? '').trim() || (r.stderr ?? '').trim();
}

function castAvailable(): boolean {
  const r = spawnSync(process.execPath, ['--openssl-legacy-provider', '-e', "require('crypto').createCipheriv('cast5-cbc', Buffer.alloc(16), Buffer.alloc(8))"]);
  return r.status === 0;
}

test('an independent DHX2 client on OpenSSL primitives logs in to our server', async (t) => {
  if (!castAvailable()) {
    if (process.env.CI === 'true') throw new Error('this Node build lacks the OpenSSL legacy provider (cast5)');
    return t.skip('OpenSSL legacy provider (cast5) not available in this Node build');
  }
  const g = await startTestGateway({ users: [{ name: 'zoë', password: 'päss wörd' }] });
  try {
    assert.equal(await opensslClient(g.port, 'zoë', 'päss wörd'), String(kFPNoErr));
    assert.equal(await opensslClient(g.port, 'zoë', 'wrong'), String(kFPUserNotAuth));
  } finally {
    await g.stop();
  }
});
