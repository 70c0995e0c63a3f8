import type { Socket } from 'node:net';
import type { Logger } from '../ops/log.js';
import { DsiFramer, type DsiFrame } from './framer.js';
import {
  DSI_REPLY,
  DSI_REQUEST,
  DsiCommand,
  DsiOption,
  isDsiCommand,
  writeHeader,
  type DsiHeader,
} from './header.js';

/** An AFP request as DSI delivers it: opaque bytes, in arrival order. */
export interface DsiRequest {
  command: typeof DsiCommand.Command | typeof DsiCommand.Write;
  requestId: number;
  payload: Buffer;
  /** DSIWrite: how many leading payload bytes are the command header; 0 for DSICommand. */
  writeOffset: number;
}

export interface DsiReply {
  code: number;
  payload?: Buffer | readonly Buffer[];
}

export type DsiCloseReason =
  | 'peer-closed'
  | 'client-close'
  | 'timeout'
  | 'protocol-error'
  | 'server-close'
  | 'handed-over';

/** What sits above DSI (the AFP session). DSI never looks inside payloads. */
export interface DsiEndpoint {
  /** Called for each DSICommand/DSIWrite, one at a time, in arrival order. Must not reject. */
  request(req: DsiRequest): Promise<DsiReply>;
  /** The transport ended; the session decides whether its state outlives it. */
  closed(reason: DsiCloseReason): void;
  /**
   * Fields the connection adds to its own log lines while it serves this endpoint (a session
   * id), so that every line of a session carries them, the transport's included.
   */
  readonly logBindings?: Readonly<Record<string, string>>;
}

export interface DsiConnectionOptions {
  /** Largest request payload we accept; advertised as the server request quantum. */
  requestQuantum: number;
  /** Replay-cache depth advertised at OpenSession; 0 advertises none. */
  replayCacheSize: number;
  tickleMs: number;
  idleTimeoutMs: number;
  /** How long a sleeping client (FPZzzzz) may stay silent before its connection is dropped. */
  sleepTimeoutMs: number;
  /** The DSIGetStatus reply block (FPGetSrvrInfo), built by the layer above for this connection. */
  status(conn: DsiConnection): Buffer;
  /** Called once DSIOpenSession succeeds. */
  openEndpoint(conn: DsiConnection): DsiEndpoint;
  /** Told why the connection ended (for metrics and tests). */
  onClose?(reason: DsiCloseReason): void;
  log: Logger;
}

/** Room for the largest command header that precedes DSIWrite data (FPWriteExt: 20 bytes). */
const WRITE_HEADER_ROOM = 64;
const CONTROL_PAYLOAD_MAX = 1024;
/** Pipelined requests beyond this many queued bytes pause the socket, bounding memory. */
const QUEUE_HIGH_WATER_FACTOR = 2;
const QUEUE_MAX_FRAMES = 256;
const CLOSE_GRACE_MS = 2000;
/** TCP keepalive finds peers that vanished without a FIN (a Mac that slept and moved on). */
const KEEPALIVE_MS = 60_000;

/**
 * One TCP connection speaking DSI. Requests run strictly one after another, in arrival
 * order, through one queue: the Mac relies on writes, syncs and closes of a session taking
 * effect in order, and a sequential server is what netatalk proves macOS works with. The
 * queue is also where backpressure lives: a peer that sends faster than it reads replies
 * stops being read, and one that stops reading altogether is cut off.
 */
export class DsiConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  private readonly framer: DsiFramer;
  private endpoint: DsiEndpoint | null = null;
  private attentionQuantum = 2;
  private serverRequestId = 0;
  private readonly queue: DsiFrame[] = [];
  private queuedBytes = 0;
  private busy = false;
  private paused = false;
  private sleeping = false;
  private peerEnded = false;
  private closedReason: DsiCloseReason | null = null;
  private lastReceived = Date.now();
  private lastSent = Date.now();
  private readonly timer: NodeJS.Timeout;
  /** opts.log, plus the bindings of the endpoint served now. */
  private log: Logger;

  constructor(private socket: Socket, private readonly opts: DsiConnectionOptions) {
    this.log = opts.log;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.framer = new DsiFramer((h) => this.maxPayload(h));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // The peer's FIN ends its requests, not our replies: finish the queue, then close.
    socket.on('end', () => {
      this.peerEnded = true;
      if (!this.busy && this.queue.length === 0) this.endGracefully('peer-closed');
    });
    socket.on('close', () => this.finish('peer-closed'));
    socket.on('error', (err) => {
      this.log.debug({ err: err.message }, 'socket error');
      this.finish('peer-closed');
    });
    const period = Math.max(50, Math.min(opts.tickleMs, opts.idleTimeoutMs));
    this.timer = setInterval(() => this.tick(), period);
    this.timer.unref();
  }

  get isOpen(): boolean {
    return this.closedReason === null;
  }

  /** The server request quantum advertised at DSIOpenSession; AFP caps reads at it too. */
  get requestQuantum(): number {
    return this.opts.requestQuantum;
  }

  /** Everything this connection holds in memory: partial frames, queued requests, unsent replies. */
  get bufferedBytes(): number {
    return this.framer.bufferedBytes + this.queuedBytes + this.socket.writableLength;
  }

  /** FPZzzzz: a sleeping Mac sends nothing, so the sleep deadline replaces the idle timeout. */
  setSleeping(sleeping: boolean): void {
    this.sleeping = sleeping;
  }

  /** Who handles this connection's requests (null before DSIOpenSession). */
  get currentEndpoint(): DsiEndpoint | null {
    return this.endpoint;
  }

  /**
   * Hands this connection to another endpoint: a session that lost its own connection and is
   * resumed here (primary reconnect). Requests after the one under way go to the new endpoint.
   */
  setEndpoint(endpoint: DsiEndpoint): void {
    if (!this.endpoint) throw new Error('setEndpoint before DSIOpenSession');
    this.serve(endpoint);
  }

  private serve(endpoint: DsiEndpoint): void {
    this.endpoint = endpoint;
    this.log = endpoint.logBindings ? this.opts.log.child(endpoint.logBindings) : this.opts.log;
  }

  /** Sends a DSIAttention with the given user bytes (shutdown notices, server messages). */
  attention(userBytes: number): void {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(userBytes & 0xffff);
    this.sendRequest(DsiCommand.Attention, payload.subarray(0, Math.min(2, this.attentionQuantum)));
  }

  /** Ends the session from our side: DSICloseSession, then close the socket. */
  close(reason: DsiCloseReason = 'server-close'): void {
    if (this.closedReason !== null) return;
    if (this.endpoint) this.sendRequest(DsiCommand.CloseSession, EMPTY);
    this.endGracefully(reason);
  }

  /** Drops the socket at once, without DSICloseSession (the peer is gone or silent). */
  destroy(reason: DsiCloseReason): void {
    this.socket.destroy();
    this.finish(reason);
  }

  /**
   * Flushes what we already wrote (replies to the valid frames before a bad one), then
   * closes. A peer that never closes its side is cut off after a short grace period.
   */
  private endGracefully(reason: DsiCloseReason): void {
    // Keep reading (onData discards once closed) so the peer's FIN is seen and the socket
    // closes; a paused socket would linger half-open.
    this.socket.resume();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.finish(reason);
  }

  private maxPayload(h: DsiHeader): number {
    if (h.flags === DSI_REPLY) return CONTROL_PAYLOAD_MAX;
    switch (h.command) {
      case DsiCommand.Command:
        return this.opts.requestQuantum;
      case DsiCommand.Write:
        return this.opts.requestQuantum + WRITE_HEADER_ROOM;
      default:
        return CONTROL_PAYLOAD_MAX;
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closedReason !== null) return;
    this.lastReceived = Date.now();
    for (const f of this.framer.push(chunk)) {
      if (this.closedReason !== null) return;
      this.onFrame(f);
    }
    if (this.framer.error && this.closedReason === null) this.protocolError(this.framer.error.message);
  }

  private onFrame(f: DsiFrame): void {
    // Replies from the client answer our attentions; tickles only prove it is alive.
    if (f.flags === DSI_REPLY || f.command === DsiCommand.Tickle) return;
    if (!isDsiCommand(f.command) || f.command === DsiCommand.Attention) {
      this.protocolError(`unknown DSI command ${f.command}`);
      return;
    }
    this.queue.push(f);
    this.queuedBytes += f.payload.length;
    if (!this.paused && (this.queuedBytes > this.opts.requestQuantum * QUEUE_HIGH_WATER_FACTOR || this.queue.length > QUEUE_MAX_FRAMES)) {
      this.pauseReading();
    }
    void this.drain();
  }

  private pauseReading(): void {
    this.paused = true;
    this.socket.pause();
  }

  private resumeReadingIfRoom(): void {
    if (this.paused && this.queuedBytes <= this.opts.requestQuantum && this.queue.length < QUEUE_MAX_FRAMES / 2 && !this.socket.writableNeedDrain) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && this.closedReason === null) {
        const f = this.queue.shift()!;
        this.queuedBytes -= f.payload.length;
        this.resumeReadingIfRoom();
        if (!(await this.process(f))) break;
        if (this.socket.writableNeedDrain) {
          // Stop reading until the peer takes our replies; a peer that never does is cut off.
          this.pauseReading();
          if (!(await this.waitDrain())) {
            this.log.info('client stopped reading replies; closing connection');
            this.destroy('timeout');
            break;
          }
          this.resumeReadingIfRoom();
        }
      }
    } catch (err) {
      this.log.error({ err }, 'request handler failed; closing connection');
      this.destroy('protocol-error');
    } finally {
      this.busy = false;
    }
    if (this.peerEnded && this.queue.length === 0 && this.closedReason === null) this.endGracefully('peer-closed');
  }

  /** Handles one queued frame; false when the connection is done. */
  private async process(f: DsiFrame): Promise<boolean> {
    switch (f.command) {
      case DsiCommand.GetStatus:
        this.sendReply(f, 0, [this.opts.status(this)]);
        return true;
      case DsiCommand.OpenSession:
        return this.openSession(f);
      case DsiCommand.CloseSession:
        this.endGracefully('client-close');
        return false;
      default: {
        if (!this.endpoint) {
          this.protocolError('AFP request before DSIOpenSession');
          return false;
        }
        if (f.command === DsiCommand.Write && (f.codeOrOffset < 0 || f.codeOrOffset > f.payload.length)) {
          this.protocolError(`DSIWrite data offset ${f.codeOrOffset} outside a ${f.payload.length}-byte payload`);
          return false;
        }
        const reply = await this.endpoint.request({
          command: f.command as DsiRequest['command'],
          requestId: f.requestId,
          payload: f.payload,
          writeOffset: f.command === DsiCommand.Write ? f.codeOrOffset : 0,
        });
        if (this.closedReason !== null) return false;
        const body = reply.payload === undefined ? [] : Buffer.isBuffer(reply.payload) ? [reply.payload] : reply.payload;
        this.sendReply(f, reply.code, body);
        return true;
      }
    }
  }

  private openSession(f: DsiFrame): boolean {
    if (this.endpoint) {
      this.protocolError('second DSIOpenSession on one connection');
      return false;
    }
    // Options are type(1) len(1) value(len); unknown types are skipped, truncated ones refused.
    const p = f.payload;
    for (let i = 0; i < p.length; ) {
      if (i + 2 > p.length || i + 2 + p[i + 1]! > p.length) {
        this.protocolError('truncated DSIOpenSession option');
        return false;
      }
      const type = p[i]!;
      const len = p[i + 1]!;
      if (type === DsiOption.AttentionQuantum && len === 4) this.attentionQuantum = p.readUInt32BE(i + 2);
      i += 2 + len;
    }
    // The server request quantum goes first: some clients read it from a fixed place.
    const opts: number[] = [DsiOption.ServerRequestQuantum, 4, ...u32(this.opts.requestQuantum)];
    if (this.opts.replayCacheSize > 0) opts.push(DsiOption.ServerReplayCacheSize, 4, ...u32(this.opts.replayCacheSize));
    this.serve(this.opts.openEndpoint(this));
    this.sendReply(f, 0, [Buffer.from(opts)]);
    return true;
  }

  /** Resolves true once the socket drains, false when it makes no progress within the idle timeout. */
  private waitDrain(): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.closedReason !== null || !this.socket.writableNeedDrain) return resolve(this.closedReason === null);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      const timer = setTimeout(() => done(false), this.opts.idleTimeoutMs);
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  private sendReply(req: DsiHeader, code: number, body: readonly Buffer[]): void {
    let length = 0;
    for (const b of body) length += b.length;
    const header = writeHeader({ flags: DSI_REPLY, command: req.command, requestId: req.requestId, codeOrOffset: code, length, reserved: 0 });
    this.write(header, body);
  }

  private sendRequest(command: number, payload: Buffer): void {
    if (this.closedReason !== null) return;
    this.serverRequestId = (this.serverRequestId + 1) & 0xffff;
    const header = writeHeader({ flags: DSI_REQUEST, command, requestId: this.serverRequestId, codeOrOffset: 0, length: payload.length, reserved: 0 });
    this.write(header, payload.length ? [payload] : []);
  }

  /** Header and body go out as one unit, so a tickle can never land inside a reply. */
  private write(header: Buffer, body: readonly Buffer[]): void {
    if (this.closedReason !== null || this.socket.destroyed) return;
    this.lastSent = Date.now();
    if (body.length === 0) {
      this.socket.write(header);
      return;
    }
    this.socket.cork();
    this.socket.write(header);
    for (const b of body) this.socket.write(b);
    this.socket.uncork();
  }

  private tick(): void {
    if (this.closedReason !== null) return;
    const now = Date.now();
    // A request in progress keeps the Mac's 60 s active timer fed by our tickles; silence
    // only counts when we owe the client nothing.
    const limit = this.sleeping ? this.opts.sleepTimeoutMs : this.opts.idleTimeoutMs;
    if (!this.busy && now - this.lastReceived >= limit) {
      this.log.info({ silentMs: now - this.lastReceived, sleeping: this.sleeping }, 'idle timeout');
      this.destroy('timeout');
      return;
    }
    // No tickles for a sleeping client, nor into a socket whose peer is not reading.
    if (this.endpoint && !this.sleeping && !this.socket.writableNeedDrain && now - this.lastSent >= this.opts.tickleMs) {
      this.sendRequest(DsiCommand.Tickle, EMPTY);
    }
  }

  private protocolError(message: string): void {
    this.log.warn({ reason: message }, 'DSI protocol error; closing connection');
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.endGracefully('protocol-error');
  }

  private finish(reason: DsiCloseReason): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    clearInterval(this.timer);
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (reason === 'peer-closed') this.socket.destroy();
    this.opts.onClose?.(reason);
    this.endpoint?.closed(reason);
  }
}

const EMPTY = Buffer.alloc(0);

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}
