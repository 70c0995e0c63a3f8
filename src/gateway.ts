import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { buildCommandTable } from './afp/command-table.js';
import type { AfpServerContext } from './afp/context.js';
import { AfpSession } from './afp/session.js';
import { SessionRegistry } from './afp/session-registry.js';
import { LeaseReaper } from './cluster/lease-reaper.js';
import { gatewayOps } from './gateway-ops.js';
import { gatewayControl } from './gateway-control.js';
import { startControlServer, type ControlServer } from './ops/control-server.js';
import { startOpsServer, type OpsServer } from './ops/http-server.js';
import { MeasuredObjectStore, type ObjectCallObserver } from './objects/measured-store.js';
import type { MetaCallObserver } from './meta/call-observer.js';
import type { SyncObserver } from './volume/sync-observer.js';
import { serverFlags, statusBlock } from './afp/status.js';
import { UserAuthenticator } from './auth/authenticator.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { PasswordGate } from './auth/password-gate.js';
import { selectUams } from './auth/uams.js';
import { UserDirectory } from './auth/user-directory.js';
import type { GatewayConfig } from './config/schema.js';
import { BonjourAdvertiser } from './discovery/advertiser.js';
import { AdvertiserLeader } from './cluster/advertiser-leader.js';
import { volumeUuid } from './discovery/records.js';
import { DsiAttention } from './dsi/header.js';
import { DsiServer } from './dsi/server.js';
import type { MetaStore } from './meta/meta-store.js';
import { openMetaStoreFromConfig } from './meta/from-config.js';
import { BandCache } from './blocks/band-cache.js';
import { UploadPipeline } from './blocks/upload-pipeline.js';
import { openObjectStore } from './objects/open.js';
import type { ObjectStore } from './objects/object-store.js';
import type { Logger } from './ops/log.js';
import { VolumeCatalog } from './volume/catalog.js';
import { VolumeSet, volumeKey } from './volume/volume-set.js';

export const VERSION = '0.1.0';
const MACHINE_TYPE = 'afp-gateway';
const NODE_LEASE_MS = 15_000;

/**
 * One running gateway node: the composition root that wires config, the metadata store,
 * auth and the AFP/DSI server together. Nothing below it knows the whole picture.
 */
export class Gateway {
  private renewTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  /** The running advertiser, while this node holds the advertiser lease; null otherwise. */
  bonjour: BonjourAdvertiser | null = null;
  /** Claims the advertiser lease and advertises while holding it; null when bonjour.enabled is false. */
  advertiserLeader: AdvertiserLeader | null = null;
  /** The metrics and health endpoint; null when ops.metricsListen is null or its port could not be bound. */
  ops: OpsServer | null = null;
  private opsEndpoints: { close(): void } | null = null;
  /** The control socket of `afp-gateway sessions`, `cache flush` and `gc`; null when disabled or not bound. */
  control: ControlServer | null = null;
  readonly startedAt = Date.now();
  /** Releases what dead nodes (of a pair, or earlier processes of this one) left in the fork stores. */
  reaper: LeaseReaper | null = null;

  private constructor(
    public config: GatewayConfig,
    readonly meta: MetaStore,
    readonly server: DsiServer,
    readonly ctx: AfpServerContext,
    readonly nodeId: string,
    readonly host: string,
    readonly port: number,
    readonly fellBack: boolean,
    private readonly log: Logger,
    readonly volumes: VolumeSet,
    private readonly data: { objects: ObjectStore; cache: BandCache; uploads: UploadPipeline; objectCalls: ObjectCallObserver },
    /** What the ops endpoint's metrics hook into; see gatewayOps. */
    private readonly observers: { metaCalls?: MetaCallObserver; syncs: SyncObserver },
  ) {}

  static async start(config: GatewayConfig, log: Logger): Promise<Gateway> {
    const objectCalls: ObjectCallObserver = { observe: () => undefined };
    const syncs: SyncObserver = { observe: () => undefined };
    // Timing every metadata call costs on the hot path: only when there are metrics to serve.
    const metaCalls: MetaCallObserver | undefined = config.ops.metricsListen ? { observe: () => undefined } : undefined;
    const meta = await openMetaStoreFromConfig(config.metadata, metaCalls);
    let server: DsiServer | undefined;
    let objects: ObjectStore | undefined;
    let cache: BandCache | undefined;
    try {
      const identity = await meta.serverIdentity();
      const nodeId = `${hostname()}-${randomBytes(3).toString('hex')}`;
      // Its calls are counted once the ops endpoint sets the observer (see gatewayOps).
      objects = new MeasuredObjectStore(await openObjectStore(config.objects), objectCalls);
      cache = await BandCache.open({ dir: config.cache.dir, size: config.cache.size, dirtyLimit: config.cache.dirtyLimit, log });
      const uploads = new UploadPipeline(config.cache.uploadConcurrency, log);
      const volumes = await VolumeSet.open(new VolumeCatalog(config.volumes), meta, {
        objects,
        cache,
        uploads,
        nodeId,
        syncTimeoutMs: config.cache.syncTimeoutSeconds * 1000,
        uploadDelayMs: config.cache.uploadDelayMs,
        gcGraceMs: config.objects.gcGraceSeconds * 1000,
        gcIntervalMs: config.objects.gcIntervalSeconds * 1000,
        log,
        syncs,
      });
      // At the dirty limit every volume's dirty blocks go to the front of the queue.
      cache.onPressure = () => {
        for (const v of volumes.all()) v.data.uploadAll();
      };
      const table = buildCommandTable();
      const sessions = new SessionRegistry({
        store: meta.sessions(),
        nodeId,
        disconnectedMs: config.dsi.disconnectedSessionSeconds * 1000,
        maxDisconnected: config.dsi.maxSessions,
        volumeByKey: (key) => volumes.byKey(key),
        liveNodes: async () => new Set((await meta.listNodes()).map((n) => n.id)),
        leaseMs: NODE_LEASE_MS,
        log,
      });
      const ctx: AfpServerContext = {
        serverName: config.serverName,
        flags: serverFlags((code) => table.get(code) !== undefined),
        machineType: MACHINE_TYPE,
        signature: identity.signature,
        uams: selectUams(config.auth.uams),
        checker: new UserAuthenticator(meta, config.auth.scrypt),
        users: new UserDirectory(meta),
        throttle: new LoginThrottle(config.auth.loginThrottle),
        // Two scrypt checks at a time leave libuv's four threads for file I/O.
        gate: new PasswordGate({ concurrency: 2, maxWaiting: 64 }),
        volumes,
        sleepHours: Math.ceil(config.dsi.sleepHours),
        log,
        shuttingDown: false,
        nodeId,
        sessions,
        replayCacheSize: config.dsi.replayCacheSize,
        // A takeover waits out the old session's request, at worst a sync that times out.
        resumeWaitMs: config.cache.syncTimeoutSeconds * 1000 + 10_000,
      };
      server = new DsiServer({
        requestQuantum: config.dsi.requestQuantum,
        replayCacheSize: config.dsi.replayCacheSize,
        tickleMs: config.dsi.tickleSeconds * 1000,
        idleTimeoutMs: config.dsi.idleTimeoutSeconds * 1000,
        sleepTimeoutMs: config.dsi.sleepHours * 3600_000,
        maxConnections: config.dsi.maxSessions,
        maxConnectionsPerAddress: config.dsi.maxConnectionsPerAddress,
        status: (conn) => statusBlock(ctx, conn.localAddress, conn.localPort),
        openEndpoint: (conn) => new AfpSession(conn, ctx, table),
        log,
      });
      if (!config.auth.uams.includes('No User Authent')) {
        for (const v of config.volumes.filter((v) => v.allowGuest)) {
          log.warn({ volume: v.name }, `volume ${v.name} allows guests, but the "No User Authent" UAM is not enabled, so no guest can log in`);
        }
      }
      const listened = await server.listen(config.listen.host, config.listen.port, config.listen.fallbackPort);
      const gw = new Gateway(config, meta, server, ctx, nodeId, listened.host, listened.port, listened.fellBack, log, volumes, { objects, cache, uploads, objectCalls }, { ...(metaCalls ? { metaCalls } : {}), syncs });
      await gw.registerNode();
      gw.reaper = new LeaseReaper({
        nodeId,
        volumes: () => volumes.all(),
        sessions: meta.sessions(),
        liveNodes: async () => new Set((await meta.listNodes()).map((n) => n.id)),
        graceMs: NODE_LEASE_MS,
        intervalMs: NODE_LEASE_MS / 3,
        log: log.child({ component: 'lease-reaper' }),
      });
      gw.reaper.start();
      gw.startBonjour(identity.signature);
      await gw.startOps();
      await gw.startControl();
      log.info(
        { host: listened.host, port: listened.port, metadata: meta.kind, volumes: config.volumes.map((v) => v.name), uams: config.auth.uams, node: nodeId },
        `afp-gateway ${VERSION} listening on ${listened.host}:${listened.port}`,
      );
      return gw;
    } catch (err) {
      // Leave nothing half-running: a listener over a closed store would accept Macs it cannot serve.
      await server?.close().catch(() => undefined);
      await cache?.close().catch(() => undefined);
      await objects?.close().catch(() => undefined);
      await meta.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * SIGHUP: applies a new configuration without dropping a session. Volume access, passwords
   * and size limits, new volumes (at the end of the list) and the log level take effect now;
   * users live in the metadata store and need no reload. Every other change is reported as
   * waiting for a restart.
   */
  async reload(next: GatewayConfig): Promise<{ applied: string[]; needRestart: string[] }> {
    const { applied, needRestart } = await this.volumes.reload(next.volumes);
    if (next.log.level !== this.config.log.level) {
      this.log.level = next.log.level;
      applied.push(`log.level ${next.log.level}`);
    }
    const rest = (c: GatewayConfig): string => JSON.stringify({ ...c, volumes: undefined, log: undefined });
    if (rest(next) !== rest(this.config)) needRestart.push('settings other than volumes and log.level');
    // What took effect is now the running configuration; the rest still waits for a restart.
    this.config = { ...this.config, volumes: this.volumes.all().map((v) => ({ ...v.def, users: [...v.def.users] })), log: next.log };
    this.log.info({ applied, needRestart }, needRestart.length > 0 ? 'configuration reloaded; some changes wait for a restart' : 'configuration reloaded');
    return { applied, needRestart };
  }

  /** Bytes in the cache that are not yet in the object store (counted in whole blocks). */
  get dirtyBytes(): number {
    return this.data.cache.dirtyTotal;
  }

  /**
   * Uploads what the cache holds before the node goes, for at most `ms`: the other node of a
   * pair can only serve bytes that reached the bucket. What is left stays in the journal and
   * is uploaded when this node starts again.
   */
  private async drainUploads(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    if (this.data.cache.dirtyTotal === 0) return;
    this.log.info({ dirtyBytes: this.data.cache.dirtyTotal }, 'uploading cached writes before stopping');
    for (const v of this.volumes.all()) v.data.uploadAll();
    while (this.data.cache.dirtyTotal > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.data.cache.dirtyTotal > 0) this.log.warn({ dirtyBytes: this.data.cache.dirtyTotal }, 'stopping with writes not yet uploaded; they upload at the next start');
  }

  /**
   * The advertiser lease's term; each node claims it every third of that (2 s). Shorter than
   * NODE_LEASE_MS (15 s) on purpose: the node lease's term only delays session restores, which
   * wait for a dead node anyway, but this one is how long browsing Macs cannot find the pair
   * after the advertising node dies. The other node takes over 4 to 8 s after a death (the
   * lapse, then its next claim) plus about a second of Bonjour probing, and within one claim
   * interval of a graceful stop (which releases the lease). Two claims in a row may still
   * fail (a stalled process, a Redis restart) before the holder gives Bonjour up. With the
   * embedded store the single node always wins the lease.
   */
  static readonly ADVERTISER_LEASE_MS = 6_000;

  /**
   * Advertises the server over Bonjour with the port it actually listens on, while this node
   * holds the advertiser lease (of a pair, only one node answers). Not awaited: probing takes
   * about a second and its failures are only logged (AFP works without it).
   */
  private startBonjour(signature: Buffer): void {
    const b = this.config.bonjour;
    if (!b.enabled) return;
    const log = this.log.child({ component: 'bonjour' });
    const options = {
      serverName: this.config.serverName,
      hostName: b.hostName,
      port: this.port,
      timeMachineVolumes: this.config.volumes
        .filter((v) => v.timeMachine)
        // Keyed like the volume's data, so a renamed volume (same key) keeps its Time Machine identity.
        .map((v) => ({ name: v.name, uuid: volumeUuid(signature, volumeKey(v)) })),
      model: b.model,
      interfaces: b.interfaces,
      log,
    };
    this.advertiserLeader = new AdvertiserLeader({
      leases: this.meta,
      holder: this.nodeId,
      ttlMs: Gateway.ADVERTISER_LEASE_MS,
      log,
      advertise: () => {
        const adv = new BonjourAdvertiser(options);
        this.bonjour = adv;
        return {
          start: () => adv.start(),
          stop: () => {
            if (this.bonjour === adv) this.bonjour = null;
            return adv.stop();
          },
        };
      },
    });
    this.advertiserLeader.start();
  }

  /**
   * Serves /metrics, /healthz and /readyz on ops.metricsListen. A port that cannot be bound
   * is logged, not fatal: AFP is what the Macs need, and the log says what to fix.
   */
  private async startOps(): Promise<void> {
    const where = this.config.ops.metricsListen;
    if (!where) return;
    const endpoints = gatewayOps({
      ctx: this.ctx,
      volumes: this.volumes,
      serverName: this.config.serverName,
      version: VERSION,
      startedAt: this.startedAt,
      cacheSizeBytes: this.config.cache.size,
      server: this.server,
      meta: this.meta,
      cache: this.data.cache,
      uploads: this.data.uploads,
      objectCalls: this.data.objectCalls,
      ...this.observers,
      nodeId: this.nodeId,
    });
    this.opsEndpoints = endpoints;
    try {
      this.ops = await startOpsServer(where.host, where.port, endpoints, this.log.child({ component: 'ops' }));
      this.log.info({ host: this.ops.host, port: this.ops.port }, `metrics and health checks on http://${this.ops.host}:${this.ops.port}/metrics`);
    } catch (err) {
      this.log.error({ err, host: where.host, port: where.port }, 'cannot serve metrics and health checks (set ops.metricsListen to a free port, or null)');
    }
  }

  /**
   * Serves the control socket (ops.controlSocket). Like the metrics port, a socket that cannot
   * be made is logged, not fatal; a second gateway on the same dataDir is refused the socket.
   */
  private async startControl(): Promise<void> {
    const path = this.config.ops.controlSocket;
    if (!path) return;
    const log = this.log.child({ component: 'control' });
    // sun_path holds 108 bytes with its terminating NUL.
    if (Buffer.byteLength(path) > 107) {
      log.error({ path }, 'ops.controlSocket: the path is longer than a Unix socket path may be (107 bytes); set a shorter one');
      return;
    }
    try {
      this.control = await startControlServer(path, gatewayControl({ ctx: this.ctx, server: this.server, volumes: this.volumes, cache: this.data.cache, log }), log);
      log.info({ path }, `control socket at ${path}`);
    } catch (err) {
      log.error({ err, path }, 'cannot serve the control socket (ops.controlSocket); afp-gateway sessions, cache flush and gc will not reach this node');
    }
  }

  private async registerNode(): Promise<void> {
    const info = { id: this.nodeId, host: this.host, port: this.port, version: VERSION, startedAt: Date.now() };
    await this.meta.registerNode(info, NODE_LEASE_MS);
    this.renewTimer = setInterval(() => {
      this.meta.renewNode(this.nodeId, NODE_LEASE_MS).then(
        (alive) => {
          if (!alive) return this.meta.registerNode(info, NODE_LEASE_MS);
          return undefined;
        },
      ).catch((err: unknown) => this.log.warn({ err }, 'node lease renewal failed'));
    }, NODE_LEASE_MS / 3);
    this.renewTimer.unref();
  }

  /**
   * Graceful stop: tell every Mac the server is going away (DSIAttention), give the notice
   * `noticeMs` to arrive, then close sessions and release the node lease.
   */
  stop(noticeMs = 200, drainMs = 30_000): Promise<void> {
    this.stopping ??= (async () => {
      this.ctx.shuttingDown = true;
      if (this.renewTimer) clearInterval(this.renewTimer);
      await this.reaper?.stop();
      await this.control?.close();
      // Goodbyes first, so browsing Macs drop the server before it stops answering; then the
      // advertiser lease goes, and the other node of a pair advertises from its next claim.
      await this.advertiserLeader?.stop();
      void this.server.stopAccepting();
      for (const c of this.server.allConnections()) c.attention(DsiAttention.Shutdown);
      if (noticeMs > 0 && this.server.connectionCount > 0) await new Promise((r) => setTimeout(r, noticeMs));
      await this.server.close();
      // Sessions waiting for a reconnect will not get one from this process: release them.
      await this.ctx.sessions.close();
      await this.drainUploads(drainMs);
      await this.volumes.close();
      await this.data.uploads.close();
      await this.data.cache.close();
      await this.data.objects.close();
      await this.ops?.close();
      this.opsEndpoints?.close();
      await this.meta.unregisterNode(this.nodeId).catch((err: unknown) => this.log.warn({ err }, 'could not release node lease'));
      await this.meta.close();
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}
