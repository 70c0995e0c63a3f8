import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal, replay, type JournalRecord } from '../../src/blocks/journal.js';

const w = (i: number, s: number, e: number, q: number, n: number, b: [number, number] | null = null): JournalRecord => ({ t: 'w', v: 'tm', f: 20, k: 'd', i, z: 1024, b, s, e, q, n });

test('replay: writes accumulate, commits settle what they covered, drops forget', () => {
  const lines = [
    w(0, 0, 100, 1, 100),
    w(0, 100, 200, 2, 200),
    w(1, 0, 10, 1, 1034, [20, 7]),
    { t: 'c', v: 'tm', f: 20, k: 'd', i: 0, r: [20, 9], q: 1 } as JournalRecord, // covered only the first write
    w(2, 0, 5, 1, 2053),
    { t: 'x', v: 'tm', f: 20, k: 'd', i: 2 } as JournalRecord,
  ];
  const r = replay(lines.map((l) => JSON.stringify(l)).join('\n') + '\n{"t":"w","v":"tm"'); // torn last line
  assert.equal(r.skipped, 1);
  const byIndex = new Map(r.blocks.map((b) => [b.index, b]));
  assert.deepEqual([...byIndex.keys()].sort(), [0, 1]);
  assert.deepEqual(byIndex.get(0)!.base, { file: 20, gen: 9 }, 'a partial commit re-bases the block');
  assert.deepEqual(byIndex.get(0)!.written.list(), [[100, 200]], 'only the write after the commit remains');
  assert.deepEqual(byIndex.get(1)!.base, { file: 20, gen: 7 });
  assert.equal(byIndex.get(1)!.blockSize, 1024);
  assert.equal(r.lengths.get('tm\u000020\u0000d'), 2053, 'the last length recorded for the fork');
});

test('replay: a commit covering every write makes the block clean; a later length record wins', () => {
  const lines = [w(0, 0, 100, 1, 100), { t: 'c', v: 'tm', f: 20, k: 'd', i: 0, r: null, q: 1 } as JournalRecord, w(3, 0, 1, 1, 3073), { t: 'l', v: 'tm', f: 20, k: 'd', n: 3000 } as JournalRecord];
  const r = replay(lines.map((l) => JSON.stringify(l)).join('\n'));
  assert.deepEqual(r.blocks.map((b) => b.index), [3]);
  assert.equal(r.lengths.get('tm\u000020\u0000d'), 3000);
});

test('replay: a re-base record moves the base and keeps the writes since', () => {
  const lines = [w(0, 0, 100, 1, 100, [20, 1]), { t: 'b', v: 'tm', f: 20, k: 'd', i: 0, r: [20, 5] } as JournalRecord, w(0, 200, 300, 2, 300)];
  const r = replay(lines.map((l) => JSON.stringify(l)).join('\n'));
  assert.deepEqual(r.blocks[0]!.base, { file: 20, gen: 5 });
  assert.deepEqual(r.blocks[0]!.written.list(), [[0, 100], [200, 300]]);
});

test('Journal appends, survives reopening, and rewrites atomically', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-journal-'));
  try {
    const path = join(dir, 'journal');
    const a = Journal.open(path);
    assert.equal(a.replay.blocks.length, 0);
    a.journal.append(w(0, 0, 10, 1, 10));
    a.journal.append(w(1, 0, 10, 1, 1034));
    await a.journal.fsync();
    a.journal.close();
    await appendFile(path, '{"t":"w"'); // a crash mid-append
    const b = Journal.open(path);
    assert.equal(b.replay.blocks.length, 2);
    assert.equal(b.replay.skipped, 1);
    await b.journal.rewrite([w(1, 0, 10, 1, 1034)]);
    b.journal.append(w(1, 10, 20, 2, 1044));
    b.journal.close();
    const c = Journal.open(path);
    assert.deepEqual(c.replay.blocks.map((x) => [x.index, x.written.list()]), [[1, [[0, 20]]]]);
    assert.equal(c.replay.skipped, 0);
    c.journal.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
