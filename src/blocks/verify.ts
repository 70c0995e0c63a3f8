/**
 * `afp-gateway verify`'s checks, backend-independent: does a volume's metadata agree with
 * itself and with its objects, and, with `repair`, make it agree where that is safe.
 *
 * Findings come from one scan (verify-scan.ts) and are each confirmed by a re-read before
 * they are reported, because gateways may be running (a read-only verify is safe alongside
 * them): what changed since the scan is dropped rather than reported. Repairs go through
 * the metadata store's audit and namespace interfaces, each an atomic step that re-checks
 * its condition; the caller must make sure no gateway runs while they do (verify.ts in
 * src/cli refuses while a node holds a lease), since a node's memory (the block maps of its
 * open forks) would not see them.
 *
 * Nothing here deletes an object: an object no map refers to is queued for GC, which deletes
 * it after the grace period, and a node that is not reachable is moved into "Recovered
 * files" at the root rather than removed.
 */
import { firstDropped, lengthField } from '../meta/block-map-records.js';
import { ROOT_ID, type NamespaceStore } from '../meta/namespace.js';
import { unsortKey } from '../meta/namespace-records.js';
import type { AuditNode, VolumeAudit } from '../meta/verify-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import { blockObjectKey, volumeObjectPrefix } from './object-names.js';
import { forkName, orphanTrees, parseObjectKey, pathOf, reachable, refsByObject, scanVolume, siteMember, type RefSite, type ScanProgress, type VolumeScan } from './verify-scan.js';

export type CheckName = 'namespace' | 'block maps' | 'objects' | 'gc queue' | 'counters';

export type ProblemKind =
  | 'no-root'
  | 'dangling-entry'
  | 'stale-index'
  | 'orphan-node'
  | 'child-count'
  | 'xattrs-without-node'
  | 'map-without-file'
  | 'blocks-past-end'
  | 'missing-object'
  | 'object-size'
  | 'shared-object'
  | 'queued-in-use'
  | 'orphan-object'
  | 'foreign-object'
  | 'counter'
  | 'totals';

export interface Problem {
  check: CheckName;
  kind: ProblemKind;
  /** The file or directory it concerns (an object key for objects no file owns). */
  path: string;
  what: string;
  /** What --repair does about it, or why it cannot. */
  repair: string;
  repairable: boolean;
  /** Set by a repair run: whether the repair was made. */
  fixed?: boolean;
}

export interface CheckSummary {
  check: CheckName;
  /** What was looked at, e.g. { nodes: 120, files: 100, directories: 20 }. */
  counts: Record<string, number>;
  problems: number;
  note?: string;
}

export interface VerifyReport {
  volumeKey: string;
  repaired: boolean;
  checks: CheckSummary[];
  problems: Problem[];
  /** Problems left: every one found, or after a repair those not fixed. */
  remaining: number;
}

export interface VerifyOptions {
  volumeKey: string;
  audit: VolumeAudit;
  ns: NamespaceStore;
  objects: ObjectStore;
  repair: boolean;
  /**
   * Gateways hold leases on the store: totals that move with every write (node count, used
   * bytes) are not compared then. A repair must not run while this is true.
   */
  live: boolean;
  /**
   * Asked once more just before repairing: still no gateway running? The scan can take long
   * enough for one to start, and a repair under a running node is what `live` forbids.
   */
  stillStopped?: () => Promise<boolean>;
  /**
   * An object no map refers to counts as orphaned only once it is this old: younger ones may
   * be uploads whose commit has yet to come (a node uploads a block, then commits its map).
   */
  orphanMinAgeMs: number;
  now?: () => number;
  progress?: ScanProgress;
}

/** Where --repair puts nodes the root no longer reaches. */
export const RECOVERED_DIR = 'Recovered files';

interface Finding extends Problem {
  /** Order of repair: entries first, then what depends on them. */
  stage: number;
  /** Re-reads the store: false when the finding no longer holds. */
  confirm(): Promise<boolean>;
  fix?(): Promise<boolean>;
}

const LOST = 'none possible: the bytes are gone (restore the file from elsewhere if you can; in a Time Machine bundle, the Mac\'s next backup verification reports the damage)';

export async function verifyVolume(o: VerifyOptions): Promise<VerifyReport> {
  if (o.repair && o.live) throw new Error('repairs need every gateway stopped');
  const now = o.now ?? Date.now;
  const scan = await scanVolume(o.audit, o.objects, o.volumeKey, o.progress);
  const checker = new Checks(o, scan, now);
  const findings = checker.all();
  o.progress?.('confirming', findings.length);
  const confirmed: Finding[] = [];
  for (const f of findings) if (await f.confirm()) confirmed.push(f);

  if (o.repair) {
    if (o.stillStopped && !(await o.stillStopped())) throw new Error('a gateway started while the volume was checked; nothing was repaired (stop it and run verify --repair again)');
    for (const f of [...confirmed].sort((a, b) => a.stage - b.stage)) {
      f.fixed = f.fix ? await f.fix() : false;
    }
  }
  const checks = checker.summaries(confirmed);
  const problems = confirmed.map(({ check, kind, path, what, repair, repairable, fixed }): Problem => ({ check, kind, path, what, repair, repairable, ...(fixed !== undefined ? { fixed } : {}) }));
  return { volumeKey: o.volumeKey, repaired: o.repair, checks, problems, remaining: problems.filter((p) => !p.fixed).length };
}

class Checks {
  private readonly reached: Set<number>;
  private readonly refs: Map<string, RefSite[]>;
  private recovered?: Promise<number>;
  private readonly blockSize: number;
  private maxId = 0;
  private maxGen = 0;

  constructor(private readonly o: VerifyOptions, private readonly s: VolumeScan, private readonly now: () => number) {
    this.reached = reachable(s);
    this.refs = refsByObject(o.volumeKey, s.maps);
    this.blockSize = s.counters.blockSize;
  }

  all(): Finding[] {
    return [...this.namespace(), ...this.blockMaps(), ...this.objects(), ...this.gcQueue(), ...this.counters()];
  }

  summaries(found: readonly Finding[]): CheckSummary[] {
    const s = this.s;
    const count = (check: CheckName) => found.filter((f) => f.check === check).length;
    const files = [...s.nodes.values()].filter((n) => n.kind === 'file').length;
    const blocks = s.maps.reduce((n, m) => n + m.blocks.length, 0);
    const bytes = [...s.objects.values()].reduce((n, x) => n + x.size, 0);
    const recent = this.recentObjects();
    return [
      { check: 'namespace', counts: { nodes: s.nodes.size, files, directories: s.nodes.size - files, entries: s.entryCount }, problems: count('namespace') },
      { check: 'block maps', counts: { maps: s.maps.length, blocks }, problems: count('block maps') },
      {
        check: 'objects',
        counts: { objects: s.objects.size, bytes, recent },
        problems: count('objects'),
        ...(recent > 0 ? { note: `${recent} unreferenced objects younger than ${Math.round(this.o.orphanMinAgeMs / 1000)} s not judged (uploads that may still be committed)` } : {}),
      },
      { check: 'gc queue', counts: { entries: s.gc.size }, problems: count('gc queue') },
      { check: 'counters', counts: { lastId: s.counters.lastId, gen: s.counters.gen }, problems: count('counters'), ...(this.o.live ? { note: 'node count and used bytes not compared: gateways are running' } : {}) },
    ];
  }

  // ---- the namespace -----------------------------------------------------------------------

  private *namespace(): Iterable<Finding> {
    const { s, o } = this;
    const audit = o.audit;
    const root = s.nodes.get(ROOT_ID);
    if (root?.kind !== 'dir') {
      yield {
        check: 'namespace',
        kind: 'no-root',
        stage: 0,
        path: '/',
        what: root ? 'the root (CNID 2) is a file' : s.nodes.size === 0 ? 'the volume holds nothing: no gateway has opened it with this metadata store (check --config)' : 'the volume has no root directory (CNID 2)',
        repair: 'none here: a gateway opening the volume creates the root; then run verify --repair again to re-link the rest',
        repairable: false,
        confirm: async () => (await audit.node(ROOT_ID))?.kind !== 'dir',
      };
    }
    for (const n of s.nodes.values()) this.maxId = Math.max(this.maxId, n.id);

    for (const [parent, entries] of s.entries) {
      let stale = 0;
      for (const e of entries.values()) {
        if (e.child === null || !e.indexed) stale++;
        // An unindexed entry may also dangle: it is checked below like any other.
        if (e.child === null) continue;
        this.maxId = Math.max(this.maxId, e.child, parent);
        const child = s.nodes.get(e.child);
        if (child && child.parent === parent && child.key === e.key) continue;
        const name = child?.name ?? unsortKey(e.key);
        const where = s.nodes.has(parent) ? pathOf(s, parent) : `(CNID ${parent}, removed)`;
        yield {
          check: 'namespace',
          kind: 'dangling-entry',
          stage: 10,
          path: `${where === '/' ? '' : where}/${name}`,
          what: child ? `an entry names CNID ${e.child}, which lives elsewhere (${pathOf(s, child.id)})` : `an entry names CNID ${e.child}, which does not exist`,
          // A lost record whose file still has a block map: the name and the bytes are what
          // is left of the file, so neither is thrown away here (see map-without-file).
          ...(!child && s.maps.some((m) => m.file === e.child)
            ? { repair: "none here: the file's record is lost but its block map (its bytes) is left; copy the bytes out before removing it", repairable: false }
            : { repair: 'remove the entry', repairable: true, fix: () => audit.dropEntry(parent, e.key, e.child) }),
          confirm: async () => {
            if ((await audit.entry(parent, e.key)) !== e.child) return false;
            const now = await audit.node(e.child!);
            return !(now && now.parent === parent && now.key === e.key);
          },
        };
      }
      if (stale > 0) {
        yield {
          check: 'namespace',
          kind: 'stale-index',
          stage: 20,
          path: s.nodes.has(parent) ? pathOf(s, parent) : `(CNID ${parent}, removed)`,
          what: `the directory's listing index disagrees with its entries in ${stale} names (listings would skip or repeat them)`,
          repair: 'rebuild the index from the entries',
          repairable: true,
          confirm: async () => !(await audit.indexAgrees(parent)),
          fix: () => audit.reindex(parent),
        };
      }
    }

    if (root?.kind === 'dir') {
      for (const t of orphanTrees(s, this.reached)) {
        const n = s.nodes.get(t.id)!;
        const inside = t.size > 1 ? `, with ${t.size - 1} items inside` : '';
        yield {
          check: 'namespace',
          kind: 'orphan-node',
          stage: 30,
          path: pathOf(s, t.id),
          what: `${n.kind === 'dir' ? 'directory' : 'file'} "${n.name}" (CNID ${n.id}${inside}) is not reachable from the root: ${t.why}`,
          repair: `move it into /${RECOVERED_DIR}`,
          repairable: true,
          confirm: async () => {
            const r = await audit.reachability(t.id);
            return r !== 'reachable' && r !== 'missing';
          },
          fix: () => this.relink(n),
        };
      }
    }

    for (const n of s.nodes.values()) {
      if (n.kind !== 'dir') continue;
      const entries = [...(s.entries.get(n.id)?.values() ?? [])].filter((e) => e.child !== null).length;
      if (entries === n.childCount) continue;
      yield {
        check: 'namespace',
        kind: 'child-count',
        stage: 40,
        path: pathOf(s, n.id),
        what: `the directory's count says ${n.childCount} items, it has ${entries} entries`,
        repair: 'set the count to the number of entries',
        repairable: true,
        confirm: async () => {
          const c = await audit.childCount(n.id);
          return c !== undefined && c.stored !== c.entries;
        },
        fix: () => audit.recount(n.id),
      };
    }

    for (const id of s.xattrOwners) {
      this.maxId = Math.max(this.maxId, id);
      if (s.nodes.has(id)) continue;
      yield {
        check: 'namespace',
        kind: 'xattrs-without-node',
        stage: 50,
        path: `(CNID ${id}, removed)`,
        what: 'extended attributes of a node that does not exist',
        repair: 'remove them',
        repairable: true,
        confirm: async () => (await audit.node(id)) === undefined,
        fix: () => audit.dropXattrs(id),
      };
    }
  }

  /** Moves an unreachable node into the recovery directory, under another name if its own is taken there. */
  private async relink(n: AuditNode): Promise<boolean> {
    const dir = await this.recoveredDir();
    for (const name of [n.name, `${n.name} (CNID ${n.id})`]) {
      const r = await this.o.audit.relink(n.id, dir, name, this.now());
      if (r === 'ok') return true;
      if (r !== 'exists') return false;
    }
    return false;
  }

  private recoveredDir(): Promise<number> {
    this.recovered ??= (async () => {
      const { ns } = this.o;
      const root = await ns.get(ROOT_ID);
      if (!root) throw new Error('the volume has no root to put recovered files in');
      for (let i = 1; ; i++) {
        const name = i === 1 ? RECOVERED_DIR : `${RECOVERED_DIR} ${i}`;
        const existing = await ns.lookup(ROOT_ID, name);
        if (existing?.kind === 'dir') return existing.id;
        if (existing) continue;
        return (await ns.create(ROOT_ID, name, 'dir', { uid: root.uid, gid: root.gid, mode: root.mode }, this.now())).id;
      }
    })();
    return this.recovered;
  }

  // ---- block maps --------------------------------------------------------------------------

  private *blockMaps(): Iterable<Finding> {
    const { s, o } = this;
    const audit = o.audit;
    for (const m of s.maps) {
      this.maxId = Math.max(this.maxId, m.file);
      for (const [, ref] of m.blocks) {
        this.maxId = Math.max(this.maxId, ref.file);
        this.maxGen = Math.max(this.maxGen, ref.gen);
      }
      const node = s.nodes.get(m.file);
      if (node?.kind !== 'file') {
        // Dropping the map queues its objects for deletion. Not when another file's map names
        // one of them (its bytes would go too), and not when a directory entry still names
        // the CNID: then only the node record was lost, and the name and bytes are what is
        // left of the file.
        const shared = m.blocks.some(([index, ref]) => (this.refs.get(blockObjectKey(o.volumeKey, m.fork, index, ref))?.length ?? 0) > 1);
        const named = [...s.entries.values()].some((entries) => [...entries.values()].some((e) => e.child === m.file));
        const why = node ? 'the map is kept under a directory' : shared ? "another file's map names some of its objects (see shared-object)" : named ? 'a directory entry still names this CNID: its record was lost, not the file' : null;
        yield {
          check: 'block maps',
          kind: 'map-without-file',
          stage: 60,
          path: node ? pathOf(s, m.file) : `(CNID ${m.file}, removed)`,
          what: `a ${forkName(m.fork)} block map of ${m.blocks.length} blocks kept for ${node ? 'a directory' : 'a file that does not exist'}`,
          repair: why !== null ? `none here: ${why}` : `queue its ${m.blocks.length} objects for GC and remove the map`,
          repairable: why === null,
          confirm: async () => (await audit.node(m.file))?.kind !== 'file',
          ...(why !== null ? {} : { fix: () => audit.dropBlockMap(m.file, m.fork, this.now()) }),
        };
        continue;
      }
      if (this.blockSize === 0) continue;
      const length = node[lengthField(m.fork)];
      const end = firstDropped(length, this.blockSize);
      const past = m.blocks.filter(([i]) => i >= end);
      if (past.length === 0) continue;
      yield {
        check: 'block maps',
        kind: 'blocks-past-end',
        stage: 70,
        path: pathOf(s, m.file),
        what: `${past.length} blocks of the ${forkName(m.fork)} lie past its length (${length} bytes)`,
        // Not repaired: a node stopped with unsynced writes commits blocks before the longer
        // length, and its next start commits that length from its cache journal; cutting the
        // blocks now would turn those bytes into zeros then.
        repair: 'none here: start every node that may hold unsynced writes of it (its journal commits the length); if it stays, copy the file to a new name',
        repairable: false,
        confirm: async () => {
          const now = await audit.node(m.file);
          if (now?.kind !== 'file') return false;
          const cut = firstDropped(now[lengthField(m.fork)], this.blockSize);
          for (const [i] of past) if (i >= cut && (await audit.blockRef(m.file, m.fork, i)) !== null) return true;
          return false;
        },
      };
    }
  }

  // ---- objects -----------------------------------------------------------------------------

  private *objects(): Iterable<Finding> {
    const { s, o } = this;
    const audit = o.audit;
    for (const [key, sites] of this.refs) {
      const owners = sites.filter((x) => s.nodes.get(x.owner)?.kind === 'file');
      if (owners.length === 0) continue;
      const first = owners[0]!;
      const info = s.objects.get(key);
      const where = `block ${first.index} of the ${forkName(first.fork)}`;
      if (!info) {
        yield {
          check: 'objects',
          kind: 'missing-object',
          stage: 1000,
          path: owners.map((x) => pathOf(s, x.owner)).join(', '),
          what: `${where}: object ${key} is missing from the bucket`,
          repair: LOST,
          repairable: false,
          confirm: async () => (await this.stillNamed(first)) && (await o.objects.head(key)) === undefined,
        };
      } else if (this.blockSize > 0 && (info.size < 1 || info.size > this.blockSize)) {
        yield {
          check: 'objects',
          kind: 'object-size',
          stage: 1000,
          path: owners.map((x) => pathOf(s, x.owner)).join(', '),
          what: `${where}: object ${key} is ${info.size} bytes, a block object holds 1 to ${this.blockSize}`,
          repair: 'none possible: the object is not what was uploaded (restore the file from elsewhere)',
          repairable: false,
          confirm: async () => {
            if (!(await this.stillNamed(first))) return false;
            const h = await o.objects.head(key);
            return h !== undefined && (h.size < 1 || h.size > this.blockSize);
          },
        };
      }
      if (sites.length > 1) {
        yield {
          check: 'objects',
          kind: 'shared-object',
          stage: 1000,
          path: sites.map((x) => (s.nodes.has(x.owner) ? pathOf(s, x.owner) : `(CNID ${x.owner}, removed)`)).join(', '),
          what: `object ${key} is named by ${sites.length} block map entries: removing one file would delete the other's bytes`,
          repair: 'none here: copy the file(s) to new names (which writes new objects) and remove the old ones',
          repairable: false,
          confirm: async () => {
            let n = 0;
            for (const x of sites) if (await this.stillNamed(x)) n++;
            return n > 1;
          },
        };
      }
    }

    const prefix = volumeObjectPrefix(o.volumeKey);
    const oldest = this.now() - o.orphanMinAgeMs;
    for (const [key, info] of s.objects) {
      if (this.refs.has(key)) continue;
      const p = parseObjectKey(o.volumeKey, key);
      if (!p) {
        yield {
          check: 'objects',
          kind: 'foreign-object',
          stage: 1000,
          path: key,
          what: `${info.size} bytes under the volume's prefix ${prefix} that are not a block object`,
          repair: 'none: not the gateway\'s to delete (remove it by hand if nothing else owns it)',
          repairable: false,
          confirm: async () => (await o.objects.head(key)) !== undefined,
        };
        continue;
      }
      this.maxId = Math.max(this.maxId, p.file);
      this.maxGen = Math.max(this.maxGen, p.gen);
      const entry = { file: p.file, fork: p.fork, index: p.index, gen: p.gen };
      if (s.gc.has(siteMember({ owner: p.file, fork: p.fork, index: p.index, ref: p }))) continue;
      if (info.lastModified !== undefined && info.lastModified > oldest) continue;
      yield {
        check: 'objects',
        kind: 'orphan-object',
        stage: 90,
        path: key,
        what: `${info.size} bytes that no block map names and the GC queue does not hold (leaked storage)`,
        repair: 'queue it for GC, which deletes it after objects.gcGraceSeconds',
        repairable: true,
        confirm: async () => {
          const named = await audit.blockRef(p.file, p.fork, p.index);
          if (named?.gen === p.gen && named.file === p.file) return false;
          return !(await audit.gcQueued(entry)) && (await o.objects.head(key)) !== undefined;
        },
        fix: async () => (await audit.queueGc([entry], this.now())) > 0,
      };
    }
  }

  /** Whether a map entry still names the object it named at the scan. */
  private async stillNamed(x: RefSite): Promise<boolean> {
    const now = await this.o.audit.blockRef(x.owner, x.fork, x.index);
    return now !== null && now.file === x.ref.file && now.gen === x.ref.gen;
  }

  private recentObjects(): number {
    const oldest = this.now() - this.o.orphanMinAgeMs;
    let n = 0;
    for (const [key, info] of this.s.objects) {
      if (this.refs.has(key) || info.lastModified === undefined || info.lastModified <= oldest) continue;
      const p = parseObjectKey(this.o.volumeKey, key);
      if (p && !this.s.gc.has(siteMember({ owner: p.file, fork: p.fork, index: p.index, ref: p }))) n++;
    }
    return n;
  }

  // ---- the GC queue ------------------------------------------------------------------------

  private *gcQueue(): Iterable<Finding> {
    const { s, o } = this;
    const inUse = new Map<string, RefSite>();
    for (const sites of this.refs.values()) for (const x of sites) if (s.nodes.get(x.owner)?.kind === 'file') inUse.set(siteMember(x), x);
    for (const [member, e] of s.gc) {
      this.maxId = Math.max(this.maxId, e.file);
      this.maxGen = Math.max(this.maxGen, e.gen);
      const site = inUse.get(member);
      if (!site) continue;
      yield {
        check: 'gc queue',
        kind: 'queued-in-use',
        stage: 80,
        path: pathOf(s, site.owner),
        what: `block ${site.index} of the ${forkName(site.fork)} is queued for GC while the file still uses it: GC would delete its bytes`,
        repair: 'take it off the GC queue',
        repairable: true,
        confirm: async () => (await this.stillNamed(site)) && (await o.audit.gcQueued(e)),
        fix: async () => (await o.ns.gcDone([e]), true),
      };
    }
  }

  // ---- counters ----------------------------------------------------------------------------

  private *counters(): Iterable<Finding> {
    const { s, o } = this;
    const c = s.counters;
    if (this.maxId > c.lastId) {
      const want = this.maxId;
      yield {
        check: 'counters',
        kind: 'counter',
        stage: 100,
        path: '(volume)',
        what: `the CNID counter (${c.lastId}) is below CNID ${want}, which is in use: a new file would get an ID that is taken`,
        repair: `raise it to ${want}`,
        repairable: true,
        confirm: async () => (await o.audit.counters()).lastId < want,
        fix: () => o.audit.fixCounters({ lastId: want }),
      };
    }
    if (this.maxGen > c.gen) {
      const want = this.maxGen;
      yield {
        check: 'counters',
        kind: 'counter',
        stage: 100,
        path: '(volume)',
        what: `the block generation counter (${c.gen}) is below generation ${want}, which is in use: a new upload could replace a live object`,
        repair: `raise it to ${want}`,
        repairable: true,
        confirm: async () => (await o.audit.counters()).gen < want,
        fix: () => o.audit.fixCounters({ gen: want }),
      };
    }
    if (o.live) return;
    const bytes = [...s.nodes.values()].reduce((n, x) => n + (x.kind === 'file' ? x.dataLength + x.rsrcLength : 0), 0);
    const nodes = s.nodes.size;
    if (c.nodes !== nodes || c.bytes !== bytes) {
      yield {
        check: 'counters',
        kind: 'totals',
        stage: 100,
        path: '(volume)',
        what: `the volume's totals say ${c.nodes} nodes and ${c.bytes} bytes used; it holds ${nodes} nodes and ${bytes} bytes`,
        repair: 'set them to what the volume holds',
        repairable: true,
        confirm: async () => {
          const now = await o.audit.counters();
          return now.nodes !== nodes || now.bytes !== bytes;
        },
        // Earlier repairs moved the totals themselves (the recovery directory is a node):
        // correct them by what the scan found wrong, not to what it counted.
        fix: async () => {
          const now = await o.audit.counters();
          return o.audit.fixCounters({ nodes: now.nodes + nodes - c.nodes, bytes: now.bytes + bytes - c.bytes });
        },
      };
    }
  }
}
