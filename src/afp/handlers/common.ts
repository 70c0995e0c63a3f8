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

/** File attribute bits the server computes from open forks (AFP's DAlreadyOpen / RAlreadyOpen). */
export const ForkOpenAttr = { Data: 0x0008, Rsrc: 0x0010 } as const;
const ATTRIBUTES_BIT = 0x0001;

/**
 * What a parameter block is encoded from. The fork-open attribute bits cost a look-up in
 * the metadata store (a fork may be open on the other node), so they are computed only for
 * files, and only when the bitmap asks for the Attributes word.
 */
export async function nodeContext(s: AfpSession, v: Volume, node: NodeRecord, bitmap: number): Promise<NodeContext> {
  let openBits = 0;
  if (node.kind === 'file' && bitmap & ATTRIBUTES_BIT) {
    const open = await v.forkOpenState(node.id);
    openBits = (open.data ? ForkOpenAttr.Data : 0) | (open.rsrc ? ForkOpenAttr.Rsrc : 0);
  }
  return { node, volume: v, who: s.user!, openBits };
}

export { readPath, type AfpPath };
