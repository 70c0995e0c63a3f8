import { AfpCommand } from '../afp/commands.js';
import { AfpError } from '../afp/errors.js';
import { catSearchCriteria, criteriaFor, PARTIAL_NAMES, type CatSearchQuery } from '../afp/handlers/catsearch.js';
import { dirFields, fileFields, parseBlock } from '../afp/params.js';
import { kFPEOFErr, kFPNoErr } from '../afp/result-codes.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { DIR_BITMAP_ALL, FILE_BITMAP_ALL, type AfpVolume, type Entry } from './afp-volume.js';

export type { CatSearchQuery };

/**
 * FPCatSearchExt (default) or FPCatSearch. The handler (src/afp/handlers/catsearch.ts)
 * describes the layouts; the criteria table there builds the Specs here.
 */
export interface CatSearchOptions {
  variant?: 'ext' | 'legacy';
  /** Result bitmaps; 0 leaves that kind of object out of the search. */
  fileBitmap?: number;
  dirBitmap?: number;
  reqMatches?: number;
  /** From the previous page; zeros (the default) start a new search. */
  position?: Buffer;
  /** For tests of malformed requests: sent instead of what the query gives. */
  reqBitmap?: number;
  specs?: readonly [Buffer, Buffer];
}

export interface CatSearchPage {
  /** kFPNoErr, or kFPEOFErr on the last page. */
  code: number;
  done: boolean;
  position: Buffer;
  fileBitmap: number;
  dirBitmap: number;
  entries: Entry[];
}

/** ReqBitmap and the two Specs of a query; names go after the fixed part, as in a parameter block. */
export function buildSpecs(q: CatSearchQuery, files: boolean, dirs: boolean): { reqBitmap: number; specs: [Buffer, Buffer] } {
  const usable = criteriaFor(files, dirs);
  const sides = [new Writer(64), new Writer(64)] as const;
  const tails: { w: Writer; at: number; write: (w: Writer) => void }[] = [];
  let bitmap = 0;
  for (const c of usable) {
    if (!c.present(q)) continue;
    bitmap |= c.bit;
    for (const side of [0, 1] as const) {
      const w = sides[side];
      const at = w.length;
      c.build(w, q, side, (write) => tails.push({ w, at, write }));
    }
  }
  const unusable = catSearchCriteria.filter((c) => c.present(q) && !usable.includes(c));
  if (unusable.length > 0) throw new RangeError(`${unusable.map((c) => c.name).join(', ')} needs a search of one kind of object`);
  for (const t of tails) {
    t.w.patchU16(t.at, t.w.length);
    t.write(t.w);
  }
  if ((q.longName !== undefined || q.utf8Name !== undefined) && q.wholeName !== true) bitmap |= PARTIAL_NAMES;
  return { reqBitmap: bitmap >>> 0, specs: [sides[0].finish(), sides[1].finish()] };
}

export function buildCatSearch(volumeId: number, q: CatSearchQuery, o: CatSearchOptions = {}): Buffer {
  const ext = (o.variant ?? 'ext') === 'ext';
  const fb = o.fileBitmap ?? FILE_BITMAP_ALL;
  const db = o.dirBitmap ?? DIR_BITMAP_ALL;
  const built = buildSpecs(q, fb !== 0, db !== 0);
  const specs = o.specs ?? built.specs;
  const w = new Writer(64 + specs[0].length + specs[1].length).u8(ext ? AfpCommand.FPCatSearchExt : AfpCommand.FPCatSearch).u8(0).u16(volumeId);
  w.u32(o.reqMatches ?? 200).u32(0).bytes(o.position ?? Buffer.alloc(16));
  w.u16(fb).u16(db).u32(o.reqBitmap ?? built.reqBitmap);
  for (const spec of specs) {
    if (ext) w.u16(spec.length);
    else {
      if (spec.length > 255) throw new RangeError('an FPCatSearch Spec holds at most 255 bytes');
      w.u8(spec.length).u8(0);
    }
    w.bytes(spec);
  }
  return w.finish();
}

/** The reply, whose entry lengths count the parameters only (not FPEnumerate's way). */
export function parseCatSearchReply(b: Buffer, ext: boolean): Omit<CatSearchPage, 'code' | 'done'> {
  const r = new Reader(b);
  const position = Buffer.from(r.bytes(16));
  const fileBitmap = r.u16();
  const dirBitmap = r.u16();
  const count = r.u32();
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const len = ext ? r.u16() : r.u8();
    const isDir = (r.u8() & 0x80) !== 0;
    if (ext) r.u8();
    const start = r.offset;
    entries.push({ isDir, params: parseBlock(isDir ? dirFields : fileFields, isDir ? dirBitmap : fileBitmap, r, b) });
    r.skip(start + len - r.offset);
  }
  return { position, fileBitmap, dirBitmap, entries };
}

/** One call; throws AfpError for anything but kFPNoErr and kFPEOFErr (whose page may hold entries). */
export async function catSearch(vol: AfpVolume, q: CatSearchQuery, o: CatSearchOptions = {}): Promise<CatSearchPage> {
  const r = await vol.client.raw(buildCatSearch(vol.id, q, o));
  if (r.code !== kFPNoErr && r.code !== kFPEOFErr) throw new AfpError(r.code);
  return { code: r.code, done: r.code === kFPEOFErr, ...parseCatSearchReply(r.payload, (o.variant ?? 'ext') === 'ext') };
}

/** Follows CatalogPosition until kFPEOFErr, the way the Finder pages through a search. */
export async function catSearchAll(
  vol: AfpVolume,
  q: CatSearchQuery,
  o: Omit<CatSearchOptions, 'position'> & { onPage?: (p: CatSearchPage) => void; maxCalls?: number } = {},
): Promise<Entry[]> {
  const all: Entry[] = [];
  let position: Buffer = Buffer.alloc(16);
  for (let calls = 0; calls < (o.maxCalls ?? 10_000); calls++) {
    const page = await catSearch(vol, q, { ...o, position });
    o.onPage?.(page);
    all.push(...page.entries);
    if (page.done) return all;
    position = page.position;
  }
  throw new Error('FPCatSearch did not finish');
}
