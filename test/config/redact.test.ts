import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, redactConfig } from '../../src/config/load.js';

test('redaction hides passwords, secret keys and URL credentials, and nothing else', () => {
  const cfg = parseConfig({
    volumes: [{ name: 'TM', password: 'vol-pw' }, { name: 'Open' }],
    metadata: { backend: 'redis', url: 'redis://afp:redis-pw@redis.example:6379/0', password: 'redis-pw' },
    objects: { backend: 's3', bucket: 'b', accessKeyId: 'AKIA', secretAccessKey: 'aws-secret', endpoint: 'https://minio:9000' },
  });
  const red = redactConfig(cfg);
  const text = JSON.stringify(red);
  for (const secret of ['vol-pw', 'redis-pw', 'aws-secret']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);

  const r = red as typeof cfg;
  assert.equal(r.volumes[0]!.password, '***');
  assert.equal('password' in r.volumes[1]!, false, 'an absent password stays absent');
  assert.equal(r.metadata.backend === 'redis' && r.metadata.url, 'redis://afp:***@redis.example:6379/0');
  assert.equal(r.metadata.backend === 'redis' && r.metadata.password, '***');
  assert.equal(r.objects.backend === 's3' && r.objects.secretAccessKey, '***');
  assert.equal(r.objects.backend === 's3' && r.objects.accessKeyId, 'AKIA');
  assert.equal(r.objects.backend === 's3' && r.objects.endpoint, 'https://minio:9000');
  assert.equal(r.serverName, cfg.serverName);
  assert.equal(r.cache.size, cfg.cache.size);

  // The original is untouched.
  assert.equal(cfg.volumes[0]!.password, 'vol-pw');
});

test('redaction of URLs: a lone userinfo is treated as a password; unparsable URLs vanish', () => {
  assert.deepEqual(redactConfig({ url: 'redis://:pw@h:6379' }), { url: 'redis://:***@h:6379' });
  assert.deepEqual(redactConfig({ url: 'redis://token@h' }), { url: 'redis://***@h' });
  assert.deepEqual(redactConfig({ url: 'redis://h:6379' }), { url: 'redis://h:6379' });
  assert.deepEqual(redactConfig({ url: 'not a url with pw' }), { url: '***' });
  assert.deepEqual(redactConfig([{ sentinelPassword: 'x' }, 3, null]), [{ sentinelPassword: '***' }, 3, null]);
});
