import type { NodeRecord } from '../../volume/node.js';
import type { Volume } from '../../volume/volume.js';
import type { Reader } from '../../wire/reader.js';
import type { NodeContext } from '../params.js';
import { readPath, type AfpPath } from '../paths.js';
import type { AfpSession } from '../session.js';

/** The common prefix of most volume requests: `pad VolID(2) DirID(4)`. */
export function volAndDir(s: AfpSession, r: Reader): { v: Volume; dirId: number } {
  r.skip(1);
  const v = s.volume(r.u16());
  return { v, dirId: r.u32() };
}

export function nodeContext(s: AfpSession, v: Volume, node: NodeRecord): NodeContext {
  return { node, volume: v, who: s.user!, openBits: 0 };
}

export { readPath, type AfpPath };
