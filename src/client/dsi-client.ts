import { connect as netConnect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { DsiFramer, type DsiFrame } from '../dsi/framer.js';
import { DSI_REPLY, DSI_REQUEST, DsiCommand, DsiOption, writeHeader } from '../dsi/header.js';

export interface DsiClientOptions {
  connectTimeoutMs?: number;
  /** Largest reply we accept; read replies can be as large as the ReqCount asked for. */
  maxReplyBytes?: number;
  /** Send DSITickle this often while connected (a real Mac uses 30 s); 0 disables. */
  tickleMs?: number;
  /**
   * Keep requests unanswered when the connection drops, instead of failing them, so a
   * reconnect can send them again with their original IDs (as a Mac does with a replay cache).
   */
  holdUnanswered?: boolean;
  /** The request ID to count on from (a reconnect continues the old connection's sequence). */
  lastRequestId?: number;
}

export interface DsiResult {
  code: number;
  payload: Buffer;
}

export interface OpenSessionResult {
  requestQuantum: number;
  /** null when the server advertises no replay cache. */
  replayCacheSize: number | null;
}

export class DsiClosedError extends Error {
  constructor(message = 'DSI connection closed') {
    super(message);
    this.name = 'DsiClosedError';
  }
}

interface Pending {
  command: number;
  /** The frame as sent: a reconnect sends it again unchanged. */
  offset: number;
  body: Buffer[];
  resolve(r: DsiResult): void;
  reject(e: Error): void;
}

/** Requests a dropped connection left unanswered, for `DsiClient.resend`. */
export type UnansweredRequests = ReadonlyMap<number, Pending>;

/**
 * The client half of DSI: request ids, reply matching, tickles and attentions.
 * Emits 'attention' (user bytes), 'tickle' and 'close'.
 */
export class DsiClient extends EventEmitter {
  private readonly framer: DsiFramer;
  private readonly pending = new Map<number, Pending>();
  private nextId: number;
  private closed = false;
  private readonly holdUnanswered: boolean;
  private held: Map<number, Pending> | null = null;
  private tickler: NodeJS.Timeout | null = null;
  /** Tickles received from the server; tests use it to see a busy server keeping us alive. */
  ticklesReceived = 0;

  private constructor(readonly socket: Socket, opts: DsiClientOptions) {
    super();
    this.nextId = opts.lastRequestId ?? 0;
    this.holdUnanswered = opts.holdUnanswered ?? false;
    const max = opts.maxReplyBytes ?? 64 * 1024 * 1024;
    this.framer = new DsiFramer(() => max);
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('close', () => this.shutdown(new DsiClosedError()));
    socket.on('error', (e) => this.shutdown(e));
    if (opts.tickleMs) {
      this.tickler = setInterval(() => this.send(DSI_REQUEST, DsiCommand.Tickle, this.allocId(), 0, []), opts.tickleMs);
      this.tickler.unref();
    }
  }

  static connect(host: string, port: number, opts: DsiClientOptions = {}): Promise<DsiClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, opts.connectTimeoutMs ?? 10_000);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new DsiClient(socket, opts));
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The request id the next request will use (replay tests resend with an old one). */
  peekNextId(): number {
    return (this.nextId + 1) & 0xffff;
  }

  /** The last request ID used; a reconnect continues from it. */
  get lastRequestId(): number {
    return this.nextId;
  }

  /** The requests the dropped connection left unanswered (with `holdUnanswered`); taken once. */
  takeUnanswered(): UnansweredRequests {
    const held = this.held ?? new Map<number, Pending>();
    this.held = null;
    return held;
  }

  /** Sends requests another connection left unanswered, with their original IDs; their callers get these replies. */
  resend(requests: UnansweredRequests): void {
    for (const [id, p] of [...requests].sort(([a], [b]) => a - b)) {
      if (this.closed) {
        p.reject(new DsiClosedError());
        continue;
      }
      this.pending.set(id, p);
      this.send(DSI_REQUEST, p.command, id, p.offset, p.body);
    }
  }

  private allocId(): number {
    this.nextId = (this.nextId + 1) & 0xffff;
    return this.nextId;
  }

  async getStatus(): Promise<Buffer> {
    return (await this.roundTrip(DsiCommand.GetStatus, 0, [])).payload;
  }

  async openSession(attentionQuantum = 1024): Promise<OpenSessionResult> {
    const opt = Buffer.alloc(6);
    opt[0] = DsiOption.AttentionQuantum;
    opt[1] = 4;
    opt.writeUInt32BE(attentionQuantum, 2);
    const r = await this.roundTrip(DsiCommand.OpenSession, 0, [opt]);
    if (r.code !== 0) throw new Error(`DSIOpenSession refused: ${r.code}`);
    let requestQuantum = 0;
    let replayCacheSize: number | null = null;
    const p = r.payload;
    for (let i = 0; i + 2 <= p.length; i += 2 + p[i + 1]!) {
      const len = p[i + 1]!;
      if (len === 4 && p[i] === DsiOption.ServerRequestQuantum) requestQuantum = p.readUInt32BE(i + 2);
      if (len === 4 && p[i] === DsiOption.ServerReplayCacheSize) replayCacheSize = p.readUInt32BE(i + 2);
    }
    return { requestQuantum, replayCacheSize };
  }

  command(payload: Buffer, requestId?: number): Promise<DsiResult> {
    return this.roundTrip(DsiCommand.Command, 0, [payload], requestId);
  }

  /** DSIWrite: the command header and the data travel in one frame; writeOffset = header length. */
  write(header: Buffer, data: Buffer, requestId?: number): Promise<DsiResult> {
    return this.roundTrip(DsiCommand.Write, header.length, [header, data], requestId);
  }

  /** Sends raw bytes as they are (fuzz and replay tests). */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  private roundTrip(command: number, offset: number, body: Buffer[], requestId?: number): Promise<DsiResult> {
    if (this.closed) return Promise.reject(new DsiClosedError());
    const id = requestId ?? this.allocId();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { command, offset, body, resolve, reject });
      this.send(DSI_REQUEST, command, id, offset, body);
    });
  }

  private send(flags: number, command: number, id: number, codeOrOffset: number, body: Buffer[]): void {
    if (this.closed) return;
    let length = 0;
    for (const b of body) length += b.length;
    this.socket.cork();
    this.socket.write(writeHeader({ flags, command, requestId: id, codeOrOffset, length, reserved: 0 }));
    for (const b of body) this.socket.write(b);
    this.socket.uncork();
  }

  private onData(chunk: Buffer): void {
    for (const f of this.framer.push(chunk)) this.onFrame(f);
    if (this.framer.error) {
      this.socket.destroy();
      this.shutdown(this.framer.error);
    }
  }

  private onFrame(f: DsiFrame): void {
    if (f.flags === DSI_REPLY) {
      const p = this.pending.get(f.requestId);
      if (!p || p.command !== f.command) return;
      this.pending.delete(f.requestId);
      p.resolve({ code: f.codeOrOffset, payload: f.payload });
      return;
    }
    switch (f.command) {
      case DsiCommand.Tickle:
        this.ticklesReceived++;
        this.emit('tickle');
        return;
      case DsiCommand.Attention:
        this.send(DSI_REPLY, DsiCommand.Attention, f.requestId, 0, []);
        this.emit('attention', f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 0);
        return;
      case DsiCommand.CloseSession:
        this.socket.end();
        this.shutdown(new DsiClosedError('server closed the session'));
        return;
    }
  }

  /** DSICloseSession, then close our side. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.send(DSI_REQUEST, DsiCommand.CloseSession, this.allocId(), 0, []);
    await new Promise<void>((resolve) => {
      this.socket.end(() => resolve());
      setTimeout(resolve, 1000).unref();
    });
    this.socket.destroy();
    this.shutdown(new DsiClosedError());
  }

  destroy(): void {
    this.socket.destroy();
    this.shutdown(new DsiClosedError());
  }

  private shutdown(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tickler) clearInterval(this.tickler);
    if (this.holdUnanswered && this.pending.size > 0) this.held = new Map(this.pending);
    else for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.emit('close', err);
  }
}
