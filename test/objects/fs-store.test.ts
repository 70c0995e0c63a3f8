import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { escapeName, pathParts, unescapeName } from '../../src/objects/fs-layout.js';
import { FsObjectStore } from '../../src/objects/fs-store.js';
import { compareKeys } from '../../src/objects/keys.js';
import { openObjectStore } from '../../src/objects/open.js';
import { keysOf, objectStoreContract } from './object-store-contract.js';

async function tempRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'afpgw-objects-'));
}

async function withStore(fn: (s: FsObjectStore, root: string) => Promise<void>): Promise<void> {
  const parent = await tempRoot();
  const root = join(parent, 'objects');
  const s = await FsObjectStore.open(root);
  try {
    await fn(s, root);
  } finally {
    await s.close();
    await rm(parent, { recursive: true, force: true });
  }
}

objectStoreContract('FsObjectStore', async () => {
  const parent = await tempRoot();
  const store = await FsObjectStore.open(join(parent, 'objects'));
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(parent, { recursive: true, force: true });
    },
  };
});

/** Every file below dir, as paths relative to it. */
async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

describe('FsObjectStore layout', () => {
  it('fans a block key out by segment and leading characters', () => {
    assert.deepEqual(pathParts('3/1234/0-1'), ['3%2F', '3%2F', '12', '1234%2F', '0-', '0-1']);
    assert.deepEqual(pathParts('a'), ['a', 'a']);
    // Nothing a key can hold yields ".", "..", a leading dot or a capital in a name.
    assert.deepEqual(pathParts('.x/..y/Z'), ['%2Ex', '%2Ex%2F', '%2E.', '%2E.y%2F', '%5A', '%5A']);
  });

  it('escapes names reversibly, and only one spelling decodes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), (s) => {
        const name = escapeName(s);
        assert.match(name, /^[a-z0-9_%-][a-z0-9_.%A-F-]*$/);
        assert.equal(unescapeName(name), s);
      }),
    );
    assert.equal(unescapeName('%61'), undefined);
    assert.equal(unescapeName('.tmp'), undefined);
    assert.equal(unescapeName('A'), undefined);
    assert.equal(unescapeName('%FF'), undefined);
  });

  it('stores objects where the layout says, and nothing else', async () => {
    await withStore(async (s, root) => {
      await s.put('3/1234/0-1', Buffer.from('x'));
      assert.deepEqual(await filesBelow(root), [join('3%2F', '3%2F', '12', '1234%2F', '0-', '0-1')]);
    });
  });

  it('lists tricky keys in S3 order (UTF-8 bytes)', async () => {
    // Keys that are prefixes of others, "directories" of others, and followed by characters
    // on either side of "/" and ".": the cases a naive directory walk gets wrong.
    const keys = ['a', 'a-b', 'a/b', 'a/b/c', 'a/b-c', 'a.b', 'a0', 'ab', 'A', '-', 'a/b/c/d', '\u00e9', '\u{1F600}', '\uFFFD', 'a b', 'a!'];
    await withStore(async (s) => {
      for (const k of keys) await s.put(k, Buffer.from(k));
      const expected = [...keys].sort(compareKeys);
      assert.deepEqual(await keysOf(s, ''), expected);
      for (const k of keys) {
        assert.deepEqual(await keysOf(s, '', { after: k }), expected.filter((x) => compareKeys(x, k) > 0), `after ${k}`);
        assert.deepEqual(await keysOf(s, k), expected.filter((x) => x.startsWith(k)), `prefix ${k}`);
      }
    });
  });

  it('agrees with a sorted model for random keys, prefixes, after and limit', async () => {
    // A small alphabet makes shared prefixes, "/" levels and near-misses likely.
    const seg = fc.string({ unit: fc.constantFrom('a', 'b', '-', '.', 'A', '\u00e9', '0'), minLength: 1, maxLength: 3 }).filter((x) => x !== '.' && x !== '..');
    const key = fc.array(seg, { minLength: 1, maxLength: 3 }).map((segs) => segs.join('/'));
    const probe = fc.string({ unit: fc.constantFrom('a', 'b', '-', '.', '/', 'A', '\u00e9', '0'), maxLength: 5 });
    await withStore(async (s) => {
      let round = 0;
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(key, { minLength: 1, maxLength: 25 }), probe, fc.option(probe), fc.option(fc.nat(30)), async (keys, prefix, after, limit) => {
          const base = `r${round++}/`;
          for (const k of keys) await s.put(base + k, Buffer.alloc(1));
          const opts = { ...(after !== null ? { after: base + after } : {}), ...(limit !== null ? { limit } : {}) };
          let expected = keys
            .map((k) => base + k)
            .filter((k) => k.startsWith(base + prefix) && (after === null || compareKeys(k, base + after) > 0))
            .sort(compareKeys);
          if (limit !== null) expected = expected.slice(0, limit);
          assert.deepEqual(await keysOf(s, base + prefix, opts), expected);
        }),
        { numRuns: 60 },
      );
    });
  });

  it('removes directories left empty by deletes', async () => {
    await withStore(async (s, root) => {
      await s.put('7/100/0-1', Buffer.from('x'));
      await s.put('7/100/1-1', Buffer.from('y'));
      await s.put('7/200/0-1', Buffer.from('z'));
      await s.delete('7/100/0-1');
      await s.delete('7/100/1-1');
      assert.deepEqual(await readdir(join(root, '7%2F', '7%2F', '10')).catch(() => []), []);
      await s.delete('7/200/0-1');
      assert.deepEqual((await readdir(root)).sort(), ['.tmp']);
    });
  });

  it('survives puts racing deletes that empty the same directories', async () => {
    await withStore(async (s) => {
      const rounds = 300;
      for (let i = 0; i < rounds; i++) {
        await Promise.all([s.put(`race/${i % 2}/${i}`, Buffer.from([i & 255])), i > 0 ? s.delete(`race/${(i - 1) % 2}/${i - 1}`) : Promise.resolve()]);
      }
      assert.deepEqual(await keysOf(s, 'race/'), [`race/${(rounds - 1) % 2}/${rounds - 1}`]);
    });
  });

  it('leaves no temporary file behind and ignores files that are not its own', async () => {
    await withStore(async (s, root) => {
      await s.put('k/1', Buffer.from('1'));
      assert.deepEqual(await readdir(join(root, '.tmp')), []);
      await writeFile(join(root, 'README'), 'not an object');
      await writeFile(join(root, 'k%2F', 'k%2F', '1.bak'), 'not an object either');
      await mkdir(join(root, 'zz', 'Junk'), { recursive: true });
      assert.deepEqual(await keysOf(s, ''), ['k/1']);
    });
  });

  it('sweeps stale temporary files when opened, and keeps fresh ones', async () => {
    const parent = await tempRoot();
    const root = join(parent, 'objects');
    try {
      await (await FsObjectStore.open(root)).close();
      const stale = join(root, '.tmp', 'stale.tmp');
      const fresh = join(root, '.tmp', 'fresh.tmp');
      await writeFile(stale, 'torn');
      await writeFile(fresh, 'in flight');
      const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
      await utimes(stale, old, old);
      const s = await FsObjectStore.open(root);
      await assert.rejects(stat(stale), { code: 'ENOENT' });
      await stat(fresh);
      assert.deepEqual(await keysOf(s, ''), []);
      await s.close();
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('takes a relative root with a trailing slash', async () => {
    const parent = await tempRoot();
    const cwd = process.cwd();
    try {
      process.chdir(parent);
      const s = await FsObjectStore.open('objects/');
      await s.put('v/1/0-1', Buffer.from('x'));
      await s.delete('v/1/0-1');
      assert.deepEqual(await readdir(join(parent, 'objects')), ['.tmp']);
      await s.close();
    } finally {
      process.chdir(cwd);
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('keeps objects across reopen', async () => {
    const parent = await tempRoot();
    const root = join(parent, 'objects');
    try {
      const a = await FsObjectStore.open(root);
      await a.put('v/1/0-1', Buffer.from('persisted'));
      await a.close();
      const b = await openObjectStore({ backend: 'fs', path: root, gcGraceSeconds: 900, gcIntervalSeconds: 60 });
      assert.ok(b instanceof FsObjectStore);
      assert.deepEqual(await b.get('v/1/0-1'), Buffer.from('persisted'));
      await b.close();
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});
