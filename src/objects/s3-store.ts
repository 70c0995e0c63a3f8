/**
 * Objects in an S3 bucket (AWS, MinIO, any S3 API), through @aws-sdk/client-s3.
 *
 * Bodies go out as Buffers, never streams: a Buffer can be sent again by the SDK's retries, and
 * a stream under the default checksum setting is sent aws-chunked, which servers that do not
 * understand that encoding (s3rver) store with its framing: silent corruption.
 *
 * Timeouts are idle timeouts per attempt (no byte moved for timeoutMs), not deadlines: a branch
 * box on a slow uplink moves a 4 MiB block in tens of seconds, and a deadline would fail every
 * upload there, while a dead or blackholed connection still fails within timeoutMs per attempt
 * (the SDK arms idle timers of 6 s or more 3 s late, and connect timers of 2 s or more 1 s late).
 * A call therefore ends within about maxAttempts × timeoutMs plus the SDK's backoff. Note the
 * SDK's retry quota: after a long run of failures it retries less until successes refill it.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import type { S3ObjectsConfig } from '../config/schema.js';
import { InvalidObjectKeyError, ObjectNotFoundError, ObjectStoreError, ObjectStoreUnavailableError } from './errors.js';
import { MAX_KEY_BYTES, checkKey, checkLimit, checkPrefix, checkRange } from './keys.js';
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore } from './object-store.js';

/** S3 answers at most this many keys per ListObjectsV2 page. */
const PAGE_SIZE = 1000;
/** Enough for the largest upload concurrency the config allows (64) plus reads beside it. */
const DEFAULT_MAX_SOCKETS = 96;

export interface S3StoreOptions {
  /** Cap on open connections; requests beyond it wait for a free socket. */
  maxSockets?: number;
}

export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  /** The configured prefix with a trailing "/", or "" for the bucket's root. */
  readonly keyPrefix: string;
  private readonly agents: { http: HttpAgent; https: HttpsAgent };
  private closed = false;

  constructor(cfg: S3ObjectsConfig, opts: S3StoreOptions = {}) {
    this.bucket = cfg.bucket;
    this.keyPrefix = cfg.prefix === '' || cfg.prefix.endsWith('/') ? cfg.prefix : `${cfg.prefix}/`;
    const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? DEFAULT_MAX_SOCKETS };
    this.agents = { http: new HttpAgent(agentOptions), https: new HttpsAgent(agentOptions) };
    this.client = new S3Client({
      ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
      region: cfg.region,
      forcePathStyle: cfg.forcePathStyle,
      // Without keys in the config the SDK's chain applies (env, profile, instance role).
      ...(cfg.accessKeyId !== undefined && cfg.secretAccessKey !== undefined
        ? { credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } }
        : {}),
      maxAttempts: cfg.maxAttempts,
      requestChecksumCalculation: cfg.requestChecksumCalculation,
      responseChecksumValidation: cfg.responseChecksumValidation,
      requestHandler: {
        httpAgent: this.agents.http,
        httpsAgent: this.agents.https,
        connectionTimeout: cfg.timeoutMs,
        socketTimeout: cfg.timeoutMs,
      },
    });
  }

  async put(key: string, body: Buffer): Promise<void> {
    const Key = this.fullKey(key);
    await this.call(`put ${key}`, key, () =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentLength: body.length })),
    );
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const Key = this.fullKey(key);
    if (range) checkRange(range);
    if (range?.length === 0) {
      // HTTP cannot ask for zero bytes; the answer is empty, but only if the object exists.
      if ((await this.head(key)) === undefined) throw new ObjectNotFoundError(key);
      return Buffer.alloc(0);
    }
    const Range = range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined;
    let out: GetObjectCommandOutput;
    try {
      out = await this.call(`get ${key}`, key, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range })));
    } catch (err) {
      // 416: the object exists but the range starts at or past its end.
      if (range && isInvalidRange(err)) return Buffer.alloc(0);
      throw err;
    }
    return range ? this.readRange(key, out, range) : this.readBody(key, out);
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    const Key = this.fullKey(key);
    try {
      const out = await this.call(`head ${key}`, key, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key })));
      return { size: out.ContentLength ?? 0 };
    } catch (err) {
      // A HEAD answer has no body, so a missing bucket also looks like this; a missing key
      // without s3:ListBucket permission answers 403 instead (an ObjectStoreError).
      if (err instanceof ObjectNotFoundError) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    // S3 answers 204 for a missing key too, which makes delete idempotent.
    await this.call(`delete ${key}`, key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })));
  }

  list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectInfo> {
    // Checked here rather than in the generator, so a bad argument throws at the call.
    this.checkOpen();
    checkPrefix(prefix);
    checkLimit(opts.limit);
    return this.listing(prefix, opts.after, opts.limit ?? Infinity);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  // ---- internals ------------------------------------------------------------------------

  private fullKey(key: string): string {
    this.checkOpen();
    checkKey(key);
    const full = this.keyPrefix + key;
    if (Buffer.byteLength(full, 'utf8') > MAX_KEY_BYTES)
      throw new InvalidObjectKeyError(key, `with the prefix "${this.keyPrefix}" it exceeds ${MAX_KEY_BYTES} bytes`);
    return full;
  }

  private checkOpen(): void {
    if (this.closed) throw new ObjectStoreError('the object store is closed');
  }

  /**
   * Pages with the continuation token, as S3 intends. (s3rver makes that token with single
   * DES, which OpenSSL 3 only has in its legacy provider; the test harness runs s3rver with
   * it rather than this code paging around a test server's bug.)
   */
  private async *listing(prefix: string, after: string | undefined, limit: number): AsyncGenerator<ObjectInfo> {
    let remaining = limit;
    let token: string | undefined;
    do {
      if (remaining <= 0) return;
      const page = await this.call(`list ${prefix}`, undefined, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.keyPrefix + prefix,
            MaxKeys: Math.min(PAGE_SIZE, remaining),
            ...(token !== undefined
              ? { ContinuationToken: token }
              : after !== undefined
                ? { StartAfter: this.keyPrefix + after }
                : {}),
          }),
        ),
      );
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined || !obj.Key.startsWith(this.keyPrefix)) continue;
        yield { key: obj.Key.slice(this.keyPrefix.length), size: obj.Size ?? 0, ...(obj.LastModified ? { lastModified: obj.LastModified.getTime() } : {}) };
        if (--remaining <= 0) return;
      }
      if (page.IsTruncated && page.NextContinuationToken === undefined)
        throw new ObjectStoreError(`list ${prefix}: the server said there is more but gave no continuation token`);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  private async readBody(key: string, out: GetObjectCommandOutput): Promise<Buffer> {
    if (out.Body === undefined) return Buffer.alloc(0);
    try {
      const bytes = await out.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      // The connection broke or went idle mid-body; the SDK does not retry that part.
      throw new ObjectStoreUnavailableError(`get ${key}: reading the body failed: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * A ranged answer, checked rather than trusted: a server may ignore Range (200 with the whole
   * object), and s3rver answers "bytes=0-0" with the whole object and a range on an empty
   * object with a Content-Length it never sends.
   */
  private async readRange(key: string, out: GetObjectCommandOutput, range: ByteRange): Promise<Buffer> {
    const cr = parseContentRange(out.ContentRange);
    if (cr && range.offset >= cr.total) {
      discard(out);
      return Buffer.alloc(0);
    }
    const start = cr?.start ?? 0;
    if (start > range.offset) {
      discard(out);
      throw new ObjectStoreError(`get ${key}: asked for bytes from ${range.offset}, got ${out.ContentRange}`);
    }
    const body = await this.readBody(key, out);
    const from = range.offset - start;
    return body.subarray(Math.min(from, body.length), Math.min(from + range.length, body.length));
  }

  /** Runs one SDK call and turns whatever it throws into an ObjectStoreError. */
  private async call<T>(what: string, key: string | undefined, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw this.mapError(what, key, err);
    }
  }

  private mapError(what: string, key: string | undefined, err: unknown): ObjectStoreError {
    if (err instanceof ObjectStoreError) return err;
    const name = (err as { name?: unknown } | null)?.name;
    const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
    const message = `${what}: ${messageOf(err)}`;
    if (key !== undefined && (name === 'NoSuchKey' || (status === 404 && name === 'NotFound'))) return new ObjectNotFoundError(key, { cause: err });
    if (name === 'NoSuchBucket') return new ObjectStoreError(`${what}: bucket "${this.bucket}" does not exist`, { cause: err });
    if (name === 'InvalidRange') return new ObjectStoreError(message, { cause: err });
    if (isUnavailable(name, status, err)) return new ObjectStoreUnavailableError(message, { cause: err });
    return new ObjectStoreError(message, { cause: err });
  }
}

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException']);

function isUnavailable(name: unknown, status: number | undefined, err: unknown): boolean {
  if (status !== undefined) return status >= 500 || status === 429 || (typeof name === 'string' && THROTTLING.has(name)) || name === 'RequestTimeout';
  // No HTTP answer at all: refused, reset, timed out, DNS. A missing credential is not that.
  return name !== 'CredentialsProviderError' && !(err instanceof TypeError);
}

function isInvalidRange(err: unknown): boolean {
  const cause = err instanceof ObjectStoreError ? err.cause : err;
  const meta = (cause as { name?: unknown; $metadata?: { httpStatusCode?: number } } | null) ?? {};
  return meta.name === 'InvalidRange' || meta.$metadata?.httpStatusCode === 416;
}

function parseContentRange(value: string | undefined): { start: number; total: number } | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+)$/.exec(value ?? '');
  return m ? { start: Number(m[1]), total: Number(m[2]) } : undefined;
}

/** Drops an unread body so its socket is closed rather than left hanging. */
function discard(out: GetObjectCommandOutput): void {
  const body = out.Body as { destroy?: () => void } | undefined;
  body?.destroy?.();
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
