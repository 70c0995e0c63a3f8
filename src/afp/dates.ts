/** AFP dates: signed 32-bit seconds since 2000-01-01 00:00:00 UTC. */
export const AFP_EPOCH_UNIX = 946_684_800;
/** The most negative date: "never" (e.g. the backup date of a new object). */
export const AFP_DATE_NEVER = -0x80000000;

export function toAfpDate(unixMs: number): number {
  const s = Math.floor(unixMs / 1000) - AFP_EPOCH_UNIX;
  return Math.max(-0x7fffffff, Math.min(0x7fffffff, s));
}

export function fromAfpDate(afp: number): number {
  return (afp + AFP_EPOCH_UNIX) * 1000;
}
