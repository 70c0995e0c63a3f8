import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reader, WireUnderflow } from '../../src/wire/reader.js';
import { Writer } from '../../src/wire/writer.js';

test('writer and reader round-trip every field type', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: -0x80000000, max: 0x7fffffff }),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.uint8Array({ maxLength: 255 }),
      (a, b, c, d, e, s) => {
        const buf = new Writer(1).u8(a).u16(b).u32(c).i32(d).i64(e).pstring(s).alignEven().u8(1).finish();
        const r = new Reader(buf);
        assert.equal(r.u8(), a);
        assert.equal(r.u16(), b);
        assert.equal(r.u32(), c);
        assert.equal(r.i32(), d);
        assert.equal(r.i64(), e);
        assert.deepEqual(new Uint8Array(r.pstring()), s);
        r.alignEven();
        assert.equal(r.u8(), 1);
        assert.equal(r.remaining, 0);
      },
    ),
  );
});

test('reading past the end throws WireUnderflow, never returns garbage', () => {
  const r = new Reader(Buffer.from([1, 2, 3]));
  assert.equal(r.u16(), 0x0102);
  assert.throws(() => r.u16(), WireUnderflow);
  assert.throws(() => new Reader(Buffer.from([5, 1])).pstring(), WireUnderflow);
});

test('a reader bounded by an end offset does not see past it', () => {
  const r = new Reader(Buffer.from([1, 2, 3, 4]), 1, 3);
  assert.equal(r.remaining, 2);
  assert.equal(r.u16(), 0x0203);
  assert.throws(() => r.u8(), WireUnderflow);
});

test('patching offsets after the fact', () => {
  const w = new Writer(2).u16(0).bytes(Buffer.from('abc'));
  w.patchU16(0, w.length);
  assert.deepEqual([...w.finish()], [0, 5, 0x61, 0x62, 0x63]);
});
