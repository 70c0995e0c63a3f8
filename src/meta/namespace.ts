/**
 * The namespace of one volume in the metadata store: CNIDs, directory entries, node
 * parameters, extended attributes and a small key/value area (the desktop database).
 * Every method that changes more than one key is atomic: one Lua script on Redis, one
 * LMDB transaction on the embedded store. Both backends pass one contract suite.
 *
 * This layer knows nothing of AFP wire formats: dates are epoch milliseconds, Finder info
 * is opaque bytes, and names are compared through the volume's `fold` function.
 */

import type { BlockMapStore } from './block-maps.js';

export type NodeKind = 'dir' | 'file';

/** CNIDs 1 ("parent of root") and 2 (the root) are fixed; 3..16 are reserved; new IDs start at 17. */
export const PARENT_OF_ROOT = 1;
export const ROOT_ID = 2;
export const FIRST_FREE_ID = 17;

export interface NodeRecord {
  id: number;
  /** PARENT_OF_ROOT for the root. */
  parent: number;
  /** As the client created it (decomposed UTF-8 from a Mac); returned byte-identically. */
  name: string;
  kind: NodeKind;
  /** Stored AFP attribute bits (Invisible, WriteInhibit, ...); "fork open" bits are not stored. */
  attributes: number;
  /** Epoch milliseconds. */
  createdAt: number;
  modifiedAt: number;
  /** null: never backed up. */
  backupAt: number | null;
  /** Always 32 bytes. */
  finderInfo: Buffer;
  uid: number;
  gid: number;
  /** Permission bits only (0o7777); the type bits follow from `kind`. */
  mode: number;
  /** Files: fork lengths in bytes. Directories: 0. */
  dataLength: number;
  rsrcLength: number;
  /** Directories: number of children, maintained atomically. Files: 0. */
  childCount: number;
}

/** What a create may set; everything else gets defaults (dates = now, backupAt = null, zeros). */
export interface NodeInit {
  attributes?: number;
  createdAt?: number;
  modifiedAt?: number;
  backupAt?: number | null;
  finderInfo?: Buffer;
  uid: number;
  gid: number;
  mode: number;
}

export type NodePatch = Partial<Pick<NodeRecord, 'attributes' | 'createdAt' | 'modifiedAt' | 'backupAt' | 'finderInfo' | 'uid' | 'gid' | 'mode' | 'dataLength' | 'rsrcLength'>>;

export type XattrMode = 'create' | 'replace' | 'any';

export interface ChildrenPage {
  entries: NodeRecord[];
  /** Fold key of the last entry returned, to resume after it; undefined when the page is empty. */
  last?: string;
}

export type NamespaceFailure =
  | 'not-found' // the node (or parent) does not exist
  | 'exists' // the name is taken in the target directory, or an xattr exists on create
  | 'not-dir' // the parent is a file
  | 'is-dir' // a file operation on a directory
  | 'not-empty' // removing a directory with children
  | 'cycle' // moving a directory into itself or its subtree
  | 'is-root' // removing, moving or renaming the root
  | 'no-attr'; // the extended attribute does not exist

export class NamespaceError extends Error {
  constructor(readonly reason: NamespaceFailure, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'NamespaceError';
  }
}

export interface NamespaceOptions {
  /**
   * Maps a name to its lookup key: two names with the same key are the same entry.
   * The volume supplies it (NFC + case folding for a case-insensitive volume). Children
   * are listed in ascending order of this key (code-unit order), stably across calls.
   */
  fold(name: string): string;
}

export interface NamespaceStore extends BlockMapStore {
  /** Creates the root (CNID 2, parent 1, named `rootName`) if missing; idempotent. Returns the root. */
  init(rootName: string, init: NodeInit): Promise<NodeRecord>;
  get(id: number): Promise<NodeRecord | undefined>;
  lookup(parent: number, name: string): Promise<NodeRecord | undefined>;
  /**
   * Creates a node under `parent`. Fails with not-found (no parent), not-dir, exists.
   * Takes a new CNID (never reused), bumps the parent's childCount and sets its modifiedAt to `now`.
   */
  create(parent: number, name: string, kind: NodeKind, init: NodeInit, now: number): Promise<NodeRecord>;
  /**
   * Removes a node and its xattrs. Fails with not-found, is-root, not-empty (a directory with
   * children). Decrements the parent's childCount and sets its modifiedAt to `now`.
   */
  remove(id: number, now: number): Promise<NodeRecord>;
  /**
   * Moves and/or renames. Fails with not-found (node or new parent), not-dir, is-root, cycle,
   * exists (another node holds the name; renaming a node onto its own name with different
   * case is allowed). Updates both parents' childCount and modifiedAt.
   */
  move(id: number, newParent: number, newName: string, now: number): Promise<NodeRecord>;
  /** Changes parameters. Fails with not-found. finderInfo must be 32 bytes. */
  update(id: number, patch: NodePatch): Promise<NodeRecord>;
  /**
   * FPExchangeFiles: swaps the contents of two files (fork lengths, dates, Finder info,
   * attributes, xattrs); IDs, names and parents stay. Fails with not-found, is-dir.
   */
  exchange(a: number, b: number): Promise<[NodeRecord, NodeRecord]>;
  /**
   * A page of a directory's children in fold-key order: starting after the fold key `after`
   * when given, else skipping `offset` entries (default 0). Fails with not-found, not-dir.
   */
  children(parent: number, opts: { after?: string; offset?: number; limit: number }): Promise<ChildrenPage>;

  /** Fails with not-found (node). Returns undefined for a missing attribute. */
  getXattr(id: number, name: string): Promise<Buffer | undefined>;
  /** Fails with not-found (node), exists (mode 'create'), no-attr (mode 'replace'). */
  setXattr(id: number, name: string, value: Buffer, mode: XattrMode): Promise<void>;
  /** Fails with not-found (node), no-attr. */
  removeXattr(id: number, name: string): Promise<void>;
  /** Names in code-unit order. Fails with not-found. */
  listXattrs(id: number): Promise<string[]>;

  /** A small key/value area for per-volume data such as the desktop database. */
  kvGet(key: string): Promise<Buffer | undefined>;
  kvSet(key: string, value: Buffer): Promise<void>;
  kvDelete(key: string): Promise<boolean>;
  /** Keys with the prefix, in code-unit order, with their values. */
  kvList(prefix: string): Promise<[string, Buffer][]>;

  /**
   * How many nodes exist (root included), the highest CNID issued, and the bytes used by
   * all forks (Σ dataLength + rsrcLength, kept up to date atomically by create, update,
   * remove and exchange), which the volume reports to Time Machine as used space.
   */
  stats(): Promise<{ nodes: number; lastId: number; bytes: number }>;
}
