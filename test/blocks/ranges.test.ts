import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Ranges } from '../../src/blocks/ranges.js';

const SIZE = 64;
const span = fc.tuple(fc.nat(SIZE), fc.nat(SIZE)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);

test('Ranges behaves like a set of bytes', () => {
  fc.assert(
    fc.property(fc.array(span, { maxLength: 12 }), span, fc.nat(SIZE), (adds, [qs, qe], clipAt) => {
      const r = new Ranges();
      const model = new Array<boolean>(SIZE).fill(false);
      for (const [s, e] of adds) {
        r.add(s, e);
        for (let i = s; i < e; i++) model[i] = true;
      }
      // Canonical form: sorted, disjoint, non-adjacent, non-empty.
      const l = r.list();
      for (let i = 0; i < l.length; i++) {
        assert.ok(l[i]![0] < l[i]![1]);
        if (i > 0) assert.ok(l[i - 1]![1] < l[i]![0]);
      }
      assert.equal(r.size, model.filter(Boolean).length);
      assert.equal(r.covers(qs, qe), model.slice(qs, qe).every(Boolean));
      const gapBytes = new Array<boolean>(SIZE).fill(false);
      for (const [s, e] of r.gaps(qs, qe)) for (let i = s; i < e; i++) gapBytes[i] = true;
      for (let i = 0; i < SIZE; i++) assert.equal(gapBytes[i], i >= qs && i < qe && !model[i], `gap at ${i}`);
      const c = r.clone().clip(clipAt);
      assert.equal(c.size, model.slice(0, clipAt).filter(Boolean).length);
      assert.equal(r.size, model.filter(Boolean).length, 'clone is independent');
    }),
    { numRuns: 500 },
  );
});
