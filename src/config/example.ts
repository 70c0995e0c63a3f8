/**
 * The annotated example config quoted in docs/configuration.md (`afp-gateway init` writes a
 * shorter starter from the admin's answers: starter.ts). Every key appears with its default;
 * keys without a fixed default are shown commented out. A test checks that this text
 * validates and yields exactly the built-in defaults, so it cannot drift.
 */
export const exampleConfigYaml = `# afp-gateway configuration.
#
# Every key is optional; the values below are the defaults. Relative paths are resolved
# against the directory of this file. Sizes take a byte count or a number with a unit:
# KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g. 4MiB, 1.5GiB.
#
# Any key can be overridden by an environment variable AFPGW_<SECTION>__<KEY> in UPPER_SNAKE
# form, e.g. AFPGW_LISTEN__PORT=10548, AFPGW_OBJECTS__SECRET_ACCESS_KEY=..., or
# AFPGW_VOLUMES__0__SIZE_LIMIT=2TB. Values are read as YAML (numbers, true/false, [a, b]).

# Name shown in the Finder sidebar (1 to 31 characters). Default: this machine's short host name.
# serverName: Office Backup

# Where the embedded metadata store, local object store and cache live unless set below.
dataDir: ./afp-data

listen:
  host: 0.0.0.0
  port: 548
  # Used when port cannot be bound (e.g. not running as root). null disables the fallback.
  fallbackPort: 10548

# Shares offered to Macs. Names are 1 to 27 characters, without ":", unique ignoring case.
volumes:
  - name: TimeMachine
    # Advertise as a Time Machine destination.
    timeMachine: true
    # Capacity of the volume as the Mac sees it (Time Machine keeps backups under it); null = no limit.
    sizeLimit: null
    # Users allowed on this volume; an empty list allows every authenticated user.
    users: []
    # File data is stored as objects of this size: a power of two from 64KiB to 64MiB.
    blockSize: 4MiB
    # Optional volume password (at most 8 bytes, an AFP limit).
    # password: secret
    # Let guests (the "No User Authent" UAM) use this volume.
    allowGuest: false
    # Compare names case-sensitively. Default: like HFS+, case-insensitive and case-preserving.
    caseSensitive: false
    # Identity of the volume's data in the metadata store; defaults to the name. Before
    # renaming a volume, set this to its old name so the data stays with it.
    # key: timemachine

# Where file-system state lives (names, CNIDs, block maps, locks, sessions).
metadata:
  backend: embedded
  # Default: <dataDir>/meta
  # path: ./afp-data/meta
  # periodic: changes are committed at once and reach the disk every syncIntervalMs and at
  # every sync a Mac asks for (FPSyncDir/FPSyncFork). An OS crash or power cut can lose the
  # changes since the last sync, and LMDB warns it can then damage the database, so keep the
  # box on a UPS or use Redis for important deployments. commit: every change waits for the
  # disk (about 1,400 changes/s instead of about 5,000).
  sync: periodic
  syncIntervalMs: 1000

  # For a branch box or a redundant pair, use Redis instead. Give exactly one of url or sentinels.
  # backend: redis
  # url: redis://:password@redis.example:6379/0
  # sentinels:
  #   - host: sentinel-1.example
  #     port: 26379
  #   - host: sentinel-2.example
  #     port: 26379
  # sentinelName: mymaster
  # password: secret
  # keyPrefix: afpgw
  # # Replicas that must acknowledge a sync (Redis WAIT) before FPSyncFork returns.
  # waitReplicas: 0
  # waitTimeoutMs: 1000
  # # How long a request waits for Redis to come back (a restart, a Sentinel failover)
  # # before it fails. Keep it longer than Sentinel takes to fail over (down-after plus a
  # # few seconds); at most 90.
  # failoverWaitSeconds: 30

# Where file data lives.
objects:
  backend: fs
  # Default: <dataDir>/objects
  # path: ./afp-data/objects

  # Any S3 API (AWS, MinIO, ...):
  # backend: s3
  # # Leave out for AWS; set for MinIO and other S3-compatible stores.
  # endpoint: https://minio.example:9000
  # region: us-east-1
  # bucket: timemachine
  # prefix: ""
  # # true for most non-AWS stores (bucket in the path, not the host name).
  # forcePathStyle: false
  # # WHEN_REQUIRED for stores that reject the newer default checksums.
  # requestChecksumCalculation: WHEN_SUPPORTED
  # responseChecksumValidation: WHEN_SUPPORTED
  # # Leave both out to use the AWS SDK's usual credential chain.
  # accessKeyId: AKIA...
  # secretAccessKey: ...
  # maxAttempts: 5
  # timeoutMs: 30000

  # Replaced block objects are deleted this long after nothing refers to them (both backends).
  gcGraceSeconds: 900
  gcIntervalSeconds: 60

# Local write-back cache in front of the object store.
cache:
  # Default: <dataDir>/cache
  # dir: ./afp-data/cache
  size: 10GiB
  # Writes wait when this much data awaits upload. At most size; default 2GiB (or size if smaller).
  dirtyLimit: 2GiB
  uploadConcurrency: 8
  # A block not written to its end is uploaded this long after its last write.
  uploadDelayMs: 2000
  # FPSyncFork/FPSyncDir fail (rather than wait longer) when the stores take longer than this.
  syncTimeoutSeconds: 60
  # At SIGTERM, how long the cache's unuploaded writes get to reach the object store before
  # the process exits (the rest is uploaded at the next start). Keep systemd's TimeoutStopSec
  # above it.
  shutdownDrainSeconds: 30

auth:
  # Offered login methods: DHX2, DHCAST128, "Cleartxt Passwrd", "No User Authent" (guest).
  uams: [DHX2, DHCAST128]
  loginThrottle:
    # Failed logins allowed before further attempts are slowed down, by at most maxDelayMs each.
    freeFailures: 3
    maxDelayMs: 10000
  # Password hashing cost. N is a power of two from 1024.
  scrypt:
    N: 32768
    r: 8
    p: 1

# AFP session transport.
dsi:
  # Largest request a Mac may send (32000 bytes to 16MiB).
  requestQuantum: 1MiB
  # Replies remembered per session so a reconnecting Mac's replayed requests are not run twice.
  replayCacheSize: 128
  tickleSeconds: 30
  # Must be greater than tickleSeconds.
  idleTimeoutSeconds: 120
  # Connections at once; also the most sessions kept waiting for their Mac to reconnect.
  maxSessions: 256
  maxConnectionsPerAddress: 32
  # How long a session whose connection dropped (Wi-Fi gone, Mac asleep) keeps its open
  # files and locks for the Mac to reconnect to (FPDisconnectOldSession); 0 ends it at once.
  disconnectedSessionSeconds: 86400
  # How long the session of a sleeping Mac is kept without a word from it.
  sleepHours: 10

ops:
  # Prometheus metrics, health and status over HTTP. Loopback only by default; null disables.
  metricsListen:
    host: 127.0.0.1
    port: 9548
  # Unix socket (mode 0600) through which \`afp-gateway sessions\`, \`cache flush\` and \`gc\`
  # reach the running gateway. Default: <dataDir>/control.sock; null disables.
  # controlSocket: /var/lib/afp-gateway/control.sock

# Bonjour (mDNS) advertising, so Macs find the gateway in the Finder sidebar and in Time
# Machine's list of backup disks (_afpovertcp._tcp, _adisk._tcp, _device-info._tcp).
bonjour:
  enabled: true
  # Addresses of the interfaces to advertise on, e.g. [192.168.1.10]; null = every
  # non-loopback interface with an IPv4 address.
  interfaces: null
  # Model shown to the Mac; it only picks the icon (e.g. TimeCapsule8,119, RackMac, Xserve).
  model: TimeCapsule8,119
  # Host name the records point at. Default: this machine's short host name + .local.
  # hostName: office.local

log:
  # trace, debug, info, warn, error or fatal
  level: info
`;
