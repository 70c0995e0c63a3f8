import {
  PARENT_OF_ROOT,
  ROOT_ID,
  type ChildrenPage,
  type NamespaceStore,
  type NodePatch,
  type NodeRecord,
  type XattrMode,
} from '../meta/namespace.js';
import type { Logger } from '../ops/log.js';
import type { VolumeDef } from './catalog.js';
import type { KeyValueArea } from './node.js';
import type { ForkOpen, ForkStore } from '../meta/forks.js';
import type { VolumeData } from '../blocks/volume-data.js';
import { ForkHandle, type ForkHost } from './fork-handle.js';
import { fsCall } from './fs-call.js';
import { Access, type ForkKind, type ForkOwner, type OpenedFork } from './open-fork.js';
import { FsError } from './errors.js';
import { checkName } from './names.js';
import { mayUnlink, rightsOf, type Principal } from './permissions.js';
import { observedSync, type SyncObserver } from './sync-observer.js';

/** One step of a path, in file-system terms. */
export type Step = { up: true } | { name: string };

/** Stored attribute bits the volume itself acts on. */
export const Attr = {
  Invisible: 0x0001,
  WriteInhibit: 0x0020,
  RenameInhibit: 0x0080,
  DeleteInhibit: 0x0100,
} as const;

const NEW_DIR_MODE = 0o755;
const NEW_FILE_MODE = 0o644;
/** The root is world-writable and sticky: every user may create, only owners may delete. */
const ROOT_MODE = 0o1777;
/** Bounds the ancestor walk of a corrupt store; real trees are a handful of levels deep. */
const MAX_DEPTH = 4096;
export const MAX_XATTR_NAME_BYTES = 255;
export const MAX_XATTR_VALUE_BYTES = 64 * 1024;
/** Per object, so one client cannot make a node hold (or a listing load) unbounded data. */
export const MAX_XATTRS_PER_NODE = 64;
export const FINDER_INFO_XATTR = 'com.apple.FinderInfo';

/** Where a volume's bytes and open forks live. */
export interface VolumeStorage {
  data: VolumeData;
  forks: ForkStore;
  /** This gateway node, recorded with every open so a dead node's opens can be released. */
  nodeId: string;
  /** The volume's stable identity in the stores (volume-set.ts `volumeKey`). */
  key: string;
  /** Told how long each FPSyncFork/FPSyncDir took (the sync latency metrics). */
  syncs?: SyncObserver;
}

/** How long the volume's committed byte count is reused for size-limit checks. */
const USED_BYTES_TTL_MS = 1000;

/**
 * The file system one volume presents: CNIDs, entries, parameters and xattrs, with Unix
 * permissions enforced. Shared by every session; all state lives in the namespace store.
 */
export class Volume implements ForkHost {
  private usedCache: { bytes: number; at: number; commits: number } | null = null;

  private constructor(
    readonly def: VolumeDef,
    /** The volume ID on the wire (FPOpenVol), stable per configuration. */
    readonly wireId: number,
    private readonly ns: NamespaceStore,
    readonly createdAt: number,
    private readonly fold: (n: string) => string,
    private readonly durable: () => Promise<void>,
    private readonly storage: VolumeStorage,
    private readonly now: () => number,
  ) {}

  /** `durable` makes every committed metadata change durable (the store's sync point). */
  static async open(def: VolumeDef, wireId: number, ns: NamespaceStore, fold: (n: string) => string, durable: () => Promise<void>, storage: VolumeStorage, now: () => number = Date.now): Promise<Volume> {
    const root = await ns.init(def.name, { uid: 0, gid: 0, mode: ROOT_MODE });
    return new Volume(def, wireId, ns, root.createdAt, fold, durable, storage, now);
  }

  get data(): VolumeData {
    return this.storage.data;
  }

  get syncs(): SyncObserver | undefined {
    return this.storage.syncs;
  }

  /** The volume's stable identity in the metadata store (survives a rename in the config). */
  get key(): string {
    return this.storage.key;
  }

  get forkStore(): ForkStore {
    return this.storage.forks;
  }

  /**
   * FPSyncDir: every namespace change in `dir`, and every byte written to its files, is
   * durable once this resolves. Namespace changes are written through to the store as they
   * happen; files with unsynced bytes are uploaded and committed first, then the store syncs.
   */
  async syncDir(dir: NodeRecord): Promise<void> {
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', `${dir.name} is a file`);
    await observedSync(this.storage.syncs, 'dir', async () => {
      const files: number[] = [];
      for (const id of this.data.dirtyFiles()) {
        const n = await this.ns.get(id);
        if (n && n.parent === dir.id) files.push(id);
      }
      await fsCall(() => this.data.syncFiles(files));
      await fsCall(() => this.durable());
    });
  }

  /**
   * FPOpenFork: opens a fork of a file with access and deny modes (Access bits), checked
   * against every other open of the file on either node. EISDIR for a directory; EACCES
   * when permissions do not grant the access asked for; ELOCKED for write access to a
   * write-inhibited file; EDENY on a deny-mode conflict.
   */
  async openFork(who: Principal, node: NodeRecord, fork: ForkKind, mode: number, owner: ForkOwner): Promise<OpenedFork> {
    if (node.kind !== 'file') throw new FsError('EISDIR', `${node.name} is a directory`);
    const r = rightsOf(who, node);
    if (mode & Access.Read && !r.read) throw new FsError('EACCES', `no read permission on ${node.name}`);
    if (mode & Access.Write) {
      if (!r.write) throw new FsError('EACCES', `no write permission on ${node.name}`);
      if (node.attributes & Attr.WriteInhibit) throw new FsError('ELOCKED', `${node.name} is write-inhibited`);
    }
    await fsCall(() => this.forkStore.open({ openId: owner.openId, session: owner.session, node: this.storage.nodeId, fileId: node.id, fork, mode }));
    try {
      const st = await fsCall(() => this.data.attach(node.id, fork));
      return new ForkHandle(this, node.id, fork, mode, owner.openId, st, owner.log?.child({ volume: this.def.name }));
    } catch (e) {
      await this.forkStore.close(owner.openId).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Takes over an open that a session of a dead node left in the store: the open moves to
   * this node with its deny modes and byte-range locks, and the fork's data is attached here
   * (from what the dead node committed; what it had not synced is gone, as the durability
   * contract allows).
   */
  async adoptFork(open: ForkOpen, log?: Logger): Promise<OpenedFork> {
    await fsCall(() => this.forkStore.adopt(open.openId, this.storage.nodeId));
    const st = await fsCall(() => this.data.attach(open.fileId, open.fork));
    return new ForkHandle(this, open.fileId, open.fork, open.mode, open.openId, st, log?.child({ volume: this.def.name }));
  }

  /** The opens a session holds on this volume, on any node (a session restored elsewhere). */
  async opensOfSession(session: string): Promise<ForkOpen[]> {
    return fsCall(() => this.forkStore.opensOfSession(session));
  }

  /** Which forks of a file some session (on any node) holds open: FPGetFileDirParms's fork-open attribute bits. */
  async forkOpenState(fileId: number): Promise<{ data: boolean; rsrc: boolean }> {
    const opens = await this.forkStore.opensOf(fileId);
    return { data: opens.some((o) => o.fork === 'data'), rsrc: opens.some((o) => o.fork === 'rsrc') };
  }

  private async isOpen(fileId: number): Promise<boolean> {
    return (await this.forkStore.opensOf(fileId)).length > 0;
  }

  /** FPFlush: every fork of the volume this node caches reaches this node's disk. */
  async flush(): Promise<void> {
    await this.data.flushAll();
  }

  /** Ends every open (and lock) a session held on this volume, e.g. when its connection ends. */
  async releaseSession(session: string): Promise<void> {
    await this.forkStore.releaseSession(session);
  }

  /** Throws ENOSPC when the volume's size limit leaves no room for `bytes` more. */
  async reserveSpace(bytes: number): Promise<void> {
    const limit = this.def.sizeLimit;
    if (limit === null || bytes <= 0) return;
    const t = this.now();
    // The committed count plus this node's uncommitted growth. The count is reused for up to
    // a second unless this node committed a length since; before refusing, it is read again
    // (another node may have freed space).
    const fresh = async () => (this.usedCache = { bytes: (await this.ns.stats()).bytes, at: t, commits: this.data.lengthCommits });
    let cached = this.usedCache;
    if (!cached || t - cached.at > USED_BYTES_TTL_MS || cached.commits !== this.data.lengthCommits) cached = await fresh();
    if (cached.bytes + this.data.pendingGrowth + bytes > limit && cached.at !== t) cached = await fresh();
    if (cached.bytes + this.data.pendingGrowth + bytes > limit) throw new FsError('ENOSPC', `the volume is limited to ${limit} bytes`);
  }

  /** A record with the fork lengths this node knows to be newer than the committed ones. */
  private live(n: NodeRecord): NodeRecord {
    if (n.kind !== 'file') return n;
    const d = this.data.liveLength(n.id, 'data');
    const r = this.data.liveLength(n.id, 'rsrc');
    if ((d === undefined || d === n.dataLength) && (r === undefined || r === n.rsrcLength)) return n;
    return { ...n, dataLength: d ?? n.dataLength, rsrcLength: r ?? n.rsrcLength };
  }

  get name(): string {
    return this.def.name;
  }

  /** The volume's key/value area, for front-end data (AFP's desktop database). */
  get kv(): KeyValueArea {
    return this.ns;
  }

  /** The lookup key of a name on this volume; children are listed in this key's order. */
  foldName(name: string): string {
    return this.fold(name);
  }

  /** The node with this ID, or undefined (for callers to whom a vanished object is no error). */
  async find(id: number): Promise<NodeRecord | undefined> {
    const n = id > PARENT_OF_ROOT ? await this.ns.get(id) : undefined;
    return n && this.live(n);
  }

  /** Bytes used by all forks on the volume: what FPGetVolParms reports as used space. */
  async usedBytes(): Promise<number> {
    return (await this.ns.stats()).bytes + this.data.pendingGrowth;
  }

  async node(id: number): Promise<NodeRecord> {
    const n = id > PARENT_OF_ROOT ? await this.ns.get(id) : undefined;
    if (!n) throw new FsError('ENOENT', `no object with ID ${id}`);
    return this.live(n);
  }

  /** The directory a path starts from; DirID 1 means "parent of the root": the first step names the volume. */
  private async start(who: Principal, dirId: number, steps: readonly Step[]): Promise<{ cur: NodeRecord; rest: readonly Step[] }> {
    if (dirId === PARENT_OF_ROOT) {
      const first = steps[0];
      if (!first || !('name' in first) || this.fold(first.name) !== this.fold(this.def.name)) {
        throw new FsError('ENOENT', 'a path from DirID 1 must start with the volume name');
      }
      return { cur: await this.node(ROOT_ID), rest: steps.slice(1) };
    }
    const cur = await this.nodeFor(who, dirId);
    if (cur.kind !== 'dir') throw new FsError('ENOTDIR', `ID ${dirId} is a file`);
    return { cur, rest: steps };
  }

  /**
   * A node named by its ID, as `who` may reach it. CNIDs are easy to guess, so an ID is
   * no key: every directory above the node must grant `who` search permission, exactly as
   * if the path had been walked from the root.
   */
  async nodeFor(who: Principal, id: number): Promise<NodeRecord> {
    const node = await this.node(id);
    let up = node.id === ROOT_ID ? undefined : await this.node(node.parent);
    for (let depth = 0; up; depth++) {
      if (!rightsOf(who, up).search) throw new FsError('EACCES', `no search permission above ID ${id}`);
      if (up.id === ROOT_ID || depth > MAX_DEPTH) break;
      up = await this.node(up.parent);
    }
    return node;
  }

  /**
   * The object a path names, as `who` may reach it: ENOENT when any step is missing,
   * ENOTDIR when a step is a file, EACCES when a directory on the way may not be searched.
   */
  async resolve(who: Principal, dirId: number, steps: readonly Step[]): Promise<NodeRecord> {
    let { cur, rest } = await this.start(who, dirId, steps);
    for (const s of rest) {
      if (cur.kind !== 'dir') throw new FsError('ENOTDIR', `${cur.name} is a file`);
      if (!rightsOf(who, cur).search) throw new FsError('EACCES', `no search permission in ${cur.name}`);
      if ('up' in s) {
        if (cur.id === ROOT_ID) throw new FsError('ENOENT', 'no parent above the volume root');
        cur = await this.node(cur.parent);
      } else {
        const next = await this.ns.lookup(cur.id, s.name);
        if (!next) throw new FsError('ENOENT', `${s.name} not found`);
        cur = this.live(next);
      }
    }
    return cur;
  }

  /** For creates: the directory all but the last step name, and the last step as the new name. */
  async resolveNew(who: Principal, dirId: number, steps: readonly Step[]): Promise<{ parent: NodeRecord; name: string }> {
    const last = steps[steps.length - 1];
    if (!last || !('name' in last)) throw new FsError('EINVAL', 'the path names no new object');
    const parent = await this.resolve(who, dirId, steps.slice(0, -1));
    if (parent.kind !== 'dir') throw new FsError('ENOTDIR', `${parent.name} is a file`);
    checkName(last.name);
    return { parent, name: last.name };
  }

  async resolveDir(who: Principal, dirId: number, steps: readonly Step[]): Promise<NodeRecord> {
    const d = await this.resolve(who, dirId, steps);
    if (d.kind !== 'dir') throw new FsError('ENOTDIR', `${d.name} is a file`);
    return d;
  }

  private requireWrite(who: Principal, dir: NodeRecord): void {
    const r = rightsOf(who, dir);
    if (!r.write || !r.search) throw new FsError('EACCES', `no write permission in ${dir.name}`);
  }

  async createDir(who: Principal, dirId: number, steps: readonly Step[]): Promise<NodeRecord> {
    const { parent, name } = await this.resolveNew(who, dirId, steps);
    this.requireWrite(who, parent);
    return fsCall(() => this.ns.create(parent.id, name, 'dir', { uid: who.uid, gid: who.gid, mode: NEW_DIR_MODE }, this.now()));
  }

  /** Soft create fails on an existing name; hard create empties an existing file instead. */
  async createFile(who: Principal, dirId: number, steps: readonly Step[], hard: boolean): Promise<NodeRecord> {
    const { parent, name } = await this.resolveNew(who, dirId, steps);
    this.requireWrite(who, parent);
    const existing = await this.ns.lookup(parent.id, name);
    if (existing) {
      if (!hard || existing.kind === 'dir') throw new FsError('EEXIST', `${name} exists`);
      if (await this.isOpen(existing.id)) throw new FsError('EBUSY', `${name} is open`);
      if (!rightsOf(who, existing).write) throw new FsError('EACCES', `no write permission on ${name}`);
      // Through the data layer, so uploads of earlier writes still under way cannot bring bytes back.
      for (const fork of ['data', 'rsrc'] as const) {
        const st = await fsCall(() => this.data.attach(existing.id, fork));
        try {
          await fsCall(() => this.data.setLength(st, 0));
        } finally {
          this.data.detach(st);
        }
      }
      return fsCall(() => this.ns.update(existing.id, { modifiedAt: this.now() }));
    }
    return fsCall(() => this.ns.create(parent.id, name, 'file', { uid: who.uid, gid: who.gid, mode: NEW_FILE_MODE }, this.now()));
  }

  async remove(who: Principal, dirId: number, steps: readonly Step[]): Promise<NodeRecord> {
    const node = await this.resolve(who, dirId, steps);
    if (node.id === ROOT_ID) throw new FsError('EROOT', 'the volume root cannot be deleted');
    const parent = await this.node(node.parent);
    if (!mayUnlink(who, parent, node)) throw new FsError('EACCES', `no permission to delete ${node.name}`);
    if (node.attributes & Attr.DeleteInhibit) throw new FsError('ELOCKED', `${node.name} is delete-inhibited`);
    if (node.kind === 'file' && (await this.isOpen(node.id))) throw new FsError('EBUSY', `${node.name} is open`);
    const removed = await fsCall(() => this.ns.remove(node.id, this.now()));
    if (removed.kind === 'file') this.data.forget(removed.id);
    return removed;
  }

  /** FPRename: a new name in the same directory. Renaming to the very same name succeeds and changes nothing. */
  async rename(who: Principal, dirId: number, steps: readonly Step[], newName: string): Promise<NodeRecord> {
    const node = await this.resolve(who, dirId, steps);
    if (node.id === ROOT_ID) throw new FsError('EROOT', 'the volume root cannot be renamed');
    if (newName === node.name) return node;
    checkName(newName);
    const parent = await this.node(node.parent);
    if (!mayUnlink(who, parent, node)) throw new FsError('EACCES', `no permission to rename ${node.name}`);
    if (node.attributes & Attr.RenameInhibit) throw new FsError('ELOCKED', `${node.name} is rename-inhibited`);
    return fsCall(() => this.ns.move(node.id, node.parent, newName, this.now()));
  }

  /** FPMoveAndRename: into `dst` (a directory), keeping the name unless `newName` is given. */
  async move(who: Principal, node: NodeRecord, dst: NodeRecord, newName: string | null): Promise<NodeRecord> {
    if (node.id === ROOT_ID) throw new FsError('EROOT', 'the volume root cannot be moved');
    if (dst.kind !== 'dir') throw new FsError('ENOTDIR', `${dst.name} is a file`);
    const name = newName ?? node.name;
    if (newName !== null) checkName(newName);
    if (dst.id === node.parent && name === node.name) return node;
    const parent = await this.node(node.parent);
    if (!mayUnlink(who, parent, node)) throw new FsError('EACCES', `no permission to move ${node.name}`);
    this.requireWrite(who, dst);
    if (name !== node.name && node.attributes & Attr.RenameInhibit) throw new FsError('ELOCKED', `${node.name} is rename-inhibited`);
    return fsCall(() => this.ns.move(node.id, dst.id, name, this.now()));
  }

  /**
   * Changes parameters. Owners may change the mode and Finder data; others need write
   * permission for dates, Finder info and attributes. Ownership is not the client's to
   * change: a Mac sends its own local IDs (the volume says NoNetworkUserIDs), so an owner
   * or group it cannot have is left as it is, as netatalk leaves a chown that fails.
   */
  async setParams(who: Principal, node: NodeRecord, requested: NodePatch): Promise<NodeRecord> {
    const patch: NodePatch = { ...requested };
    delete patch.uid;
    if (patch.gid !== undefined && (patch.gid === node.gid || !rightsOf(who, node).owner || patch.gid !== who.gid)) delete patch.gid;
    const r = rightsOf(who, node);
    if (patch.mode !== undefined && patch.mode !== node.mode) {
      if (!r.owner) throw new FsError('EACCES', `only the owner may change the privileges of ${node.name}`);
      if (node.id === ROOT_ID) throw new FsError('EACCES', 'the privileges of the volume root are fixed');
    }
    const touchesContent = patch.attributes !== undefined || patch.finderInfo !== undefined || patch.createdAt !== undefined || patch.modifiedAt !== undefined || patch.backupAt !== undefined;
    if (touchesContent && !r.write && !r.owner) throw new FsError('EACCES', `no write permission on ${node.name}`);
    // The root is shared: its write permission lets everyone add entries, not restyle the
    // volume every user sees (its modification date drives the Macs' cache invalidation).
    // Only the volume backup date, which backup software records, stays open to all.
    const touchesRoot = touchesContent && (patch.attributes !== undefined || patch.finderInfo !== undefined || patch.createdAt !== undefined || patch.modifiedAt !== undefined);
    if (node.id === ROOT_ID && touchesRoot && !r.owner) throw new FsError('EACCES', 'the volume root belongs to the volume');
    return this.live(await fsCall(() => this.ns.update(node.id, patch)));
  }

  /** FPExchangeFiles: contents swap, IDs and names stay. */
  async exchange(who: Principal, a: NodeRecord, b: NodeRecord): Promise<void> {
    if (a.kind !== 'file' || b.kind !== 'file') throw new FsError('EISDIR', 'only files can be exchanged');
    if (a.id === b.id) throw new FsError('ESAME', 'a file cannot be exchanged with itself');
    if (!rightsOf(who, a).write || !rightsOf(who, b).write) throw new FsError('EACCES', 'no write permission on both files');
    // The block maps swap in the store; bytes still in this node's cache must be there first.
    await fsCall(() => this.data.syncFiles([a.id, b.id]));
    await fsCall(() => this.ns.exchange(a.id, b.id));
    await this.data.reload(a.id);
    await this.data.reload(b.id);
  }

  /** FPCopyFile: a new file with the source's bytes, Finder info, attributes, dates and xattrs. */
  async copyFile(who: Principal, src: NodeRecord, dst: NodeRecord, newName: string | null): Promise<NodeRecord> {
    if (src.kind !== 'file') throw new FsError('EISDIR', 'only files can be copied');
    if (!rightsOf(who, src).read) throw new FsError('EACCES', `no read permission on ${src.name}`);
    if (dst.kind !== 'dir') throw new FsError('ENOTDIR', `${dst.name} is a file`);
    const name = newName ?? src.name;
    checkName(name);
    this.requireWrite(who, dst);
    const now = this.now();
    const copy = await fsCall(() =>
      this.ns.create(dst.id, name, 'file', { uid: who.uid, gid: who.gid, mode: src.mode & 0o777, attributes: src.attributes, finderInfo: src.finderInfo, createdAt: src.createdAt, modifiedAt: src.modifiedAt }, now),
    );
    for (const x of await this.ns.listXattrs(src.id)) {
      const v = await this.ns.getXattr(src.id, x);
      if (v) await fsCall(() => this.ns.setXattr(copy.id, x, v, 'any'));
    }
    await this.reserveSpace(src.dataLength + src.rsrcLength);
    await fsCall(() => this.data.copy(src.id, copy.id));
    // The copy keeps the source's dates, which writing its bytes moved on.
    return this.live(await fsCall(() => this.ns.update(copy.id, { modifiedAt: src.modifiedAt })));
  }

  async list(who: Principal, dir: NodeRecord, opts: { after?: string; offset?: number; limit: number }): Promise<ChildrenPage> {
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', `${dir.name} is a file`);
    if (!rightsOf(who, dir).read) throw new FsError('EACCES', `no read permission on ${dir.name}`);
    const page = await fsCall(() => this.ns.children(dir.id, opts));
    return { ...page, entries: page.entries.map((n) => this.live(n)) };
  }

  // Extended attributes. Finder info is also reachable as the com.apple.FinderInfo xattr,
  // as on HFS+, so tools that copy xattrs carry it along.

  async getXattr(who: Principal, node: NodeRecord, name: string): Promise<Buffer> {
    if (!rightsOf(who, node).read && !rightsOf(who, node).owner) throw new FsError('EACCES', `no read permission on ${node.name}`);
    if (name === FINDER_INFO_XATTR) {
      if (node.finderInfo.every((b) => b === 0)) throw new FsError('ENOATTR', `${name} is empty`);
      return node.finderInfo;
    }
    const v = await fsCall(() => this.ns.getXattr(node.id, name));
    if (!v) throw new FsError('ENOATTR', `${node.name} has no attribute ${name}`);
    return v;
  }

  async setXattr(who: Principal, node: NodeRecord, name: string, value: Buffer, mode: XattrMode): Promise<void> {
    checkXattrName(name);
    if (node.id === ROOT_ID && !rightsOf(who, node).owner) throw new FsError('EACCES', 'the volume root belongs to the volume');
    if (value.length > MAX_XATTR_VALUE_BYTES) throw new FsError('EINVAL', `attribute values are limited to ${MAX_XATTR_VALUE_BYTES} bytes`);
    if (!rightsOf(who, node).write && !rightsOf(who, node).owner) throw new FsError('EACCES', `no write permission on ${node.name}`);
    if (name === FINDER_INFO_XATTR) {
      if (value.length !== 32) throw new FsError('EINVAL', `${name} is 32 bytes`);
      const empty = node.finderInfo.every((b) => b === 0);
      if (mode === 'create' && !empty) throw new FsError('EXATTR_EXISTS', `${name} exists`);
      if (mode === 'replace' && empty) throw new FsError('ENOATTR', `${name} does not exist`);
      await fsCall(() => this.ns.update(node.id, { finderInfo: value }));
      return;
    }
    if (mode !== 'replace') {
      const names = await this.ns.listXattrs(node.id);
      if (names.length >= MAX_XATTRS_PER_NODE && !names.includes(name)) throw new FsError('ENOSPC', `at most ${MAX_XATTRS_PER_NODE} attributes per object`);
    }
    await fsCall(() => this.ns.setXattr(node.id, name, value, mode), 'EXATTR_EXISTS');
  }

  async removeXattr(who: Principal, node: NodeRecord, name: string): Promise<void> {
    checkXattrName(name);
    if (node.id === ROOT_ID && !rightsOf(who, node).owner) throw new FsError('EACCES', 'the volume root belongs to the volume');
    if (!rightsOf(who, node).write && !rightsOf(who, node).owner) throw new FsError('EACCES', `no write permission on ${node.name}`);
    if (name === FINDER_INFO_XATTR) {
      if (node.finderInfo.every((b) => b === 0)) throw new FsError('ENOATTR', `${name} does not exist`);
      await fsCall(() => this.ns.update(node.id, { finderInfo: Buffer.alloc(32) }));
      return;
    }
    await fsCall(() => this.ns.removeXattr(node.id, name));
  }

  async listXattrs(who: Principal, node: NodeRecord): Promise<string[]> {
    if (!rightsOf(who, node).read && !rightsOf(who, node).owner) throw new FsError('EACCES', `no read permission on ${node.name}`);
    const names = await fsCall(() => this.ns.listXattrs(node.id));
    return node.finderInfo.some((b) => b !== 0) ? [FINDER_INFO_XATTR, ...names] : names;
  }
}

function checkXattrName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name, 'utf8') > MAX_XATTR_NAME_BYTES || name.includes('\0')) {
    throw new FsError('EINVAL', 'attribute names are 1 to 255 bytes without NUL');
  }
}
