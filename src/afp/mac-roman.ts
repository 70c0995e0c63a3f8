/**
 * Mac OS Roman, for the fields AFP still defines that way (server name in FPGetSrvrInfo,
 * LongName, the volume name pstr). The table comes from ICU's 'macintosh' decoder, which
 * Node ships; characters Mac Roman cannot hold encode as '?' (callers mangle names).
 */
const decoder = new TextDecoder('macintosh');
const high: string[] = [];
const encodeMap = new Map<string, number>();
for (let b = 0x80; b <= 0xff; b++) {
  const ch = decoder.decode(Uint8Array.of(b));
  high.push(ch);
  encodeMap.set(ch, b);
}

export function decodeMacRoman(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : high[b - 0x80]!;
  return s;
}

/** Encodes NFC text; returns undefined when some character has no Mac Roman form. */
export function tryEncodeMacRoman(text: string): Buffer | undefined {
  const out: number[] = [];
  for (const ch of text.normalize('NFC')) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else {
      const b = encodeMap.get(ch);
      if (b === undefined) return undefined;
      out.push(b);
    }
  }
  return Buffer.from(out);
}

export function encodeMacRomanLossy(text: string): Buffer {
  const out: number[] = [];
  for (const ch of text.normalize('NFC')) {
    const c = ch.codePointAt(0)!;
    out.push(c < 0x80 ? c : encodeMap.get(ch) ?? 0x3f);
  }
  return Buffer.from(out);
}
