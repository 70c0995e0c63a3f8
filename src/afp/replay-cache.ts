import type { DsiReply } from '../dsi/connection.js';
import type { ReplayEntry } from '../meta/sessions.js';
import { AfpCommand } from './commands.js';

/**
 * Commands whose second execution would differ from the first (AFP 3.3's list): a Mac that
 * lost its connection sends them again with their original request IDs, and must get the
 * first answer back, not kFPObjectExists or a second fork.
 */
const NOT_IDEMPOTENT: ReadonlySet<number> = new Set([
  AfpCommand.FPByteRangeLock,
  AfpCommand.FPByteRangeLockExt,
  AfpCommand.FPChangePassword,
  AfpCommand.FPCloseFork,
  AfpCommand.FPCloseVol,
  AfpCommand.FPCopyFile,
  AfpCommand.FPCreateDir,
  AfpCommand.FPCreateFile,
  AfpCommand.FPCreateID,
  AfpCommand.FPDelete,
  AfpCommand.FPDeleteID,
  AfpCommand.FPExchangeFiles,
  AfpCommand.FPFlush,
  AfpCommand.FPFlushFork,
  AfpCommand.FPRemoveExtAttr,
  AfpCommand.FPMoveAndRename,
  AfpCommand.FPOpenFork,
  AfpCommand.FPOpenVol,
  AfpCommand.FPRename,
  AfpCommand.FPSetDirParms,
  AfpCommand.FPSetFileDirParms,
  AfpCommand.FPSetFileParms,
  AfpCommand.FPSetForkParms,
  AfpCommand.FPSetVolParms,
  AfpCommand.FPSetExtAttr,
  AfpCommand.FPSetACL,
  AfpCommand.FPSyncDir,
  AfpCommand.FPSyncFork,
  AfpCommand.FPAddAPPL,
  AfpCommand.FPRemoveAPPL,
  AfpCommand.FPAddComment,
  AfpCommand.FPRemoveComment,
  AfpCommand.FPAddIcon,
]);

/**
 * Writes are cached too, though AFP's list leaves them out and netatalk does not: an append
 * run twice appends twice, and even a write at an absolute offset, run again after a later
 * FPSetForkParms or FPCloseFork that the cache answers, would undo the truncate or fail on
 * the closed fork. Only the short reply is kept, never the data.
 */
const WRITES: ReadonlySet<number> = new Set([AfpCommand.FPWrite, AfpCommand.FPWriteExt]);

/** Whether a request's reply must be cached before it is sent. */
export function needsReplayEntry(payload: Buffer): boolean {
  const cmd = payload[0]!;
  return NOT_IDEMPOTENT.has(cmd) || WRITES.has(cmd);
}

/** Where a session's cache entries are kept beyond its memory (the metadata store). */
export interface ReplayBackingStore {
  putReply(entry: ReplayEntry): Promise<void>;
}

/**
 * The replies to a session's last `window` requests, by slot `requestId % window`.
 *
 * The client never has more than `window` requests outstanding, so when request R arrives,
 * whatever slot R % window held belongs to a request the client has seen answered: it is
 * cleared. An entry therefore only ever answers one of the last `window` request IDs, and a
 * request ID reused after the 16-bit wrap is never mistaken for a replay.
 *
 * Entries are written to the backing store before the reply leaves, so a session restored
 * elsewhere (another process, the other node) answers the same replays.
 */
export class ReplayCache {
  private readonly slots: (ReplayEntry | undefined)[];
  /** Requests seen by this session (never wraps): orders entries across a request-ID wrap. */
  private seq = 0;

  constructor(readonly window: number, private backing: ReplayBackingStore | null = null) {
    this.slots = new Array<ReplayEntry | undefined>(window);
  }

  /** From now on entries also go to `backing` (once the session is known to the store). */
  setBacking(backing: ReplayBackingStore | null): void {
    this.backing = backing;
  }

  /**
   * A request arrives. Returns the cached reply when it is a replay of one of the last
   * `window` requests with the same command; otherwise frees its slot and returns undefined.
   */
  arrive(requestId: number, command: number): DsiReply | undefined {
    this.seq++;
    const slot = requestId % this.window;
    const e = this.slots[slot];
    if (e && e.requestId === requestId && e.command === command) {
      return { code: e.code, ...(e.payload.length > 0 ? { payload: e.payload } : {}) };
    }
    this.slots[slot] = undefined;
    return undefined;
  }

  /** Caches the reply to the request that just ran; resolves once the backing store has it. */
  async remember(requestId: number, command: number, reply: DsiReply): Promise<void> {
    const entry: ReplayEntry = { requestId, command, seq: this.seq, code: reply.code, payload: flatten(reply.payload) };
    this.slots[requestId % this.window] = entry;
    await this.backing?.putReply(entry);
  }

  /** Takes over entries from the store (a session restored here), oldest first so newer ones win their slot. */
  load(entries: readonly ReplayEntry[]): void {
    for (const e of [...entries].sort((a, b) => a.seq - b.seq)) {
      this.slots[e.requestId % this.window] = e;
      this.seq = Math.max(this.seq, e.seq);
    }
  }

  get size(): number {
    return this.slots.filter((e) => e !== undefined).length;
  }
}

function flatten(p: DsiReply['payload']): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  return Buffer.isBuffer(p) ? Buffer.from(p) : Buffer.concat(p as Buffer[]);
}
