/**
 * Throwaway S3 servers (s3rver) for tests and benchmarks: loopback only, a fresh directory and
 * one bucket each.
 *
 * s3rver runs in a child process started with --openssl-legacy-provider. Its ListObjectsV2
 * continuation token is encrypted with single DES ("des", i.e. DES-CBC); OpenSSL 3 (Node 17+)
 * moved DES to its legacy provider, so createCipheriv throws ERR_OSSL_EVP_UNSUPPORTED and every
 * truncated listing (more keys than MaxKeys, so any listing past 1,000 keys) answers 500. The
 * flag must be given when Node starts; a child process confines it to s3rver instead of
 * imposing it on the test runner and on the code under test. The child also listens on port 0
 * and reports the port it got, so two test files never race for one port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { S3ObjectsConfig } from '../../src/config/schema.js';
import { reapOnExit, terminate } from './reap.js';

export interface S3Server {
  endpoint: string;
  bucket: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

// s3rver's one account. It checks the access key id but does not verify SigV4 signatures.
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';
const CHILD_FLAG = '--afpgw-s3rver-child';
const READY_TIMEOUT_MS = 15_000;

export async function startS3(opts: { bucket?: string } = {}): Promise<S3Server> {
  const bucket = opts.bucket ?? 'afpgw-test';
  const dir = await mkdtemp(join(tmpdir(), 'afpgw-s3rver-'));
  const env = { ...process.env };
  // A test file's environment marks it as a test-runner child; s3rver's process is not one.
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ['--openssl-legacy-provider', fileURLToPath(import.meta.url), CHILD_FLAG, dir, bucket], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env,
  });
  reapOnExit(child);

  let output = '';
  child.stderr.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  let port: number;
  try {
    port = await readyPort(child, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  // A test that forgets stop() must not keep its process alive; the exit handler and the
  // child's watch on its stdin end it then.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
  return { endpoint: `http://127.0.0.1:${port}`, bucket, port, accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, stop };
}

/** An S3 objects config for the server (or for another endpoint in front of it, e.g. a proxy). */
export function s3Config(server: S3Server, overrides: Partial<S3ObjectsConfig> = {}): S3ObjectsConfig {
  return {
    backend: 's3',
    endpoint: server.endpoint,
    region: 'us-east-1',
    bucket: server.bucket,
    prefix: '',
    forcePathStyle: true,
    // The schema's defaults: the tests prove that Buffer bodies survive them on s3rver.
    requestChecksumCalculation: 'WHEN_SUPPORTED',
    responseChecksumValidation: 'WHEN_SUPPORTED',
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    maxAttempts: 3,
    gcGraceSeconds: 900,
    gcIntervalSeconds: 60,
    timeoutMs: 5000,
    ...overrides,
  };
}

function readyPort(child: ChildProcess, output: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    let line = '';
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`s3rver ${why}: ${output().trim()}`));
    };
    const onData = (chunk: Buffer) => {
      line += chunk.toString('utf8');
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      cleanup();
      try {
        const { port } = JSON.parse(line.slice(0, nl)) as { port: number };
        resolve(port);
      } catch {
        reject(new Error(`s3rver said ${JSON.stringify(line.slice(0, nl))}, not its port`));
      }
    };
    const onExit = (code: number | null, signal: string | null) => fail(`exited (${code ?? signal}) before listening`);
    const onError = (err: Error) => fail(`did not start: ${err.message}`);
    const timer = setTimeout(() => fail(`did not listen within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

// ---- the child ---------------------------------------------------------------------------

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(cb: (err?: Error) => void): void;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

async function runChild(directory: string, bucket: string): Promise<void> {
  // Fail at once, and say why, where Node's OpenSSL lacks the legacy provider.
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
  } catch (err) {
    throw new Error(`DES is unavailable even with --openssl-legacy-provider (${(err as Error).message}); s3rver cannot page listings`);
  }
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  const quit = () => server.close(() => process.exit(0));
  process.once('SIGTERM', quit);
  // The parent's end of stdin closes when it dies, however it dies: do not outlive it.
  process.stdin.once('end', quit);
  process.stdin.once('error', quit);
  process.stdin.resume();
}

if (process.argv[2] === CHILD_FLAG && process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  runChild(process.argv[3] ?? '', process.argv[4] ?? '').catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
