import { tryEncodeMacRoman } from './mac-roman.js';

const LONG_NAME_MAX = 31;

/**
 * The LongName of an object for AFP 3 clients: Mac Roman, at most 31 bytes. Names that do
 * not fit are mangled the way netatalk does, `<prefix>#<CNID in hex><.ext>`, so they stay
 * unique; the real name travels in the UTF8Name field.
 */
export function longName(name: string, id: number): Buffer {
  const direct = tryEncodeMacRoman(name);
  if (direct && direct.length <= LONG_NAME_MAX) return direct;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 6 ? tryEncodeMacRoman(name.slice(dot)) ?? Buffer.alloc(0) : Buffer.alloc(0);
  const tag = Buffer.from(`#${id.toString(16).toUpperCase()}`, 'latin1');
  const room = LONG_NAME_MAX - tag.length - ext.length;
  const stem = tryEncodeMacRoman(asciiish(dot > 0 ? name.slice(0, dot) : name)) ?? Buffer.alloc(0);
  return Buffer.concat([stem.subarray(0, Math.max(0, room)), tag, ext]);
}

function asciiish(s: string): string {
  return s.normalize('NFD').replace(/[^\x20-\x7e]/g, '');
}

/**
 * A stored name goes out exactly as the client created it: Macs send their own decomposed
 * form (HFS+'s variant, which leaves some ranges alone), and JavaScript's NFD would change
 * names like U+2126 OHM SIGN or U+F900 that the Mac must get back byte for byte.
 */
export function wireName(name: string): Buffer {
  return Buffer.from(name, 'utf8');
}

/** Text-encoding hint in UTF-8 name fields: kTextEncodingUTF8; clients ignore it. */
export const UTF8_HINT = 0x08000103;
