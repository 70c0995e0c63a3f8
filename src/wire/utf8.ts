/** UTF-8 of `text` cut to at most `maxBytes` without splitting a character. */
export function utf8Truncated(text: string, maxBytes: number): Buffer {
  const b = Buffer.from(text, 'utf8');
  if (b.length <= maxBytes) return b;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}
