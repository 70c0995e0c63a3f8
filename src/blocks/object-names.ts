/**
 * Names of block objects: `<volume>/<file>/<d|r><index>-<generation>`. The file and block
 * in the name let an operator find a file's objects in the bucket; the generation (unique
 * per volume) makes every upload a new, immutable key, so a reader on another node never
 * meets a half-replaced object.
 */
import type { BlockRef } from '../meta/block-maps.js';
import type { ForkKind } from '../meta/forks.js';

export function forkLetter(fork: ForkKind): 'd' | 'r' {
  return fork === 'data' ? 'd' : 'r';
}

/** A volume key as one key segment: "." and ".." are not valid segments, so they are escaped. */
function segment(volumeKey: string): string {
  return volumeKey === '.' || volumeKey === '..' ? volumeKey.replaceAll('.', '%2E') : volumeKey;
}

export function blockObjectKey(volumeKey: string, fork: ForkKind, index: number, ref: BlockRef): string {
  return `${segment(volumeKey)}/${ref.file}/${forkLetter(fork)}${index}-${ref.gen}`;
}

/** The prefix under which every object of a volume lives. */
export function volumeObjectPrefix(volumeKey: string): string {
  return `${segment(volumeKey)}/`;
}
