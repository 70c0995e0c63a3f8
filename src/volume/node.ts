/**
 * The node model as the volume layer presents it to front ends (AFP today; an SMB front
 * end could sit beside it). Front ends import these from here, never from the store.
 */
export { PARENT_OF_ROOT, ROOT_ID } from '../meta/namespace.js';
export type { NodeKind, NodePatch, NodeRecord, XattrMode } from '../meta/namespace.js';
import type { NamespaceStore } from '../meta/namespace.js';

/** A volume's small key/value area, for front-end data such as AFP's desktop database. */
export type KeyValueArea = Pick<NamespaceStore, 'kvGet' | 'kvSet' | 'kvDelete' | 'kvList'>;
