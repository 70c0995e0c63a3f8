import type { Reader } from '../wire/reader.js';
import { AfpError } from './errors.js';
import { decodeMacRoman } from './mac-roman.js';
import { kFPParamErr } from './result-codes.js';

/** AFP path types. */
export const PathType = { ShortNames: 1, LongNames: 2, UTF8: 3 } as const;

/** One step of a path: a name to descend into, or a step up to the parent. */
export type PathStep = { up: true } | { name: string };

export interface AfpPath {
  type: number;
  steps: PathStep[];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const MAX_ELEMENT_BYTES = 255;

/**
 * Reads `PathType(1)` + name, and cuts it at NULs the way AFP defines: one leading NUL is
 * ignored, each further NUL between two elements steps up one level, and a trailing NUL is
 * ignored. An empty path designates the directory itself.
 */
export function readPath(r: Reader): AfpPath {
  const type = r.u8();
  let raw: Buffer;
  switch (type) {
    case PathType.ShortNames:
    case PathType.LongNames:
      raw = r.pstring();
      break;
    case PathType.UTF8:
      r.u32(); // text-encoding hint: clients do not agree on it, and the bytes are UTF-8 anyway
      raw = r.bytes(r.u16());
      break;
    default:
      throw new AfpError(kFPParamErr, `unknown path type ${type}`);
  }
  return { type, steps: splitPath(raw, type) };
}

export function splitPath(raw: Buffer, type: number): PathStep[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i === raw.length || raw[i] === 0) {
      parts.push(raw.subarray(start, i));
      start = i + 1;
    }
  }
  if (parts.length > 1 && parts[0]!.length === 0) parts.shift();
  if (parts.length > 0 && parts[parts.length - 1]!.length === 0) parts.pop();
  return parts.map((p) => (p.length === 0 ? { up: true } : { name: decodeElement(p, type) }));
}

function decodeElement(b: Buffer, type: number): string {
  if (b.length > MAX_ELEMENT_BYTES) throw new AfpError(kFPParamErr, `path element of ${b.length} bytes`);
  try {
    // Netatalk treats long names from AFP 3 clients as UTF-8 too; Mac Roman is the fallback
    // for the old clients that really send it.
    return strictUtf8.decode(b);
  } catch {
    if (type === PathType.UTF8) throw new AfpError(kFPParamErr, 'path element is not valid UTF-8');
    return decodeMacRoman(b);
  }
}

/** Reads a path that must name exactly one new element (e.g. FPRename's NewName). */
export function readSingleName(r: Reader): string | null {
  const p = readPath(r);
  if (p.steps.length === 0) return null;
  if (p.steps.length !== 1 || !('name' in p.steps[0]!)) throw new AfpError(kFPParamErr, 'a new name must be a single element');
  return p.steps[0].name;
}
