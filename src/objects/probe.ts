/**
 * Does the object store take, give back and delete an object? For `afp-gateway doctor` and the
 * checks `serve` runs before it starts. probeObjectStore works on any ObjectStore; checkS3Store
 * runs it on the configured bucket, once, without the SDK's retries, and turns what S3 answers
 * into the configuration key to change.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { S3ObjectsConfig } from '../config/schema.js';
import { fail, ok, type CheckResult } from '../ops/check-result.js';
import { ObjectStoreError } from './errors.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore } from './s3-store.js';

export const DEFAULT_PROBE_TIMEOUT_MS = 5000;
const PROBE_BYTES = 1024;

/** The probe object's bytes came back different: a proxy or server that alters bodies. */
export class ProbeMismatchError extends ObjectStoreError {}

/**
 * Writes a small object under a key of its own, reads it back, compares, deletes it, and
 * checks it is gone. Throws the store's error for the step that failed (the message says which).
 */
export async function probeObjectStore(store: ObjectStore): Promise<void> {
  const key = `afpgw-doctor/${hostLabel()}-${process.pid}-${randomBytes(6).toString('hex')}`;
  const body = randomBytes(PROBE_BYTES);
  await store.put(key, body);
  try {
    const back = await store.get(key);
    if (!back.equals(body)) throw new ProbeMismatchError(`get ${key}: read back ${back.length} bytes that differ from the ${body.length} written`);
  } finally {
    await store.delete(key);
  }
  if ((await store.head(key)) !== undefined) throw new ObjectStoreError(`delete ${key}: the object is still there after DELETE`);
}

/** The bucket, under objects.prefix, probed with one attempt per request and a short timeout. */
export async function checkS3Store(cfg: S3ObjectsConfig, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<CheckResult> {
  const store = new S3ObjectStore({ ...cfg, maxAttempts: 1, timeoutMs: Math.min(cfg.timeoutMs, timeoutMs) });
  const where = `bucket "${cfg.bucket}"${cfg.prefix !== '' ? ` (prefix "${cfg.prefix}")` : ''} at ${cfg.endpoint ?? `AWS S3 (${cfg.region})`}`;
  try {
    await probeObjectStore(store);
    return ok('objects', `${where}: a test object was written, read back intact and deleted`);
  } catch (err) {
    return explainS3Failure(cfg, where, err);
  } finally {
    await store.close();
  }
}

/** What S3 (or the network) said, as the key to change and how. */
export function explainS3Failure(cfg: S3ObjectsConfig, where: string, err: unknown): CheckResult {
  const cause = err instanceof ObjectStoreError && err.cause !== undefined ? err.cause : err;
  const name = (cause as { name?: unknown } | null)?.name;
  const code = (cause as { code?: unknown } | null)?.code;
  const status = (cause as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  const said = err instanceof Error ? err.message : String(err);
  // The server's or the network's own words, without the operation the store puts in front.
  const detail = cause instanceof Error ? cause.message : said;
  const endpoint = cfg.endpoint !== undefined ? 'objects.endpoint' : 'objects.region';
  const config = (message: string, key: string, fix: string): CheckResult => fail('objects', `${where}: ${message}`, { key, fix, transient: false });
  const down = (message: string, key: string, fix: string): CheckResult => fail('objects', `${where}: ${message}`, { key, fix, transient: true });

  switch (name) {
    case 'NoSuchBucket':
      return config('the bucket does not exist', 'objects.bucket', 'create the bucket (see infra/s3/README.md), or correct objects.bucket');
    case 'InvalidAccessKeyId':
      return config('the access key id is unknown to the server', 'objects.accessKeyId', 'set objects.accessKeyId (or AFPGW_OBJECTS__ACCESS_KEY_ID) to a key of this account');
    case 'SignatureDoesNotMatch':
      return config('the server refuses the signature: the secret key does not match the access key', 'objects.secretAccessKey', 'set objects.secretAccessKey (or AFPGW_OBJECTS__SECRET_ACCESS_KEY) to the access key\'s secret');
    case 'AccessDenied':
    case 'AllAccessDisabled':
      return config(
        `access denied (${detail})`,
        'objects.accessKeyId',
        `give the key s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on the bucket${cfg.prefix !== '' ? ` and prefix "${cfg.prefix}"` : ''} (infra/s3/iam-policy.json)`,
      );
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return config(`the bucket is in another region (${detail})`, 'objects.region', "set objects.region to the bucket's region");
    case 'CredentialsProviderError':
      return config(
        'no credentials: objects.accessKeyId is not set and the AWS SDK found none (environment, profile, instance role)',
        'objects.accessKeyId',
        'set objects.accessKeyId and objects.secretAccessKey (or AFPGW_OBJECTS__ACCESS_KEY_ID / AFPGW_OBJECTS__SECRET_ACCESS_KEY)',
      );
    case 'TimeoutError':
      return down(`no answer within ${Math.min(cfg.timeoutMs, DEFAULT_PROBE_TIMEOUT_MS) / 1000} s`, endpoint, `check that the S3 server is up and reachable from this machine (firewall, proxy), and ${endpoint}`);
  }
  switch (code) {
    case 'ECONNREFUSED':
      return down('connection refused (nothing listens there)', endpoint, `check ${endpoint}: its host and port, and that the S3 server runs`);
    case 'ENOTFOUND':
      return config(`the host name does not resolve (${detail})`, endpoint, `correct the host name in ${endpoint}`);
    case 'EAI_AGAIN':
      return down(`the host name cannot be resolved now (${detail})`, endpoint, `check this machine's DNS, and ${endpoint}`);
    case 'ECONNRESET':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
      return down(`cannot reach the server (${code})`, endpoint, `check the network between this machine and ${endpoint}`);
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return config(`TLS failed (${detail}); is it an http:// server given as https://?`, endpoint, `check the scheme of ${endpoint} (http:// or https://)`);
  }
  if (err instanceof ProbeMismatchError)
    return config(said, endpoint, 'something between the gateway and the store changes the bodies: check proxies and the objects.requestChecksumCalculation setting');
  if (status !== undefined && status >= 500)
    return down(`the server answered ${status} (${detail})`, endpoint, 'the S3 service has a problem: try again later, or look at its logs');
  return fail('objects', `${where}: ${said}`, { key: 'objects.bucket', fix: 'check the objects section against your S3 service', transient: false });
}

function hostLabel(): string {
  return hostname().split('.')[0]!.replace(/[^A-Za-z0-9-]/g, '-') || 'host';
}
