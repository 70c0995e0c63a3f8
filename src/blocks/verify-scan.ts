/**
 * What `afp-gateway verify` reads before it judges anything: a volume's namespace, block
 * maps and GC queue from the metadata store, then every object under the volume's prefix.
 * The order matters while gateways run: block maps are read before the bucket is listed, so
 * an object a gateway uploads and commits meanwhile shows up as unreferenced (and is then
 * confirmed or dropped, see verify.ts), never a committed block as missing; and the counters
 * are read last, since they only grow.
 *
 * Also the pure questions about that picture: which nodes the root reaches, which
 * unreachable nodes to re-link so that all of them are reachable again, and what path to
 * show for a node.
 */
import type { BlockRef, GcEntry } from '../meta/block-maps.js';
import { gcMember } from '../meta/block-map-records.js';
import type { ForkKind } from '../meta/forks.js';
import { ROOT_ID } from '../meta/namespace.js';
import type { AuditBlockMap, AuditCounters, AuditEntry, AuditNode, VolumeAudit } from '../meta/verify-store.js';
import type { ObjectInfo, ObjectStore } from '../objects/object-store.js';
import { blockObjectKey, volumeObjectPrefix } from './object-names.js';

export interface VolumeScan {
  nodes: Map<number, AuditNode>;
  /** Entries by directory, then by sort key. */
  entries: Map<number, Map<string, AuditEntry>>;
  entryCount: number;
  maps: AuditBlockMap[];
  xattrOwners: number[];
  /** By gcMember. */
  gc: Map<string, GcEntry>;
  /** By key, relative to the object store. */
  objects: Map<string, ObjectInfo>;
  counters: AuditCounters;
}

export type ScanProgress = (phase: string, count: number) => void;

const TICK = 1000;

export async function scanVolume(audit: VolumeAudit, objects: ObjectStore, volumeKey: string, progress: ScanProgress = () => undefined): Promise<VolumeScan> {
  const nodes = new Map<number, AuditNode>();
  for await (const n of audit.nodes()) {
    nodes.set(n.id, n);
    if (nodes.size % TICK === 0) progress('nodes', nodes.size);
  }
  const entries = new Map<number, Map<string, AuditEntry>>();
  let entryCount = 0;
  for await (const e of audit.entries()) {
    let dir = entries.get(e.parent);
    if (!dir) entries.set(e.parent, (dir = new Map()));
    dir.set(e.key, e);
    if (++entryCount % TICK === 0) progress('entries', entryCount);
  }
  const maps: AuditBlockMap[] = [];
  for await (const m of audit.blockMaps()) {
    maps.push(m);
    if (maps.length % TICK === 0) progress('block maps', maps.length);
  }
  const xattrOwners: number[] = [];
  for await (const id of audit.xattrOwners()) xattrOwners.push(id);
  const gc = new Map<string, GcEntry>();
  for await (const e of audit.gcEntries()) gc.set(gcMember(e), e);
  const listed = new Map<string, ObjectInfo>();
  for await (const o of objects.list(volumeObjectPrefix(volumeKey))) {
    listed.set(o.key, o);
    if (listed.size % TICK === 0) progress('objects', listed.size);
  }
  const counters = await audit.counters();
  return { nodes, entries, entryCount, maps, xattrOwners, gc, objects: listed, counters };
}

/** A block object's name taken apart; undefined for a key the block layer would not make. */
export interface ParsedObject {
  file: number;
  fork: ForkKind;
  index: number;
  gen: number;
}

const OBJECT_TAIL = /^(\d{1,16})\/([dr])(\d{1,16})-(\d{1,16})$/;

export function parseObjectKey(volumeKey: string, key: string): ParsedObject | undefined {
  const prefix = volumeObjectPrefix(volumeKey);
  const m = key.startsWith(prefix) ? OBJECT_TAIL.exec(key.slice(prefix.length)) : null;
  if (!m) return undefined;
  const p: ParsedObject = { file: Number(m[1]), fork: m[2] === 'd' ? 'data' : 'rsrc', index: Number(m[3]), gen: Number(m[4]) };
  // Only the exact spelling blockObjectKey makes (no leading zeros) names a block.
  if (!Number.isSafeInteger(p.file) || !Number.isSafeInteger(p.gen) || p.file < 1 || p.gen < 1) return undefined;
  return blockObjectKey(volumeKey, p.fork, p.index, p) === key ? p : undefined;
}

/** Where one map entry points. */
export interface RefSite {
  /** The CNID whose map holds the ref. */
  owner: number;
  fork: ForkKind;
  index: number;
  ref: BlockRef;
}

/** Every ref of every map, by object key. */
export function refsByObject(volumeKey: string, maps: readonly AuditBlockMap[]): Map<string, RefSite[]> {
  const out = new Map<string, RefSite[]>();
  for (const m of maps) {
    for (const [index, ref] of m.blocks) {
      const key = blockObjectKey(volumeKey, m.fork, index, ref);
      const sites = out.get(key);
      const site = { owner: m.file, fork: m.fork, index, ref };
      if (sites) sites.push(site);
      else out.set(key, [site]);
    }
  }
  return out;
}

/** `<file>:<d|r>:<index>:<gen>`, the GC member of the object a site names. */
export function siteMember(s: RefSite): string {
  return gcMember({ file: s.ref.file, fork: s.fork, index: s.index, gen: s.ref.gen });
}

/**
 * A node is linked when its parent is a directory whose entry under the node's key names it:
 * then it is listed where its record says it is.
 */
export function isLinked(scan: VolumeScan, n: AuditNode): boolean {
  const parent = scan.nodes.get(n.parent);
  return parent?.kind === 'dir' && scan.entries.get(n.parent)?.get(n.key)?.child === n.id;
}

/** The nodes the root reaches through linked nodes (the root included). */
export function reachable(scan: VolumeScan): Set<number> {
  const children = new Map<number, number[]>();
  for (const n of scan.nodes.values()) {
    if (n.id === ROOT_ID || !isLinked(scan, n)) continue;
    const list = children.get(n.parent);
    if (list) list.push(n.id);
    else children.set(n.parent, [n.id]);
  }
  const seen = new Set<number>();
  if (scan.nodes.get(ROOT_ID)?.kind !== 'dir') return seen;
  const queue = [ROOT_ID];
  seen.add(ROOT_ID);
  while (queue.length > 0) {
    for (const c of children.get(queue.pop()!) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      queue.push(c);
    }
  }
  return seen;
}

export interface OrphanTree {
  /** The node to re-link. */
  id: number;
  /** Why the root does not reach it. */
  why: string;
  /** Nodes in its subtree, itself included. */
  size: number;
}

/**
 * The fewest unreachable nodes to re-link so that every unreachable node becomes reachable:
 * walk up from an unreachable node through linked parents to the top of its tree (the node
 * whose parent is missing, is a file, or does not list it; or where the parents loop), and
 * take that. Re-linking it brings its whole linked subtree along.
 */
export function orphanTrees(scan: VolumeScan, reached: ReadonlySet<number>): OrphanTree[] {
  const children = new Map<number, number[]>();
  for (const n of scan.nodes.values()) {
    if (reached.has(n.id) || !isLinked(scan, n)) continue;
    const list = children.get(n.parent);
    if (list) list.push(n.id);
    else children.set(n.parent, [n.id]);
  }
  const covered = new Set<number>(reached);
  const out: OrphanTree[] = [];
  for (const n of scan.nodes.values()) {
    if (covered.has(n.id)) continue;
    const walked = new Set<number>([n.id]);
    let top = n;
    let why = '';
    for (;;) {
      const parent = scan.nodes.get(top.parent);
      if (!parent) {
        why = `its parent (CNID ${top.parent}) does not exist`;
        break;
      }
      if (parent.kind !== 'dir') {
        why = `its parent (CNID ${top.parent}) is a file`;
        break;
      }
      if (!isLinked(scan, top)) {
        why = `its parent (CNID ${top.parent}) does not list it`;
        break;
      }
      if (walked.has(parent.id) || covered.has(parent.id)) {
        why = 'its parents form a loop';
        break;
      }
      walked.add(parent.id);
      top = parent;
    }
    // Everything under `top` through linked nodes comes along with it.
    let size = 0;
    const queue = [top.id];
    covered.add(top.id);
    while (queue.length > 0) {
      size++;
      for (const c of children.get(queue.pop()!) ?? []) {
        if (covered.has(c)) continue;
        covered.add(c);
        queue.push(c);
      }
    }
    out.push({ id: top.id, why, size });
  }
  return out;
}

/** "/a/b/name" for a reachable node; "(unreachable)/…/name" from the top of an orphaned tree. */
export function pathOf(scan: VolumeScan, id: number): string {
  const parts: string[] = [];
  const seen = new Set<number>();
  let n = scan.nodes.get(id);
  if (!n) return `(CNID ${id}, removed)`;
  while (n && n.id !== ROOT_ID && !seen.has(n.id)) {
    seen.add(n.id);
    parts.unshift(n.name);
    const parent: AuditNode | undefined = scan.nodes.get(n.parent);
    if (!parent || !isLinked(scan, n)) return `(unreachable)/${parts.join('/')}`;
    n = parent;
  }
  return n?.id === ROOT_ID ? `/${parts.join('/')}` : `(unreachable)/${parts.join('/')}`;
}

export function forkName(fork: ForkKind): string {
  return fork === 'data' ? 'data fork' : 'resource fork';
}
