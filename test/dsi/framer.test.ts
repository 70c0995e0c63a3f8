import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DsiFramer, DsiFrameError } from '../../src/dsi/framer.js';
import { DSI_HEADER_SIZE, writeHeader } from '../../src/dsi/header.js';

interface Spec {
  flags: number;
  command: number;
  requestId: number;
  code: number;
  payload: Uint8Array;
}

const frameArb: fc.Arbitrary<Spec> = fc.record({
  flags: fc.constantFrom(0, 1),
  command: fc.constantFrom(1, 2, 3, 4, 5, 6, 8),
  requestId: fc.integer({ min: 0, max: 0xffff }),
  code: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

function encode(s: Spec): Buffer {
  const h = writeHeader({ flags: s.flags, command: s.command, requestId: s.requestId, codeOrOffset: s.code, length: s.payload.length, reserved: 0 });
  return Buffer.concat([h, Buffer.from(s.payload)]);
}

/** Splits a buffer at the given cut points (sorted, deduplicated, within range). */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out;
}

test('frames survive any split of a pipelined stream', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (specs, cuts) => {
      const stream = Buffer.concat(specs.map(encode));
      const framer = new DsiFramer(() => 1 << 20);
      const got = split(stream, cuts).flatMap((c) => framer.push(c));
      assert.equal(got.length, specs.length);
      got.forEach((f, i) => {
        const s = specs[i]!;
        assert.equal(f.flags, s.flags);
        assert.equal(f.command, s.command);
        assert.equal(f.requestId, s.requestId);
        assert.equal(f.codeOrOffset, s.code);
        assert.deepEqual(new Uint8Array(f.payload), s.payload);
      });
      assert.equal(framer.bufferedBytes, 0);
    }),
    { numRuns: 500 },
  );
});

test('one byte at a time', () => {
  const specs: Spec[] = [
    { flags: 0, command: 2, requestId: 1, code: 0, payload: Buffer.from([0x10, 0x00]) },
    { flags: 0, command: 6, requestId: 2, code: 20, payload: Buffer.alloc(1000, 7) },
  ];
  const stream = Buffer.concat(specs.map(encode));
  const framer = new DsiFramer(() => 1 << 20);
  const got = [];
  for (let i = 0; i < stream.length; i++) got.push(...framer.push(stream.subarray(i, i + 1)));
  assert.equal(got.length, 2);
  assert.equal(got[1]!.payload.length, 1000);
  assert.equal(got[1]!.codeOrOffset, 20);
});

test('an oversized length is refused from the header alone, before its payload arrives', () => {
  const framer = new DsiFramer(() => 4096);
  const h = writeHeader({ flags: 0, command: 2, requestId: 9, codeOrOffset: 0, length: 0xffffffff, reserved: 0 });
  assert.deepEqual(framer.push(h), []);
  assert.ok(framer.error instanceof DsiFrameError);
  assert.equal(framer.bufferedBytes, 0);
});

test('bad flags are refused, and frames before the bad header are still delivered', () => {
  const framer = new DsiFramer(() => 4096);
  const good = writeHeader({ flags: 0, command: 3, requestId: 1, codeOrOffset: 0, length: 0, reserved: 0 });
  const bad = writeHeader({ flags: 7, command: 2, requestId: 9, codeOrOffset: 0, length: 0, reserved: 0 });
  const frames = framer.push(Buffer.concat([good, bad]));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.requestId, 1);
  assert.ok(framer.error instanceof DsiFrameError);
  assert.deepEqual(framer.push(good), [], 'nothing is parsed after an error');
});

test('buffered bytes never exceed one allowed frame plus the chunk being pushed', () => {
  const max = 2048;
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 20000 }), fc.integer({ min: 1, max: 700 }), (garbage, chunk) => {
      const framer = new DsiFramer(() => max);
      for (let i = 0; i < garbage.length && !framer.error; i += chunk) {
        framer.push(Buffer.from(garbage.subarray(i, i + chunk)));
        assert.ok(framer.bufferedBytes <= DSI_HEADER_SIZE + max + chunk, `buffered ${framer.bufferedBytes}`);
      }
    }),
    { numRuns: 300 },
  );
});
