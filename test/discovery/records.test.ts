import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADISK_SERVICE,
  AFP_SERVICE,
  DEVICE_INFO_SERVICE,
  SERVICES_ENUMERATION,
  adiskTxt,
  buildServiceRecords,
  escapeAdiskValue,
  hostLabel,
  instanceLabel,
  instanceNames,
  renamedHost,
  renamedInstance,
  truncateUtf8,
  volumeUuid,
} from '../../src/discovery/records.js';

const txtStrings = (data: unknown): string[] => (data as Buffer[]).map((b) => b.toString('utf8'));

test('adisk TXT: sys entry first, then one dkN per Time Machine volume', () => {
  assert.deepEqual(adiskTxt([{ name: 'TimeMachine' }, { name: 'Second', uuid: '6331E2D1-446C-B68C-3066-D685AADBE911' }]), [
    'sys=waMa=0,adVF=0x100',
    'dk0=adVN=TimeMachine,adVF=0x81',
    'dk1=adVN=Second,adVF=0x81,adVU=6331E2D1-446C-B68C-3066-D685AADBE911',
  ]);
});

test('adVN escaping: commas and backslashes get a backslash; "=" and non-ASCII pass as UTF-8', () => {
  assert.equal(escapeAdiskValue('a,b'), 'a\\,b');
  assert.equal(escapeAdiskValue('a\\b'), 'a\\\\b');
  assert.equal(escapeAdiskValue('x=y'), 'x=y');
  assert.equal(escapeAdiskValue(',\\,'), '\\,\\\\\\,');
  assert.deepEqual(adiskTxt([{ name: 'Büro, Keller=1\\2' }]).slice(1), ['dk0=adVN=Büro\\, Keller=1\\\\2,adVF=0x81']);
  // Decomposed input is sent precomposed (NFC), as the Mac's own names are.
  const [, entry] = adiskTxt([{ name: 'Bu\u0308ro' }]);
  assert.deepEqual(Buffer.from(entry!, 'utf8'), Buffer.from('dk0=adVN=B\u00fcro,adVF=0x81', 'utf8'));
  assert.deepEqual(Buffer.from(adiskTxt([{ name: '日本' }])[1]!, 'utf8').subarray(9, 15), Buffer.from([0xe6, 0x97, 0xa5, 0xe6, 0x9c, 0xac]));
});

test('instance names: at most 63 bytes, cut between characters, dots replaced', () => {
  assert.equal(instanceLabel('Office Backup'), 'Office Backup');
  assert.equal(instanceLabel('Office.Backup'), 'Office-Backup');
  const long = 'ü'.repeat(31); // 62 bytes: fits
  assert.equal(instanceLabel(long), long);
  const emoji = '👍'.repeat(31); // 124 bytes
  const cut = instanceLabel(emoji);
  assert.equal(cut, '👍'.repeat(15));
  assert.ok(Buffer.byteLength(cut) <= 63);
  const renamed = renamedInstance(emoji, 2);
  assert.ok(Buffer.byteLength(renamed) <= 63);
  assert.ok(renamed.endsWith(' (2)'));
  assert.equal(renamedInstance('Office', 1), 'Office');
  assert.equal(renamedInstance('Office', 3), 'Office (3)');
  // A combining mark stays with its letter.
  assert.equal(truncateUtf8('abcde\u0301', 6), 'abcd');
  assert.equal(truncateUtf8('abc', 10), 'abc');
});

test('host names: a DNS-safe label, renamed with -N', () => {
  assert.equal(hostLabel('Büro PC.example.org'), 'Buro-PC');
  assert.equal(hostLabel('...'), 'afp-gateway');
  assert.equal(renamedHost('office.local', 1), 'office.local');
  assert.equal(renamedHost('office.local', 2), 'office-2.local');
});

test('volume UUIDs are stable, distinct per volume and well-formed', () => {
  const sig = Buffer.alloc(16, 7);
  const a = volumeUuid(sig, 'timemachine');
  assert.equal(a, volumeUuid(sig, 'timemachine'));
  assert.notEqual(a, volumeUuid(sig, 'other'));
  assert.match(a, /^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
});

test('the full record set for one interface', () => {
  const r = buildServiceRecords({
    instance: 'Office',
    hostName: 'office.local',
    port: 10548,
    addresses: ['192.168.1.5', 'fe80::1%eth0', 'fd00::5'],
    timeMachineVolumes: [{ name: 'TM, Main' }],
    model: 'TimeCapsule8,119',
  });
  assert.deepEqual(
    r.enumeration.map((a) => [a.name, a.type, (a as { data: unknown }).data]),
    [AFP_SERVICE, ADISK_SERVICE, DEVICE_INFO_SERVICE].map((t) => [SERVICES_ENUMERATION, 'PTR', t]),
  );
  assert.deepEqual(
    r.pointers.map((a) => [a.name, (a as { data: unknown }).data, (a as { ttl: number }).ttl]),
    [AFP_SERVICE, ADISK_SERVICE, DEVICE_INFO_SERVICE].map((t) => [t, `Office.${t}`, 4500]),
  );
  const srv = (t: string) => r.instances.find((a) => a.type === 'SRV' && a.name === `Office.${t}`) as { data: { port: number; target: string }; ttl: number; flush: boolean };
  const txt = (t: string) => txtStrings((r.instances.find((a) => a.type === 'TXT' && a.name === `Office.${t}`) as { data: unknown }).data);
  assert.deepEqual(srv(AFP_SERVICE).data, { priority: 0, weight: 0, port: 10548, target: 'office.local' });
  assert.equal(srv(AFP_SERVICE).ttl, 120);
  assert.equal(srv(AFP_SERVICE).flush, true);
  assert.equal(srv(ADISK_SERVICE).data.port, 9);
  assert.equal(srv(DEVICE_INFO_SERVICE).data.port, 0);
  assert.deepEqual(txt(AFP_SERVICE), ['']);
  assert.deepEqual(txt(ADISK_SERVICE), ['sys=waMa=0,adVF=0x100', 'dk0=adVN=TM\\, Main,adVF=0x81']);
  assert.deepEqual(txt(DEVICE_INFO_SERVICE), ['model=TimeCapsule8,119']);
  assert.deepEqual(
    r.host.map((a) => [a.name, a.type, (a as { data: unknown }).data]),
    [
      ['office.local', 'A', '192.168.1.5'],
      ['office.local', 'AAAA', 'fe80::1'],
      ['office.local', 'AAAA', 'fd00::5'],
    ],
  );
  assert.deepEqual(instanceNames(r), [`Office.${AFP_SERVICE}`, `Office.${ADISK_SERVICE}`, `Office.${DEVICE_INFO_SERVICE}`]);
});

test('no Time Machine volume: no _adisk service at all', () => {
  const r = buildServiceRecords({ instance: 'X', hostName: 'x.local', port: 548, addresses: [], timeMachineVolumes: [], model: 'Xserve' });
  assert.ok(!r.pointers.some((p) => p.name === ADISK_SERVICE));
  assert.equal(r.pointers.length, 2);
});
