import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeServerInfo, encodeServerInfo, ipv6Bytes, addressFor, SRVR_INFO_MAX, type ServerInfo } from '../../src/afp/srvr-info.js';
import { decodeMacRoman, encodeMacRomanLossy, tryEncodeMacRoman } from '../../src/afp/mac-roman.js';
import { fromAfpDate, toAfpDate, AFP_EPOCH_UNIX } from '../../src/afp/dates.js';

const base: ServerInfo = {
  serverName: 'Büro Backup',
  machineType: 'afp-gateway',
  afpVersions: ['AFP3.4', 'AFP3.3'],
  uams: ['DHX2'],
  flags: 0x0bb8,
  signature: Buffer.alloc(16, 0xab),
  addresses: [
    { kind: 'ipv4', address: '192.0.2.7' },
    { kind: 'ipv4', address: '192.0.2.8', port: 10548 },
    { kind: 'ipv6', address: '2001:db8:0:0:0:0:0:1' },
    { kind: 'dns', name: 'backup.example' },
  ],
  directoryNames: [],
  utf8ServerName: 'Büro Backup',
};

test('server info round-trips, including every address type', () => {
  const d = decodeServerInfo(encodeServerInfo(base));
  assert.equal(d.serverName, 'Büro Backup', 'Mac Roman server name');
  assert.equal(d.utf8ServerName.normalize('NFC'), 'Büro Backup');
  assert.deepEqual(d.afpVersions, base.afpVersions);
  assert.deepEqual(d.signature, base.signature);
  assert.deepEqual(d.addresses, [
    { kind: 'ipv4', address: '192.0.2.7' },
    { kind: 'ipv4', address: '192.0.2.8', port: 10548 },
    { kind: 'ipv6', address: '2001:db8:0:0:0:0:0:1' },
    { kind: 'dns', name: 'backup.example' },
  ]);
});

test('the UTF-8 server name travels decomposed; the pstr is cut at 31 bytes', () => {
  const long = { ...base, serverName: 'x'.repeat(40), utf8ServerName: 'é' };
  const block = encodeServerInfo(long);
  const d = decodeServerInfo(block);
  assert.equal(d.serverName, 'x'.repeat(31));
  assert.equal(d.utf8ServerName, 'e\u0301');
});

test('random names and lists always decode to what was encoded, within 1400 bytes', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 31 }), fc.array(fc.constantFrom('DHX2', 'DHCAST128', 'No User Authent'), { maxLength: 3 }), (name, uams) => {
      const info = { ...base, serverName: name.replace(/[^\x20-\x7e]/g, 'a'), utf8ServerName: name, uams };
      const block = encodeServerInfo(info);
      assert.ok(block.length <= SRVR_INFO_MAX);
      const d = decodeServerInfo(block);
      assert.deepEqual(d.uams, uams);
      assert.equal(d.utf8ServerName.normalize('NFC'), name.normalize('NFC'));
    }),
  );
});

test('addresses the client could not reach again are never advertised', () => {
  assert.equal(addressFor('0.0.0.0', 548), undefined);
  assert.equal(addressFor('::', 548), undefined);
  assert.deepEqual(addressFor('::ffff:10.1.2.3', 548), { kind: 'ipv4', address: '10.1.2.3', port: 548 });
  assert.deepEqual(ipv6Bytes('::1'), Buffer.from('00000000000000000000000000000001', 'hex'));
  assert.deepEqual(ipv6Bytes('fe80::1:2'), Buffer.from('fe800000000000000000000000010002', 'hex'));
});

test('Mac Roman: round trip of every byte; unmappable characters are reported', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  assert.deepEqual(encodeMacRomanLossy(decodeMacRoman(all)), all);
  assert.equal(tryEncodeMacRoman('日本'), undefined);
  assert.deepEqual(tryEncodeMacRoman('Café'), Buffer.from([0x43, 0x61, 0x66, 0x8e]));
});

test('AFP dates count seconds from 2000-01-01 UTC and clamp to 32 bits', () => {
  assert.equal(toAfpDate(AFP_EPOCH_UNIX * 1000), 0);
  assert.equal(toAfpDate(Date.UTC(2000, 0, 1, 0, 1)), 60);
  assert.equal(fromAfpDate(60), Date.UTC(2000, 0, 1, 0, 1));
  assert.equal(toAfpDate(Date.UTC(2100, 0, 1)), 0x7fffffff);
});
