import { AfpCommand } from '../afp/commands.js';
import { fromAfpDate } from '../afp/dates.js';
import { AfpError } from '../afp/errors.js';
import { kFPAuthContinue, kFPNoErr } from '../afp/result-codes.js';
import { decodeServerInfo, type ServerInfo } from '../afp/srvr-info.js';
import { parseBlock, volumeFields } from '../afp/params.js';
import { Reader } from '../wire/reader.js';
import { AfpVolume, VOL_BITMAP_ALL } from './afp-volume.js';
import { Writer } from '../wire/writer.js';
import { DsiClient, type DsiClientOptions, type DsiResult, type OpenSessionResult } from './dsi-client.js';
import { clientCleartext, clientDhcast128, clientDhx2, clientGuest, type ClientUam } from './uams.js';

export type UamChoice = 'DHX2' | 'DHCAST128' | 'Cleartxt Passwrd' | 'No User Authent';

export interface LoginOptions {
  uam?: UamChoice;
  user?: string;
  password?: string;
  version?: string;
  /** FPLoginExt (AFP 3 style, UTF-8 user name) instead of FPLogin. Default true. */
  ext?: boolean;
}

export interface SrvrParms {
  serverTime: Date;
  volumes: { name: string; hasPassword: boolean }[];
}

/**
 * A promise-based AFP client over real TCP. Tests, benchmarks and `afp-gateway probe`
 * drive the server through it. Non-zero result codes throw AfpError.
 */
export class AfpClient {
  private constructor(private connection: DsiClient, readonly session: OpenSessionResult) {}

  /** The DSI connection requests go over; a primary reconnect replaces it. */
  get dsi(): DsiClient {
    return this.connection;
  }

  static async connect(host: string, port: number, opts: DsiClientOptions = {}): Promise<AfpClient> {
    const dsi = await DsiClient.connect(host, port, opts);
    try {
      return new AfpClient(dsi, await dsi.openSession());
    } catch (e) {
      dsi.destroy();
      throw e;
    }
  }

  /** DSIGetStatus on its own connection, as a Mac does before it opens a session. */
  static async serverInfo(host: string, port: number, opts: DsiClientOptions = {}): Promise<ServerInfo> {
    const dsi = await DsiClient.connect(host, port, opts);
    try {
      return decodeServerInfo(await dsi.getStatus());
    } finally {
      dsi.destroy();
    }
  }

  /** Sends a request and returns the raw result (no throw on errors). */
  raw(payload: Buffer, requestId?: number): Promise<DsiResult> {
    return this.dsi.command(payload, requestId);
  }

  /** Sends a request; throws AfpError unless the result is kFPNoErr. */
  async call(payload: Buffer): Promise<Buffer> {
    const r = await this.dsi.command(payload);
    if (r.code !== kFPNoErr) throw new AfpError(r.code);
    return r.payload;
  }

  async login(opts: LoginOptions = {}): Promise<void> {
    const uam = chooseUam(opts);
    const version = opts.version ?? 'AFP3.4';
    const user = opts.user ?? '';
    const first = (opts.ext ?? true) ? loginExt(version, uam, user) : login(version, uam, user);
    let r = await this.dsi.command(first);
    while (r.code === kFPAuthContinue) {
      const cont = new Writer(300).u8(AfpCommand.FPLoginCont).u8(0).bytes(uam.next(r.payload)).finish();
      r = await this.dsi.command(cont);
    }
    if (r.code !== kFPNoErr) throw new AfpError(r.code, `login as ${JSON.stringify(user)} with ${uam.name}`);
  }

  /**
   * FPGetSessionToken. Types 3/4 (time and ID) send `id` and `timestamp`; 1, 2, 5–7 send `id`;
   * 0 sends nothing. Returns the opaque token.
   */
  async getSessionToken(type: number, o: { id?: Buffer; timestamp?: number } = {}): Promise<Buffer> {
    const w = new Writer(16 + (o.id?.length ?? 0)).u8(AfpCommand.FPGetSessionToken).u8(0).u16(type);
    if (type !== 0) {
      const id = o.id ?? Buffer.alloc(0);
      w.u32(id.length);
      if (type === 3 || type === 4) w.u32(o.timestamp ?? 0);
      w.bytes(id);
    }
    const r = new Reader(await this.call(w.finish()));
    return Buffer.from(r.bytes(r.u32()));
  }

  async disconnectOldSession(token: Buffer): Promise<void> {
    await this.call(new Writer(8 + token.length).u8(AfpCommand.FPDisconnectOldSession).u8(0).u16(0).u32(token.length).bytes(token).finish());
  }

  /**
   * Primary reconnect, as a Mac does after losing its connection (AFP-FACTS §7.2): a new
   * connection whose request IDs continue the old one's, a full login, FPDisconnectOldSession
   * with the old session's token, then every request the old connection left unanswered is
   * sent again with its original ID (the server answers those it already ran from its replay
   * cache). Volumes and forks opened through this client carry on. Throws AfpError when the
   * server no longer holds the session (the caller then reopens what it needs).
   */
  async reconnect(host: string, port: number, login: LoginOptions, token: Buffer, opts: DsiClientOptions = {}): Promise<void> {
    const old = this.connection;
    if (!old.isClosed) old.destroy();
    const dsi = await DsiClient.connect(host, port, { ...opts, holdUnanswered: true, lastRequestId: old.lastRequestId });
    try {
      await dsi.openSession();
      const fresh = new AfpClient(dsi, this.session);
      await fresh.login(login);
      await fresh.disconnectOldSession(token);
    } catch (e) {
      dsi.destroy();
      throw e;
    }
    this.connection = dsi;
    dsi.resend(old.takeUnanswered());
  }

  async logout(): Promise<void> {
    await this.call(Buffer.from([AfpCommand.FPLogout, 0]));
  }

  async getSrvrInfo(): Promise<ServerInfo> {
    return decodeServerInfo(await this.call(Buffer.from([AfpCommand.FPGetSrvrInfo, 0])));
  }

  async getSrvrParms(): Promise<SrvrParms> {
    const r = new Reader(await this.call(Buffer.from([AfpCommand.FPGetSrvrParms, 0])));
    const serverTime = new Date(fromAfpDate(r.i32()));
    const n = r.u8();
    const volumes: SrvrParms['volumes'] = [];
    for (let i = 0; i < n; i++) {
      const flags = r.u8();
      volumes.push({ name: r.pstring().toString('utf8').normalize('NFC'), hasPassword: (flags & 0x80) !== 0 });
    }
    return { serverTime, volumes };
  }

  async getUserInfo(bitmap = 0x3): Promise<{ bitmap: number; uid?: number; gid?: number }> {
    const req = new Writer(8).u8(AfpCommand.FPGetUserInfo).u8(1).u32(0).u16(bitmap).finish();
    const r = new Reader(await this.call(req));
    const echoed = r.u16();
    const out: { bitmap: number; uid?: number; gid?: number } = { bitmap: echoed };
    if (echoed & 1) out.uid = r.u32();
    if (echoed & 2) out.gid = r.u32();
    return out;
  }

  /** FPMapID: 1/2 Mac Roman user/group, 3/4 UTF-8 user/group. */
  async mapId(fn: 1 | 2 | 3 | 4, id: number): Promise<string> {
    const r = new Reader(await this.call(new Writer(6).u8(AfpCommand.FPMapID).u8(fn).u32(id).finish()));
    return fn >= 3 ? r.bytes(r.u16()).toString('utf8').normalize('NFC') : r.pstring().toString('latin1');
  }

  /** FPMapName: 1/2 UTF-8 user/group, 3/4 Mac Roman user/group. */
  async mapName(fn: 1 | 2 | 3 | 4, name: string): Promise<number> {
    const w = new Writer(64).u8(AfpCommand.FPMapName).u8(fn);
    const b = Buffer.from(name, fn <= 2 ? 'utf8' : 'latin1');
    if (fn <= 2) w.u16(b.length).bytes(b);
    else w.pstring(b);
    return new Reader(await this.call(w.finish())).u32();
  }

  async zzzzz(flags = 0): Promise<number> {
    return new Reader(await this.call(new Writer(6).u8(AfpCommand.FPZzzzz).u8(0).u32(flags).finish())).u32();
  }

  /** FPOpenVol; the volume password, if any, goes in its 8-byte field. */
  async openVolume(name: string, o: { bitmap?: number; password?: string } = {}): Promise<AfpVolume> {
    const bitmap = o.bitmap ?? VOL_BITMAP_ALL;
    const w = new Writer(64).u8(AfpCommand.FPOpenVol).u8(0).u16(bitmap).pstring(Buffer.from(name.normalize('NFD'), 'utf8'));
    if (o.password !== undefined) {
      const pw = Buffer.alloc(8);
      Buffer.from(o.password, 'utf8').copy(pw);
      w.alignEven().bytes(pw);
    }
    const b = await this.call(w.finish());
    const r = new Reader(b);
    const params = parseBlock(volumeFields, r.u16(), r, b);
    return new AfpVolume(this, params.volumeId!, params);
  }

  close(): Promise<void> {
    return this.dsi.close();
  }
}

function chooseUam(o: LoginOptions): ClientUam {
  const pw = o.password ?? '';
  switch (o.uam ?? 'DHX2') {
    case 'DHX2':
      return clientDhx2(pw);
    case 'DHCAST128':
      return clientDhcast128(pw);
    case 'Cleartxt Passwrd':
      return clientCleartext(pw);
    case 'No User Authent':
      return clientGuest();
  }
}

function login(version: string, uam: ClientUam, user: string): Buffer {
  const w = new Writer(128).u8(AfpCommand.FPLogin).pstring(Buffer.from(version, 'latin1')).pstring(Buffer.from(uam.name, 'latin1'));
  if (uam.needsUserName) w.pstring(Buffer.from(user, 'utf8')).alignEven();
  return w.bytes(uam.initial()).finish();
}

function loginExt(version: string, uam: ClientUam, user: string): Buffer {
  const name = Buffer.from(user.normalize('NFD'), 'utf8');
  const w = new Writer(128).u8(AfpCommand.FPLoginExt).u8(0).u16(0);
  w.pstring(Buffer.from(version, 'latin1')).pstring(Buffer.from(uam.name, 'latin1'));
  w.u8(3).u16(name.length).bytes(name);
  w.u8(3).u16(0); // directory-service path: none
  return w.alignEven().bytes(uam.initial()).finish();
}
